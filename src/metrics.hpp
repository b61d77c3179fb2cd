// Per-worker counters of an endpoint (calls, errors and latency per command, bytes, protocol
// errors), written only by their worker's thread and summed on read. Not installed.
//
// A request touches no cache line that another thread writes: each counter has one writer,
// which adds with a plain load and store; STATS and /metrics read with relaxed loads.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <boost/histogram.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "cmdwire/error.hpp"
#include "cmdwire/metrics.hpp"
#include "owned_counter.hpp"

namespace cmdwire::detail {

/// Latency buckets: log-linear, four per power of two of nanoseconds (each at most 25% of its
/// lower edge wide), from
/// 1 ns to 2^37 ns (about 137 s); longer goes to the overflow bin. Computing a bucket takes one
/// bit scan, so recording costs no logarithm.
struct latency_buckets {
  static constexpr int count = 4 * 35 + 4;  // buckets 0-3 are 0-3 ns; then 4 per octave

  [[nodiscard]] static int of(std::uint64_t ns) noexcept {
    if (ns < 4) return static_cast<int>(ns);
    const int octave = static_cast<int>(std::bit_width(ns)) - 1;  // >= 2
    const int sub = static_cast<int>((ns >> (octave - 2)) & 3);
    return 4 * (octave - 1) + sub;  // past count: the overflow bin
  }
  /// The first nanosecond after bucket `i`.
  [[nodiscard]] static std::uint64_t upper_ns(int i) noexcept {
    if (i < 4) return static_cast<std::uint64_t>(i) + 1;
    const int octave = i / 4 + 1;
    const auto sub = static_cast<std::uint64_t>(i % 4);
    return (4 + sub + 1) << (octave - 2);
  }
};

using latency_histogram = decltype(boost::histogram::make_histogram_with(
    std::vector<owned_counter>(), boost::histogram::axis::integer<int>(0, latency_buckets::count)));

/// What one worker counted for one command.
struct command_counters {
  owned_counter calls;
  /// Error replies by code (errc's wire codes are 1..9).
  std::array<owned_counter, 10> errors;
  latency_histogram latency = boost::histogram::make_histogram_with(
      std::vector<owned_counter>(),
      boost::histogram::axis::integer<int>(0, latency_buckets::count));
  owned_counter latency_sum_ns;
  owned_counter latency_max_ns;

  void record(std::chrono::nanoseconds took, std::optional<errc> failed) noexcept {
    calls.add();
    if (failed) {
      const auto i = static_cast<std::size_t>(*failed);
      errors[i < errors.size() ? i : 0].add();
    }
    const auto ns = static_cast<std::uint64_t>(std::max<std::int64_t>(took.count(), 0));
    latency(latency_buckets::of(ns));
    latency_sum_ns.add(ns);
    latency_max_ns.raise_to(ns);
  }
};

/// One worker's counters: indexed by handler_entry::index, sized at start().
struct worker_counters {
  std::vector<command_counters> commands;
  owned_counter unknown_commands;
  owned_counter protocol_errors;  ///< requests refused as malformed or too large
  owned_counter bytes_in;
  owned_counter bytes_out;
};

/// Adds `from` into the totals of one command in `into`.
void add_counters(const command_counters& from, command_report& into);

/// p (0..1) of a merged histogram, in seconds: the upper edge of the bucket holding it.
[[nodiscard]] double latency_quantile(const std::vector<std::uint64_t>& buckets, double p);

}  // namespace cmdwire::detail
