// One server connection: the session that reads requests from it and answers them, and the two
// functions the endpoint starts and stops sessions with. Not installed.
//
// session.cpp holds the request loop (parse, dispatch, HELLO, auth, TLS, timeouts);
// session_calls.cpp runs the handlers (inline, awaited, concurrent, offloaded) and composes
// their replies.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <list>
#include <optional>
#include <string>

#include "cmdwire/call_context.hpp"
#include "connection.hpp"
#include "endpoint_impl.hpp"
#include "latency_clock.hpp"

namespace cmdwire::detail {

/// The connection-level request that negotiates features (PROTOCOL.md §8). Not a command: the
/// session answers it before the registry is consulted, and no handler may take the name.
inline constexpr std::string_view hello_command = "HELLO";

class session final : public stream {
 public:
  session(endpoint_state& state, worker& home, connection::socket_type socket);
  ~session() override;
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  /// With endpoint_options::proxy_protocol: reads the PROXY v2 header and takes the client's
  /// address from it. False: no valid header; refused, logged and closed.
  asio::awaitable<bool> accept_proxy_header();
  asio::awaitable<void> run_commands(asio::ssl::context* tls);
  asio::awaitable<void> run_raw(const connection_handler& fn, asio::ssl::context* tls);
  /// Closes the connection when a read or write deadline passes (idle, request, write).
  asio::awaitable<void> watchdog();
  /// Cancels the calls still running for `why` (none: lets them finish), then waits until
  /// every one has ended and its reply has been handed to the connection.
  asio::awaitable<void> finish_calls(cancel_reason why);

  /// Finish what has been read, then close; a session waiting for input closes now.
  void request_stop() noexcept;
  /// The drain timed out: cancel what still runs and close.
  void abandon() noexcept;
  [[nodiscard]] bool draining() const noexcept { return draining_; }

  // ---- stream, for stream and connection handlers
  void set_idle_timeout(std::chrono::milliseconds timeout) noexcept override {
    conn_.set_idle_timeout(timeout);
  }
  void close() noexcept override { conn_.close(); }
  asio::awaitable<result<std::string_view>> async_read_line() override { return conn_.read_line(); }
  asio::awaitable<result<std::string_view>> async_read_exact(std::size_t n) override {
    return conn_.read_exact(n);
  }
  asio::awaitable<result<std::string_view>> async_read_some() override { return conn_.read_some(); }
  asio::awaitable<result<void>> async_write(std::string_view bytes) override;
  [[nodiscard]] const asio::ip::tcp::endpoint& peer() const noexcept override {
    return conn_.peer();
  }
  [[nodiscard]] std::string_view peer_name() const noexcept override { return conn_.peer_name(); }
  void log(log_level level, std::string_view what) const;

 private:
  /// A handler call that is awaited: async, offloaded, or any call run concurrently. It owns
  /// copies of its name and body when the receive buffer moves on while it runs.
  struct call {
    call(const connection& conn, const wire::request& req,
         std::optional<call_context::clock::time_point> deadline, bool own_bytes);
    std::string name_copy;
    std::string body_copy;
    request_context rc;
    call_context ctx;
    std::string reply;  ///< the reply body
    latency_clock::ticks begun = latency_clock::now();
  };

  static connection_options connection_options_for(endpoint_state& state, worker& home);

  /// TLS server handshake, bounded by the request timeout. False: the session is over.
  asio::awaitable<bool> start_tls(asio::ssl::context& context);
  /// `AUTH <token>` as the first line, when the endpoint requires it.
  asio::awaitable<bool> authenticate();
  /// Answers `message` with the error reply that ends the connection, and closes it.
  asio::awaitable<void> fail_and_close(errc code, std::string_view message);
  /// Every complete request already buffered; returns the bytes needed for the next one, or
  /// nothing when the session is over.
  asio::awaitable<std::optional<std::size_t>> answer_buffered();
  /// The handler registered under `name`, or null.
  const handler_entry* find_handler(std::string_view name);
  /// Answers a request that needs no waiting (a sync handler, an unknown command) at once;
  /// false if it must go through dispatch().
  bool answer_now(const handler_entry* entry, const wire::request& req);
  /// Answers an unknown command, or a request whose deadline passed before it could run;
  /// false for a request that is to run (HELLO included).
  bool refuse(const handler_entry* entry, const wire::request& req);
  /// Answers one whole request (its views point into the receive buffer). False: the session
  /// is over.
  asio::awaitable<bool> dispatch(const handler_entry* entry, const wire::request& req);
  void answer_hello(const wire::request& req);
  [[nodiscard]] std::optional<call_context::clock::time_point> deadline_of(
      const wire::request& req) const;

  // session_calls.cpp
  void run_sync(const handler_entry& entry, const wire::request& req);
  /// Runs an awaited call and queues its reply (none if cancelled for a peer that is gone).
  asio::awaitable<void> run_call(call& c, const handler_entry& entry);
  asio::awaitable<void> run_handler(call& c, const handler_entry& entry, reply_writer& writer);
  asio::awaitable<void> run_offloaded(call& c, const handler_entry& entry, reply_writer& writer);
  /// Starts a call that runs while the session reads on (out-of-order connections).
  void start_concurrent(const handler_entry& entry, const wire::request& req);
  asio::awaitable<void> run_concurrent(std::list<call>::iterator it, const handler_entry& entry);
  asio::awaitable<void> run_stream(const handler_entry& entry, const wire::request& req);
  /// Queues the reply; returns the error code it carries, if any.
  std::optional<errc> append_reply(const request_context& rc, const reply_writer& writer,
                                   const std::string& body);
  /// Counts one call of `entry` that began at `begun` and has just been answered.
  void count(const handler_entry& entry, latency_clock::ticks begun,
             std::optional<errc> failed) noexcept;
  /// Call inside a catch block: turns the exception in flight into the error reply.
  void fail_from_exception(const request_context& rc, reply_writer& writer) const;
  /// Waits until a running call ends (or something else wakes the session).
  asio::awaitable<void> wait_for_a_call();
  void wake() noexcept { wake_.cancel(); }
  /// Takes this connection out of endpoint_stats::connections, once.
  void count_out() noexcept {
    if (counted_out_) return;
    counted_out_ = true;
    --state_.connections;
  }

  endpoint_state& state_;
  const handler_map& handlers_;
  std::string_view last_name_;                 ///< key of the handler found last (in handlers_)
  const handler_entry* last_entry_ = nullptr;  ///< its entry, or null before the first
  const endpoint_options& opt_;
  worker& home_;
  connection conn_;
  std::list<session*>::iterator registration_;
  std::string body_;  ///< scratch for the reply body of sync handlers; reused.
  /// Calls being awaited. List: a call's address must not change while it runs.
  std::list<call> calls_;
  /// Coroutines of concurrent calls still running; the session must outlive them.
  std::size_t tasks_ = 0;
  /// Never expires by itself: cancelled to wake a coroutine waiting for a call to end.
  asio::steady_timer wake_;
  /// When the last request was answered, or the last read completed if that is later: the
  /// next inline request's latency starts there, so it costs one clock read.
  latency_clock::ticks last_answered_ = 0;
  bool out_of_order_ = false;  ///< negotiated by HELLO
  bool draining_ = false;      ///< the endpoint is stopping
  bool counted_out_ = false;   ///< see count_out()
};

/// Runs one accepted connection to completion on its worker.
/// `tls`: non-null for TLS listeners (the handshake comes first).
asio::awaitable<void> run_session(endpoint_state& state, worker& home,
                                  connection::socket_type socket, const connection_handler* raw,
                                  asio::ssl::context* tls);

/// Asks every session on `home` to finish the requests it has read, flush their replies and
/// close; idle ones close at once. After `timeout` the worker stops regardless. Call on
/// home's thread.
void drain_sessions(worker& home, std::chrono::milliseconds timeout);

}  // namespace cmdwire::detail
