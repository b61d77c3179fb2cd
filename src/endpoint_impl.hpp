// Internal state of an endpoint: its registry, options and counters, and its worker threads;
// shared by the endpoint (lifecycle, accept loops) and its sessions. Not installed.
#pragma once

#include <atomic>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <exception>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cmdwire/endpoint.hpp"
#include "metrics.hpp"

namespace cmdwire::detail {

struct handler_entry {
  raw_handler sync;
  async_raw_handler async;
  stream_handler stream;
  bool line = false;
  bool offload = false;  ///< `sync` runs on the endpoint's handler pool
  bool builtin = false;  ///< registered by the endpoint itself (HEALTH, STATS, ...)
  /// This command's slot in each worker's counters: its registration order.
  std::size_t index = 0;
  command_description description;  ///< what DESCRIBE says

  [[nodiscard]] wire::body_rule rule() const noexcept {
    if (stream) return wire::body_rule::head_only;
    return line ? wire::body_rule::line : wire::body_rule::framed;
  }
};

/// Heterogeneous lookup, so a name in the receive buffer finds its handler without a copy.
struct name_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};
using handler_map = std::unordered_map<std::string, handler_entry, name_hash, std::equal_to<>>;

class session;

/// One thread, one io_context: connections never migrate, so a session needs no locks.
/// Member order matters: destroying the context destroys suspended sessions, which unregister
/// from `sessions` and look at `drain_deadline`, so both outlive the context.
struct worker {
  /// Live sessions on this worker; touched only from this worker's thread.
  std::list<session*> sessions;
  /// Set by stop() before it posts drain_sessions, so a session that starts after that
  /// post ran closes itself instead of keeping the worker alive.
  std::atomic<bool> stopping{false};
  /// Bounds the drain: when it fires, whatever still runs on this worker is abandoned.
  std::optional<asio::steady_timer> drain_deadline;
  /// Written by this worker's thread only; summed by STATS and /metrics.
  worker_counters counters;
  asio::io_context context{1};
  std::thread thread;

  worker() = default;
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;
  ~worker() { drain_deadline.reset(); }  // a timer must not outlive its context
};

struct listener {
  /// TCP or Unix domain: sessions get the same generic socket either way.
  asio::basic_socket_acceptor<asio::generic::stream_protocol> acceptor;
  connection_handler raw;  ///< empty: the cmdwire command protocol.
  std::string unix_path;   ///< a Unix-domain listener's socket file, removed by stop()
};

/// Sends one line to the endpoint's log sink, if it has one. Inline, so that the sessions, the
/// broker and the datagram services need no .cpp of the endpoint's (no cycle in src/).
inline void log_line(const endpoint_options& opt, log_level level, std::string_view text) {
  if (opt.log) opt.log(level, text);
}

/// What every session of an endpoint shares: read-only after start, plus atomic counters.
struct endpoint_state {
  endpoint_options options;
  handler_map handlers;
  std::atomic<std::size_t> connections{0};
  std::atomic<std::size_t> buffered_bytes{0};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> rejected_busy{0};
  std::atomic<std::uint64_t> timed_out{0};
  /// Runs offloaded handlers; made by start() if any is registered, joined by stop() before
  /// the workers' contexts (which hold the calls it writes into) go away.
  std::optional<asio::thread_pool> handler_pool;
  /// Offloaded calls queued or running; bounded by options.handler_queue.
  std::atomic<std::size_t> offloaded{0};
  /// Coroutines that ended by an exception nothing caught (a bug, logged): see task_end.
  std::atomic<std::uint64_t> task_failures{0};
  /// Set once stop() has begun: HEALTH answers DRAINING.
  std::atomic<bool> draining{false};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

/// The completion handler of every coroutine the endpoint co_spawns. An exception that escaped
/// one is a bug, but it must not reach io_context::run(): that would end the worker thread, or
/// the process. It is logged and counted (endpoint_stats::task_failures), never rethrown.
struct task_end {
  endpoint_state* state;
  std::string_view what;  ///< names the coroutine in the log: "session", "accept loop"

  void operator()(const std::exception_ptr& e) const noexcept {
    if (!e) return;
    ++state->task_failures;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log_failure(ex.what());
    } catch (...) {
      log_failure("not a std::exception");
    }
  }

 private:
  void log_failure(std::string_view why) const noexcept {
    try {
      std::string line("bug: ");
      line.append(what).append(" ended by an exception: ").append(why);
      log_line(state->options, log_level::error, line);
    } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory while logging; counted
    }
  }
};

}  // namespace cmdwire::detail
