// The closed-loop load: connections that keep `depth` requests in flight, one io_context per
// thread, and the per-thread counters and latency histogram they fill.
#pragma once

#include <atomic>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/histogram.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "workload.hpp"

namespace cmdwire::bench {

namespace asio = boost::asio;

/// Latency in microseconds, log-spaced bins from 0.1 us to 100 s (~2.1% wide each), so a
/// quantile read from a bin edge is within about 2% of the true value.
using latency_axis =
    boost::histogram::axis::regular<double, boost::histogram::axis::transform::log>;
using latency_histogram =
    decltype(boost::histogram::make_histogram_with(std::vector<std::uint64_t>{}, latency_axis{}));
[[nodiscard]] latency_histogram make_latency_histogram();

/// Value below which a fraction `q` (0..1] of the recorded latencies lie, in microseconds:
/// the upper edge of the bin where the cumulative count reaches q, capped at `max_us`.
[[nodiscard]] double quantile_us(const latency_histogram& h, double q, double max_us);

/// Where the run is. Read by the load threads once per reply batch; set by main.
enum class phase : int { warmup, measure, stop };

/// Counters of one load thread; only that thread writes them, except `live_completed`, which
/// the progress line reads from main.
struct thread_stats {
  latency_histogram latency = make_latency_histogram();
  std::uint64_t completed = 0;  ///< verified replies received while measuring
  std::uint64_t errors = 0;     ///< wrong replies and failed connections (any phase)
  std::uint64_t bytes_sent = 0;
  double max_us = 0;
  alignas(64) std::atomic<std::uint64_t> live_completed{0};  ///< = completed, for main to read
  std::atomic<std::uint64_t> live_replies{0};  ///< replies in any phase (idle mode waits on it)
  std::string first_error;                     ///< what went wrong first, for the report
};

struct load_options {
  /// A TCP endpoint or a Unix-domain socket path, as a generic endpoint.
  asio::generic::stream_protocol::endpoint target;
  unsigned conns = 1;
  unsigned depth = 1;
  unsigned threads = 1;
  /// Idle mode: each connection sends one request, checks the reply, then stays open silent.
  bool idle = false;
};

/// Runs the load on `options.threads` threads until `current` becomes phase::stop.
/// Construct, call `start()`, then `stop_and_join()` from the controlling thread.
class load {
 public:
  load(const workload& work, const load_options& options, const std::atomic<phase>& current);
  ~load();
  load(const load&) = delete;
  load& operator=(const load&) = delete;

  void start();
  /// Stops the io_contexts and joins the threads; then `stats()` is stable.
  void stop_and_join();
  [[nodiscard]] std::uint64_t live_completed() const noexcept;
  [[nodiscard]] std::uint64_t live_replies() const noexcept;
  [[nodiscard]] const std::vector<std::unique_ptr<thread_stats>>& stats() const noexcept {
    return stats_;
  }

 private:
  struct worker;
  class connection;
  std::vector<std::unique_ptr<thread_stats>> stats_;
  std::vector<std::unique_ptr<worker>> workers_;
  std::vector<std::unique_ptr<connection>> connections_;
};

}  // namespace cmdwire::bench
