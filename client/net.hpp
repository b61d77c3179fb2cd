// Pieces shared by the `cmdwire net` subcommand files (client/net_*.cpp); not a public header.
#pragma once

#include <CLI/CLI.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "cmdwire/error.hpp"

namespace cmdwire::cli::net {

// Each adds its subcommands under `net` (the `cmdwire net` app) and nothing else.
void add_addr_commands(CLI::App& net);    // ip, mask          (client/net_addr.cpp)
void add_lookup_commands(CLI::App& net);  // resolve, lookup, port (client/net_lookup.cpp)
void add_probe_commands(CLI::App& net);   // head, daytime, echo (client/net_probe.cpp)
void add_ping_command(CLI::App& net);     // ping              (client/net_ping.cpp)

/// Completion token for coroutines that want error codes as values rather than exceptions.
inline constexpr auto use_ec = boost::asio::as_tuple(boost::asio::use_awaitable);

/// Default for --timeout on the probes: long enough for a slow loopback server under a
/// sanitizer, short enough that a silent UDP peer does not look like a hang.
inline constexpr double default_timeout_seconds = 5.0;

/// Seconds as typed on the command line (validated positive by CLI11) to a timer duration.
[[nodiscard]] inline std::chrono::steady_clock::duration to_duration(double seconds) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(seconds));
}

/// Addresses of `host` (an IP literal or a name) in resolver order; never empty on success.
/// Fails with errc::bad_address and a message naming the host when it does not resolve.
/// Blocks in getaddrinfo: the system resolver has its own timeouts.
[[nodiscard]] result<std::vector<boost::asio::ip::address>> resolve_addresses(
    std::string_view host);

/// Completes when `timeout` has passed; the loser of `op || watchdog(...)`.
inline boost::asio::awaitable<void> watchdog(std::chrono::steady_clock::duration timeout) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, timeout);
  co_await timer.async_wait(use_ec);
}

/// Runs `op`, cancelling it after `timeout`; then fails with errc::timeout and `timeout_message`.
/// `op` must use cancellable operations (sockets and timers are).
template <class T>
boost::asio::awaitable<result<T>> with_timeout(boost::asio::awaitable<result<T>> op,
                                               std::chrono::steady_clock::duration timeout,
                                               std::string timeout_message) {
  using namespace boost::asio::experimental::awaitable_operators;
  auto outcome = co_await (std::move(op) || watchdog(timeout));
  if (outcome.index() == 0) co_return std::move(std::get<0>(outcome));
  co_return error{make_error_code(errc::timeout), std::move(timeout_message)};
}

/// Runs `op` to completion on `ctx` (which must have no other work) and returns its result.
/// Exceptions from `op` are bugs and propagate.
template <class T>
[[nodiscard]] result<T> run(boost::asio::io_context& ctx, boost::asio::awaitable<result<T>> op) {
  std::optional<result<T>> outcome;
  std::exception_ptr thrown;
  boost::asio::co_spawn(ctx, std::move(op), [&](std::exception_ptr e, result<T> r) {
    thrown = e;
    if (!e) outcome.emplace(std::move(r));
  });
  ctx.run();
  if (thrown) std::rethrow_exception(thrown);
  return std::move(*outcome);
}

}  // namespace cmdwire::cli::net
