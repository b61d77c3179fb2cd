// What a client or channel runs on: the connections (links) to its addresses, dialing and
// reconnecting with backoff, picking the least busy link, calls waiting for a connection, and
// retrying calls whose connection broke. Not installed.
//
// Everything runs on one strand, over the caller's executor or an io_context of its own. A
// client is a core with one connection and no reconnecting.
#pragma once

#include <atomic>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cmdwire/address.hpp"
#include "cmdwire/channel.hpp"
#include "link.hpp"

namespace cmdwire::detail {

/// Completes `done` with (ec, why) soon, never inside the caller's own call.
void complete_later(asio::any_completion_handler<raw_call_signature> done, std::error_code ec,
                    std::string why);

class call_core : public std::enable_shared_from_this<call_core> {
 public:
  struct mode {
    bool reconnect = true;  ///< false: a client (fail once the connection is lost)
  };

  /// Runs on `options.executor`, or on a thread of its own when that is empty.
  call_core(std::vector<address> targets, std::vector<std::string> names, channel_options options,
            mode m);
  ~call_core();
  call_core(const call_core&) = delete;
  call_core& operator=(const call_core&) = delete;

  /// Starts dialing every connection.
  void start();
  /// Completes once the first connection is ready, or (a client) once connecting failed.
  void when_first_outcome(asio::any_completion_handler<void(std::error_code, std::string)> done);
  /// Hands a call over; thread-safe.
  void submit(outgoing request, asio::any_completion_handler<raw_call_signature> done);
  /// A client's subscription, on its one connection.
  void subscribe(outgoing request, client::message_handler on_message, client::end_handler on_end,
                 asio::any_completion_handler<raw_call_signature> done);
  /// Ends every connection and fails what waits; with its own thread, joins it (unless
  /// called from that thread). Idempotent.
  void shutdown();

  [[nodiscard]] const channel_options& options() const noexcept { return options_; }
  /// After shutdown() the strand may never run again: calls fail without it.
  [[nodiscard]] bool closed() const noexcept { return shut_down_.load(); }
  [[nodiscard]] std::size_t in_flight() const noexcept {
    return in_flight_->load(std::memory_order_relaxed);
  }
  [[nodiscard]] bool out_of_order() const noexcept {
    return out_of_order_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] const std::string& first_address() const noexcept { return names_.front(); }
  [[nodiscard]] channel_stats stats() const;

 private:
  struct conn_slot {
    std::size_t target = 0;
    std::size_t index = 0;  ///< among the target's connections
    connection_state state = connection_state::connecting;
    std::shared_ptr<link> l;
    unsigned failures_in_row = 0;
    clock::time_point ready_since{};
    std::optional<asio::steady_timer> retry_timer;
  };

  static asio::awaitable<void> dial(std::shared_ptr<call_core> self, std::size_t slot);
  /// dial(), with an exception that escapes it (a bug) turned into a failed dial.
  static asio::awaitable<void> dial_guarded(std::shared_ptr<call_core> self, std::size_t slot);
  /// Connects the socket (TCP with no_delay, or Unix) within the connect timeout.
  asio::awaitable<result<connection::socket_type>> open_socket(const conn_slot& s);
  /// TLS, AUTH and HELLO on a new link; an error says why the link is no good.
  asio::awaitable<std::optional<error>> handshake(std::shared_ptr<link> l, const conn_slot& s);
  asio::awaitable<std::pair<std::error_code, std::string>> internal_call(
      const std::shared_ptr<link>& l, outgoing request);
  void dial_failed(std::size_t slot, const error& why);
  void link_ready(std::size_t slot, std::shared_ptr<link> l);
  void link_ended(std::size_t slot, link& l, link_end end);
  void schedule_redial(std::size_t slot, std::chrono::milliseconds delay);
  [[nodiscard]] std::chrono::milliseconds backoff_delay(unsigned failures);

  /// Sends a call on the least busy ready link, or makes it wait, or fails it.
  void route(call c);
  void fail(call& c, std::error_code code, std::string message);
  void fail(call& c, errc code, std::string message) {
    fail(c, make_error_code(code), std::move(message));
  }
  void arm_waiting_timer();
  void on_waiting_timer();
  void drain_waiting();
  /// Empties the waiting queue (and its share of in_flight) for the caller to dispose of.
  std::deque<call> take_waiting();
  [[nodiscard]] bool any_connecting() const noexcept;
  [[nodiscard]] std::string no_connection_message() const;
  void set_state(conn_slot& s, connection_state state);
  void record(std::size_t target, const auto& update);

  // Before everything that uses its executor, so it is destroyed after them.
  std::optional<asio::io_context> own_context_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> keep_running_;
  std::thread thread_;

  std::vector<address> targets_;
  std::vector<std::string> names_;  ///< targets as given, for messages and stats
  channel_options options_;
  mode mode_;
  strand_type strand_;
  std::shared_ptr<std::atomic<std::size_t>> in_flight_ =
      std::make_shared<std::atomic<std::size_t>>(0);
  std::atomic<bool> out_of_order_{false};
  std::atomic<bool> shut_down_{false};

  // On the strand only.
  std::vector<std::unique_ptr<conn_slot>> slots_;
  std::size_t next_pick_ = 0;
  std::deque<call> waiting_;
  asio::steady_timer waiting_timer_;
  clock::time_point waiting_timer_at_ = clock::time_point::max();
  bool closing_ = false;
  std::optional<error> lost_;  ///< a client's connection is gone, and why
  std::string last_error_;
  asio::any_completion_handler<void(std::error_code, std::string)> first_outcome_;
  bool had_outcome_ = false;
  std::minstd_rand jitter_rng_{std::random_device{}()};

  // Read by stats() from any thread.
  mutable std::mutex stats_mutex_;
  std::vector<channel_stats::address_stats> address_stats_;
  std::atomic<std::uint64_t> calls_{0};
  std::atomic<std::uint64_t> retries_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<std::size_t> waiting_count_{0};
};

}  // namespace cmdwire::detail
