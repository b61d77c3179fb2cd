// The client side: one TCP connection to an endpoint, typed calls through command descriptors,
// many calls in flight (paired by id with out-of-order replies, else by order), deadlines.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cmdwire/call_context.hpp"
#include "cmdwire/codec.hpp"
#include "cmdwire/command.hpp"
#include "cmdwire/error.hpp"
#include "cmdwire/tls.hpp"
#include "cmdwire/wire.hpp"

namespace cmdwire {

namespace asio = boost::asio;

struct client_options {
  /// How long `connect` may take (resolve + TCP handshake).
  std::chrono::milliseconds connect_timeout{5000};
  /// Deadline for calls that set none; zero means no deadline.
  std::chrono::milliseconds default_deadline{0};
  wire::limits limits;   ///< limits on replies (a reply over max_body is a protocol error).
  decode_limits decode;  ///< nesting limit for typed replies.
  /// Non-empty: sent as `AUTH <token>` before anything else; `connect` fails with
  /// errc::unauthorized if the server refuses it. Read it from a file or the environment,
  /// not from a command line (others can see argv).
  std::string auth_token;
  /// TLS: enable it and name the CA that signed the server's certificate.
  tls_client_config tls;
  /// Ask for out-of-order replies when connecting (`HELLO ooo`, PROTOCOL.md §8): the server
  /// then runs this connection's async calls concurrently, so one slow call does not hold up
  /// the others. A server that does not know HELLO is used in order, as before.
  bool out_of_order = true;
};

struct call_options {
  wire::encoding enc = wire::encoding::bin;
  /// Zero: the client's default_deadline. Sent to the server as deadline-ms as well, so a
  /// request still queued there when it expires is answered `ERR deadline` instead of run.
  std::chrono::milliseconds deadline{0};
  /// Set inside a handler to the context of the call it answers: this call then gets at most
  /// the time that call has left (deadline propagation), and fails at once if none is left.
  const call_context* within = nullptr;
};

/// Completion signature of raw calls: (error, body). On an error reply, `error` is the code
/// from the wire and the string is the server's message.
using raw_call_signature = void(std::error_code, std::string);

/// What a client receives for a response type: views (zero-copy on the server) become owned
/// strings, since the receive buffer does not outlive the call.
template <class T>
using received_t = std::conditional_t<std::is_same_v<T, std::string_view>, std::string, T>;

/// A connection to one endpoint. Thread-safe: calls may come from any thread, and run on the
/// client's own I/O thread. Movable; destroying it (or `close()`) fails calls still in flight
/// with errc::not_connected. Blocking calls must not be made from a completion handler of the
/// same client.
class client {
 public:
  /// Resolves HOST:PORT and connects within `options.connect_timeout`.
  [[nodiscard]] static result<client> connect(std::string_view host_port,
                                              client_options options = {});

  client(client&&) noexcept;
  client& operator=(client&&) noexcept;
  ~client();

  /// Blocking typed call.
  template <command C>
  [[nodiscard]] result<received_t<typename C::response>> call(const typename C::request& req,
                                                              call_options opt = {});

  /// Typed call for coroutines, on any executor: resumes on the caller's executor.
  /// `req` is encoded before this returns, so it need not outlive the call. Pass a named
  /// object, not a braced temporary: GCC 12 miscompiles `co_await f(T{...})` and destroys the
  /// temporary twice.
  template <command C>
  [[nodiscard]] asio::awaitable<result<received_t<typename C::response>>> async_call(
      const typename C::request& req, call_options opt = {});

  /// Blocking untyped call: sends `NAME [json] LENGTH\nBODY`, returns the reply body.
  [[nodiscard]] result<std::string> call_raw(std::string_view name, std::string_view body,
                                             call_options opt = {});

  /// Blocking line-form call: sends `NAME\nLINE\n` and returns the one line that comes back.
  [[nodiscard]] result<std::string> call_line(std::string_view name, std::string_view line,
                                              call_options opt = {});

  /// Gets one pushed message: topic and body, views valid only during the call. Runs on the
  /// client's I/O thread: return quickly and make no blocking call on this client from it.
  using message_handler = std::function<void(std::string_view topic, std::string_view body)>;
  /// Told once, on the I/O thread, why a subscription ended: connection lost (the server
  /// also disconnects a subscriber that reads too slowly), or close().
  using end_handler = std::function<void(const error&)>;

  /// Subscribes to `topic` (`SUBSCRIBE`) and returns once the server has confirmed, so every
  /// publish made after this returns reaches `on_message`. The connection is then dedicated
  /// to the subscription: other calls on this client fail with errc::not_connected, and
  /// closing the client unsubscribes. One topic per client; use one client per topic.
  [[nodiscard]] result<void> subscribe(std::string_view topic, message_handler on_message,
                                       end_handler on_end = {});

  /// Publishes `body` to `topic` (`PUBLISH`); returns how many subscribers received it.
  [[nodiscard]] result<std::size_t> publish(std::string_view topic, std::string_view body,
                                            call_options opt = {});

  /// Untyped call with any Asio completion token; completes with raw_call_signature on the
  /// token's associated executor.
  template <class Token>
  auto async_call_raw(std::string_view name, std::string_view body, call_options opt,
                      Token&& token);

  /// Calls sent whose replies have not arrived yet.
  [[nodiscard]] std::size_t in_flight() const;

  /// True when the server granted out-of-order replies (see client_options::out_of_order).
  [[nodiscard]] bool out_of_order() const noexcept;

  /// Closes the connection; pending calls fail with errc::not_connected. Idempotent.
  void close();

  /// "127.0.0.1:61000": the address connected to.
  [[nodiscard]] const std::string& address() const noexcept;

 private:
  struct impl;
  explicit client(std::unique_ptr<impl> p) noexcept;

  /// A request as the caller hands it over. The I/O thread frames it, with an id once
  /// out-of-order replies are on.
  struct outgoing {
    enum class form : std::uint8_t { framed, line, raw } kind = form::framed;
    std::string name;
    std::string body;  ///< raw: the whole frame
    wire::encoding enc = wire::encoding::bin;
    std::chrono::milliseconds deadline{0};  ///< zero: none
  };

  /// Queues `request`; `done` runs exactly once.
  void start_call(outgoing request, asio::any_completion_handler<raw_call_signature> done);
  /// The deadline a call gets: its own, else the client's default, capped by `within`.
  /// Negative when `within` has no time left.
  [[nodiscard]] std::chrono::milliseconds effective_deadline(call_options opt) const noexcept;
  [[nodiscard]] result<std::string> wait_for_reply(outgoing request);
  static outgoing make_request(std::string_view name, wire::encoding enc, std::string body,
                               std::chrono::milliseconds deadline);
  [[nodiscard]] const decode_limits& reply_decode_limits() const noexcept;

  template <class Resp>
  result<Resp> decode_reply(std::string body, wire::encoding enc) const {
    Resp resp{};
    if (auto ok = codec<Resp>::decode(body, enc, resp, reply_decode_limits()); !ok) {
      return ok.error();
    }
    return resp;
  }

  template <class Resp>
  asio::awaitable<result<Resp>> async_typed_call(outgoing request, wire::encoding enc);
  template <class Token>
  auto async_send(outgoing request, Token&& token);

  std::unique_ptr<impl> impl_;
};

template <class Token>
auto client::async_send(outgoing request, Token&& token) {
  return asio::async_initiate<Token, raw_call_signature>(
      [this](auto handler, outgoing r) {
        start_call(std::move(r),
                   asio::any_completion_handler<raw_call_signature>(std::move(handler)));
      },
      token, std::move(request));
}

template <class Token>
auto client::async_call_raw(std::string_view name, std::string_view body, call_options opt,
                            Token&& token) {
  return async_send(make_request(name, opt.enc, std::string(body), effective_deadline(opt)),
                    std::forward<Token>(token));
}

template <command C>
result<received_t<typename C::response>> client::call(const typename C::request& req,
                                                      call_options opt) {
  std::string body;
  codec<typename C::request>::encode(req, opt.enc, body);
  auto reply =
      wait_for_reply(make_request(C::name, opt.enc, std::move(body), effective_deadline(opt)));
  if (!reply) return reply.error();
  return decode_reply<received_t<typename C::response>>(std::move(*reply), opt.enc);
}

template <class Resp>
asio::awaitable<result<Resp>> client::async_typed_call(outgoing request, wire::encoding enc) {
  auto [ec, body] = co_await async_send(std::move(request), asio::as_tuple(asio::use_awaitable));
  if (ec) co_return error{ec, std::move(body)};
  co_return decode_reply<Resp>(std::move(body), enc);
}

template <command C>
asio::awaitable<result<received_t<typename C::response>>> client::async_call(
    const typename C::request& req, call_options opt) {
  std::string body;
  codec<typename C::request>::encode(req, opt.enc, body);
  return async_typed_call<received_t<typename C::response>>(
      make_request(C::name, opt.enc, std::move(body), effective_deadline(opt)), opt.enc);
}

}  // namespace cmdwire
