// The load: connections that keep up to `depth` requests in flight, either closed loop (a new
// request as soon as a reply comes back) or open loop (requests on a fixed schedule, `depth` as
// a cap), one io_context per thread, and the per-thread counters and latency histograms they
// fill.
#pragma once

#include <atomic>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/histogram.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "workload.hpp"

namespace cmdwire::bench {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

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

/// Which window of the run the load is in. Set by main; the load threads read it once per
/// event and file each reply under the window current when it arrives. Windows 0..N-1 are
/// measured (one per rate step, or just 0).
inline constexpr int warmup_window = -1;
inline constexpr int stop_window = -2;

/// Error codes (`ERR <code>`) and how often each came back.
using error_counts = std::map<std::string, std::uint64_t, std::less<>>;

/// What one command got back in one window, on one thread.
struct command_stats {
  latency_histogram latency = make_latency_histogram();  ///< verified replies only
  std::uint64_t ok = 0;                                  ///< verified replies
  std::uint64_t wrong = 0;  ///< OK replies with another body, or raw bytes that differ
  error_counts codes;       ///< ERR replies by code
  double max_us = 0;
};

/// One measured window, on one thread.
struct window_stats {
  std::vector<command_stats> commands;  ///< indexed like the workloads
  std::uint64_t connection_errors = 0;  ///< connections lost while this window ran
};

/// Counters of one load thread; only that thread writes them, except the `live_` atomics,
/// which the progress line reads from main. Main reads the rest after `load::sync()` (for a
/// window that has ended) or after `load::stop_and_join()`.
struct thread_stats {
  thread_stats(std::size_t window_count, std::size_t command_count);
  std::vector<window_stats> windows;
  std::uint64_t connection_errors_outside = 0;  ///< lost while warming up
  std::uint64_t bytes_sent = 0;
  alignas(64) std::atomic<std::uint64_t> live_replies{0};  ///< replies in any window
  std::atomic<std::uint64_t> live_errors{0};  ///< error replies and lost connections, any window
  std::string first_error;                    ///< what went wrong first, for the report
};

struct load_options {
  /// A TCP endpoint or a Unix-domain socket path, as a generic endpoint.
  asio::generic::stream_protocol::endpoint target;
  unsigned conns = 1;
  /// Closed loop: requests in flight per connection. Open loop: the most in flight per
  /// connection; requests due beyond it wait, and their latency still counts from when they
  /// were due.
  unsigned depth = 1;
  unsigned threads = 1;
  /// Idle mode: each connection sends one request, checks the reply, then stays open silent.
  bool idle = false;
  /// Open loop: total requests/s of each measured window (the warm-up uses the first), spread
  /// evenly over the connections. Empty: closed loop with one measured window.
  std::vector<double> rates;
};

/// Why the load could not start.
struct start_error {
  enum class kind { connect, hello, timeout } what;
  std::string detail;  ///< the system's message, e.g. "Connection refused"
};

/// Runs the load on `options.threads` threads until the window becomes stop_window.
/// Use from one controlling thread: construct, `start()`, `wait_ready()`, `begin()`, switch
/// windows (then `sync()` before reading a finished window), and `stop_and_join()`.
class load {
 public:
  /// Borrows `work`, `cycle` and `window` until destroyed. Request n of a connection is
  /// `work[cycle[(offset + n) % cycle.size()]]`, each connection starting at its own offset.
  load(std::span<const workload> work, std::span<const std::uint16_t> cycle,
       const load_options& options, const std::atomic<int>& window);
  ~load();
  load(const load&) = delete;
  load& operator=(const load&) = delete;

  /// Starts the threads; every connection connects (and sends HELLO with --hello).
  void start();
  /// Blocks until every connection is ready to send, or one failed, or `deadline` passed.
  [[nodiscard]] std::optional<start_error> wait_ready(clock::time_point deadline);
  /// Starts sending; the open-loop schedules count from `at`.
  void begin(clock::time_point at);
  /// Returns once every load thread has seen the current window: the windows before it are
  /// then stable, and main may read them while the load goes on.
  void sync();
  /// Stops the io_contexts and joins the threads; then `stats()` is stable.
  void stop_and_join();
  [[nodiscard]] std::uint64_t live_replies() const noexcept;
  [[nodiscard]] std::uint64_t live_errors() const noexcept;
  [[nodiscard]] const std::vector<std::unique_ptr<thread_stats>>& stats() const noexcept {
    return stats_;
  }

  /// Where connections report that they are ready, or why not.
  struct readiness {
    std::mutex mutex;
    std::condition_variable changed;
    unsigned ready = 0;
    std::optional<start_error> failure;
    void report_ready();
    void report_failure(start_error e);
  };

 private:
  struct worker;
  class connection;
  const load_options options_;  ///< the connections borrow it
  readiness readiness_;
  std::vector<std::unique_ptr<thread_stats>> stats_;
  std::vector<std::unique_ptr<worker>> workers_;
  std::vector<std::unique_ptr<connection>> connections_;
};

}  // namespace cmdwire::bench
