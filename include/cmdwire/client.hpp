// The client side: one connection (TCP or Unix domain) to an endpoint, typed calls through
// command descriptors, many calls in flight (paired by id with out-of-order replies), deadlines.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "cmdwire/caller.hpp"
#include "cmdwire/error.hpp"
#include "cmdwire/tls.hpp"
#include "cmdwire/wire.hpp"

namespace cmdwire {

namespace asio = boost::asio;

struct client_options {
  /// How long connecting may take (resolve, connect, TLS, AUTH, HELLO).
  std::chrono::milliseconds connect_timeout{5000};
  /// Deadline for calls that set none; zero means no deadline.
  std::chrono::milliseconds default_deadline{0};
  wire::limits limits;   ///< limits on replies (a reply over max_body is a protocol error).
  decode_limits decode;  ///< nesting limit for typed replies.
  /// Non-empty: sent as `AUTH <token>` before anything else; connecting fails with
  /// errc::unauthorized if the server refuses it. Read it from a file or the environment,
  /// not from a command line (others can see argv).
  std::string auth_token;
  /// TLS: enable it and name the CA that signed the server's certificate.
  tls_client_config tls;
  /// Ask for out-of-order replies when connecting (`HELLO ooo`, PROTOCOL.md §10): the server
  /// then runs this connection's async calls concurrently, so one slow call does not hold up
  /// the others. A server that does not know HELLO is used in order, as before.
  bool out_of_order = true;
  /// After this long without receiving anything, send `PING`; a peer that does not answer
  /// within keepalive_timeout is taken for dead and its connection closed. Zero: off.
  std::chrono::milliseconds keepalive_interval{0};
  std::chrono::milliseconds keepalive_timeout{5000};
  /// Run on this executor (your io_context's, say) instead of on a thread of the client's
  /// own. Calls and completions then happen on it; blocking calls must come from other threads.
  asio::any_io_executor executor;
};

/// A connection to one endpoint. Thread-safe: calls may come from any thread. Movable;
/// destroying it (or `close()`) fails calls still in flight with errc::not_connected.
///
/// It never reconnects: once the connection is lost, calls in flight fail with
/// errc::connection_lost and later ones with errc::not_connected. A `channel` reconnects,
/// spreads calls over several connections and retries idempotent calls.
class client : public caller {
 public:
  /// Connects to HOST:PORT or unix:PATH within `options.connect_timeout`, blocking.
  [[nodiscard]] static result<client> connect(std::string_view address,
                                              client_options options = {});
  /// The same for coroutines. Without `options.executor` the client runs on the executor of
  /// the coroutine that awaits this, with no thread of its own. Pass named objects, not
  /// temporaries: GCC 12 destroys temporaries in a co_await expression twice.
  [[nodiscard]] static asio::awaitable<result<client>> async_connect(std::string address,
                                                                     client_options options = {});

  client(client&&) noexcept;
  client& operator=(client&&) noexcept;
  ~client();

  /// Gets one pushed message: topic and body, views valid only during the call. Runs on the
  /// client's executor: return quickly and make no blocking call on this client from it.
  using message_handler = std::function<void(std::string_view topic, std::string_view body)>;
  /// Told once, on the client's executor, why a subscription ended: connection lost (the
  /// server also disconnects a subscriber that reads too slowly), or close().
  using end_handler = std::function<void(const error&)>;

  /// Subscribes to `topic` (`SUBSCRIBE`) and returns once the server has confirmed, so every
  /// publish made after this returns reaches `on_message`. The connection is then dedicated
  /// to the subscription: other calls on this client fail with errc::not_connected, and
  /// closing the client unsubscribes. One topic per client; use one client per topic.
  [[nodiscard]] result<void> subscribe(std::string_view topic, message_handler on_message,
                                       end_handler on_end = {});

  /// True when the server granted out-of-order replies (see client_options::out_of_order).
  [[nodiscard]] bool out_of_order() const noexcept;

  /// Closes the connection; pending calls fail with errc::not_connected. Idempotent.
  void close();

  /// "127.0.0.1:61000" or "unix:/run/app.sock": the address connected to.
  [[nodiscard]] const std::string& address() const noexcept;

 private:
  explicit client(std::shared_ptr<detail::call_core> core) noexcept;
};

}  // namespace cmdwire
