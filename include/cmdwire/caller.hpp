// The call API that `client` and `channel` share: typed, raw and line calls, blocking and for
// coroutines or any Asio completion token. Moving code from one to the other changes a type.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "cmdwire/call_context.hpp"
#include "cmdwire/codec.hpp"
#include "cmdwire/command.hpp"
#include "cmdwire/error.hpp"
#include "cmdwire/wire.hpp"

namespace cmdwire {

namespace asio = boost::asio;

struct call_options {
  wire::encoding enc = wire::encoding::bin;
  /// Zero: the default_deadline of the client or channel. Sent to the server as deadline-ms
  /// as well, so a request still queued there when it expires is answered `ERR deadline`.
  std::chrono::milliseconds deadline{0};
  /// Set inside a handler to the context of the call it answers: this call then gets at most
  /// the time that call has left (deadline propagation), and fails at once if none is left.
  const call_context* within = nullptr;
  /// For raw and line calls (typed calls take it from the descriptor): running the command
  /// twice does no harm, so a channel may send it again after a connection broke.
  bool idempotent = false;
  /// Channels only: during an outage, wait for a connection until the deadline (true) or
  /// fail at once with errc::not_connected (false). Unset: the channel's option.
  std::optional<bool> wait_for_ready = std::nullopt;
};

/// Completion signature of raw calls: (error, body). On an error reply, `error` is the code
/// from the wire and the string is the server's message.
using raw_call_signature = void(std::error_code, std::string);

/// What a caller receives for a response type: views (zero-copy on the server) become owned
/// strings, since the receive buffer does not outlive the call.
template <class T>
using received_t = std::conditional_t<std::is_same_v<T, std::string_view>, std::string, T>;

namespace detail {

class call_core;

/// A request as the caller hands it over; the I/O side frames it (with an id once
/// out-of-order replies are on, with the deadline that is left when it is written).
struct outgoing {
  enum class form : std::uint8_t { framed, line, raw } kind = form::framed;
  std::string name;
  std::string body;  ///< raw: the whole frame
  wire::encoding enc = wire::encoding::bin;
  std::chrono::milliseconds deadline{0};  ///< zero: none
  bool idempotent = false;
  std::optional<bool> wait_for_ready = std::nullopt;
  bool internal = false;  ///< AUTH, HELLO, keepalive: tied to one connection, not counted
};

}  // namespace detail

/// The calls of a client or channel. Thread-safe: calls may come from any thread.
class caller {
 public:
  /// Blocking typed call. Must not be made from the thread that runs the caller's executor.
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

  /// Publishes `body` to `topic` (`PUBLISH`); returns how many subscribers received it.
  [[nodiscard]] result<std::size_t> publish(std::string_view topic, std::string_view body,
                                            call_options opt = {});

  /// Untyped call with any Asio completion token; completes with raw_call_signature on the
  /// token's associated executor.
  template <class Token>
  auto async_call_raw(std::string_view name, std::string_view body, call_options opt,
                      Token&& token);

  /// Calls sent whose replies have not arrived yet (plus, on a channel, calls waiting for a
  /// connection).
  [[nodiscard]] std::size_t in_flight() const noexcept;

 protected:
  caller() noexcept;
  explicit caller(std::shared_ptr<detail::call_core> core) noexcept;
  caller(caller&&) noexcept;
  caller& operator=(caller&&) noexcept;
  ~caller();

  /// Hands `request` to the I/O side; `done` runs exactly once, on its associated executor.
  void start_call(detail::outgoing request, asio::any_completion_handler<raw_call_signature> done);
  [[nodiscard]] result<std::string> wait_for_reply(detail::outgoing request);
  [[nodiscard]] detail::outgoing make_request(std::string_view name, call_options opt,
                                              std::string body) const;
  [[nodiscard]] const decode_limits& reply_decode_limits() const noexcept;

  std::shared_ptr<detail::call_core> core_;

 private:
  template <class Resp>
  result<Resp> decode_reply(std::string body, wire::encoding enc) const {
    Resp resp{};
    if (auto ok = codec<Resp>::decode(body, enc, resp, reply_decode_limits()); !ok) {
      return ok.error();
    }
    return resp;
  }

  template <command C>
  detail::outgoing typed_request(const typename C::request& req, call_options opt) const {
    std::string body;
    codec<typename C::request>::encode(req, opt.enc, body);
    opt.idempotent = is_idempotent_command<C>;
    return make_request(C::name, opt, std::move(body));
  }

  template <class Resp>
  asio::awaitable<result<Resp>> async_typed_call(detail::outgoing request, wire::encoding enc);
  template <class Token>
  auto async_send(detail::outgoing request, Token&& token);
};

template <class Token>
auto caller::async_send(detail::outgoing request, Token&& token) {
  return asio::async_initiate<Token, raw_call_signature>(
      [this](auto handler, detail::outgoing r) {
        start_call(std::move(r),
                   asio::any_completion_handler<raw_call_signature>(std::move(handler)));
      },
      token, std::move(request));
}

template <class Token>
auto caller::async_call_raw(std::string_view name, std::string_view body, call_options opt,
                            Token&& token) {
  return async_send(make_request(name, opt, std::string(body)), std::forward<Token>(token));
}

template <command C>
result<received_t<typename C::response>> caller::call(const typename C::request& req,
                                                      call_options opt) {
  auto reply = wait_for_reply(typed_request<C>(req, opt));
  if (!reply) return reply.error();
  return decode_reply<received_t<typename C::response>>(std::move(*reply), opt.enc);
}

template <class Resp>
asio::awaitable<result<Resp>> caller::async_typed_call(detail::outgoing request,
                                                       wire::encoding enc) {
  auto [ec, body] = co_await async_send(std::move(request), asio::as_tuple(asio::use_awaitable));
  if (ec) co_return error{ec, std::move(body)};
  co_return decode_reply<Resp>(std::move(body), enc);
}

template <command C>
asio::awaitable<result<received_t<typename C::response>>> caller::async_call(
    const typename C::request& req, call_options opt) {
  return async_typed_call<received_t<typename C::response>>(typed_request<C>(req, opt), opt.enc);
}

}  // namespace cmdwire
