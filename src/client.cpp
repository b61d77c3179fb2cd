// The client: a core with one connection that is never remade, connected before connect()
// returns, plus the subscription that only a client offers.
#include "cmdwire/client.hpp"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <future>

#include "call_core.hpp"
#include "cmdwire/address.hpp"
#include "cmdwire/pubsub.hpp"

namespace cmdwire {

namespace {

result<std::shared_ptr<detail::call_core>> make_client_core(std::string_view text,
                                                            const client_options& options) {
  auto where = parse_address(text);
  if (!where) return where.error();
  if (options.auth_token.find_first_of("\r\n") != std::string::npos) {
    return make_error(errc::bad_request, "auth token must be a single line");
  }
  channel_options copt;
  static_cast<client_options&>(copt) = options;
  copt.connections_per_address = 1;
  copt.wait_for_ready = false;  // a client never reconnects: nothing to wait for
  std::string name = where->to_string();
  auto core = std::make_shared<detail::call_core>(
      std::vector<address>{std::move(*where)}, std::vector<std::string>{std::move(name)},
      std::move(copt), detail::call_core::mode{.reconnect = false});
  core->start();
  return core;
}

}  // namespace

client::client(std::shared_ptr<detail::call_core> core) noexcept : caller(std::move(core)) {}
client::client(client&&) noexcept = default;
client& client::operator=(client&&) noexcept = default;
client::~client() { close(); }

result<client> client::connect(std::string_view address, client_options options) {
  auto core = make_client_core(address, options);
  if (!core) return core.error();
  std::promise<result<void>> promise;
  auto future = promise.get_future();
  (*core)->when_first_outcome([&promise](std::error_code ec, std::string why) {
    promise.set_value(ec ? result<void>(error{ec, std::move(why)}) : result<void>());
  });
  if (auto connected = future.get(); !connected) {
    (*core)->shutdown();
    return connected.error();
  }
  return client(std::move(*core));
}

asio::awaitable<result<client>> client::async_connect(std::string address, client_options options) {
  if (!options.executor) options.executor = co_await asio::this_coro::executor;
  auto core = make_client_core(address, options);
  if (!core) co_return core.error();
  auto token = asio::as_tuple(asio::use_awaitable);
  auto [ec, why] =
      co_await asio::async_initiate<decltype(token)&, void(std::error_code, std::string)>(
          [&core](auto handler) { (*core)->when_first_outcome(std::move(handler)); }, token);
  if (ec) {
    (*core)->shutdown();
    co_return error{ec, std::move(why)};
  }
  co_return client(std::move(*core));
}

result<void> client::subscribe(std::string_view topic, message_handler on_message,
                               end_handler on_end) {
  if (!pubsub::valid_topic(topic)) {
    return make_error(errc::bad_request,
                      "a topic is 1-64 bytes of ASCII letters, digits and _ - . : /");
  }
  if (!core_ || core_->closed()) return make_error(errc::not_connected, "client is closed");
  detail::outgoing frame = make_request("SUBSCRIBE", {}, std::string(topic));
  std::promise<result<void>> promise;
  auto future = promise.get_future();
  core_->subscribe(
      std::move(frame), std::move(on_message), std::move(on_end),
      [&promise](std::error_code ec, std::string body) {
        promise.set_value(ec ? result<void>(error{ec, std::move(body)}) : result<void>());
      });
  return future.get();
}

bool client::out_of_order() const noexcept { return core_ && core_->out_of_order(); }

void client::close() {
  if (core_) core_->shutdown();
}

const std::string& client::address() const noexcept {
  static const std::string none;
  return core_ ? core_->first_address() : none;
}

}  // namespace cmdwire
