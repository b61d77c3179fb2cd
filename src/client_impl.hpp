// The client's connection state: the calls in flight in the order they were sent (paired with
// replies by id once out-of-order replies are granted, else by order), the buffered connection
// they share, and a deadline heap. Not installed.
#pragma once

#include <atomic>
#include <boost/asio/any_completion_executor.hpp>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cmdwire/address.hpp"
#include "cmdwire/client.hpp"
#include "connection.hpp"

namespace cmdwire {

struct client::impl {
  using clock = std::chrono::steady_clock;

  struct pending_call {
    asio::any_completion_handler<raw_call_signature> done;  ///< empty once timed out
    asio::any_completion_executor work;  ///< keeps the caller's executor busy while we wait
    bool line_reply = false;
    bool answered = false;  ///< its reply came (out of order); the slot goes once those before do
  };

  client_options options;
  std::string address;
  asio::io_context context{1};
  std::unique_ptr<asio::ssl::context> tls_context;
  /// Engaged once connected; destroyed before the context it runs on.
  std::optional<detail::connection> conn;
  /// Engaged once connected, so the connect phase's run() can return when it is done.
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> keep_running;
  std::thread thread;

  // Everything below is touched only on the client's thread.
  /// In the order sent; a call's sequence number is its id on the wire once out of order.
  std::deque<pending_call> pending;
  std::uint64_t front_seq = 0;  ///< sequence number of pending.front()
  std::size_t unanswered = 0;   ///< calls in `pending` whose reply has not come
  bool write_scheduled = false;
  using deadline_entry = std::pair<clock::time_point, std::uint64_t>;
  std::priority_queue<deadline_entry, std::vector<deadline_entry>, std::greater<>> deadlines;
  asio::steady_timer timer{context};
  clock::time_point timer_at = clock::time_point::max();
  bool closed = false;
  /// Set by subscribe(): bytes beyond the replies are MSG frames for on_message.
  bool subscribed = false;
  client::message_handler on_message;
  client::end_handler on_end;
  std::atomic<std::size_t> in_flight{0};
  /// Granted by the server's HELLO reply; stored by connect() before it returns, so before
  /// any call that could be paired by id is made.
  std::atomic<bool> out_of_order{false};
  std::atomic<bool> shut_down{false};  ///< set by shutdown(): calls fail at once from then on

  ~impl() { shutdown(); }

  /// Resolves and connects within the connect timeout, then TLS if asked, before the I/O
  /// thread starts; then starts it.
  std::optional<error> open(const host_port& where);
  void shutdown();

  /// Queues one formatted request; `done` runs exactly once, on its own executor.
  void enqueue(client::outgoing request, asio::any_completion_handler<raw_call_signature> done);
  void fail_all(const error& why);

 private:
  std::optional<error> connect_tcp(const host_port& where, asio::ip::tcp::socket& socket);
  /// TLS client handshake within the connect timeout. Returns an error text, empty on success.
  std::string handshake(const std::string& host);
  asio::awaitable<void> write_queued();
  asio::awaitable<void> read_replies();
  /// Completes every call whose reply is complete in the buffer; returns the bytes needed for
  /// the next one, or nothing once the connection has failed.
  std::optional<std::size_t> take_replies();
  /// The call a reply belongs to: by id when it has one, else the oldest unanswered call.
  /// Null when the reply matches no call that is waiting.
  pending_call* call_for(const std::optional<std::uint64_t>& id);
  void frame(const client::outgoing& request, std::uint64_t seq);
  void arm_timer(clock::time_point at);
  static void complete(pending_call& call, std::error_code ec, std::string body);
};

}  // namespace cmdwire
