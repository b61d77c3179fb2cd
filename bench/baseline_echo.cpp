// cmdwire-baseline-echo: the yardstick, a bare Asio C++20-coroutine echo server (read_some,
// write the same bytes back), i.e. what a user who skipped cmdwire would write.
// Usage: cmdwire-baseline-echo [--listen HOST:PORT] [--threads N]
#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "cmdwire/address.hpp"

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// Same read size as a typical hand-written echo server; big enough that a pipelined burst of
// small requests is one read, small enough that 10,000 idle connections stay cheap.
constexpr std::size_t read_size = 16 * 1024;

asio::awaitable<void> echo(tcp::socket socket) {
  std::vector<char> data(read_size);
  for (;;) {
    auto [rec, n] = co_await socket.async_read_some(asio::buffer(data), nothrow);
    if (rec) co_return;
    auto [wec, written] = co_await asio::async_write(socket, asio::buffer(data.data(), n), nothrow);
    if (wec) co_return;
  }
}

/// Accepts on worker 0 and hands each connection to the next worker in turn.
asio::awaitable<void> listener(tcp::acceptor& acceptor,
                               std::vector<std::unique_ptr<asio::io_context>>& workers) {
  std::size_t next = 0;
  for (;;) {
    asio::io_context& target = *workers[next];
    next = (next + 1) % workers.size();
    auto [ec, socket] = co_await acceptor.async_accept(target, nothrow);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) continue;
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(target, echo(std::move(socket)), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "cmdwire-baseline-echo: bare Asio echo server, the yardstick for cmdwire-bench.\n"
      "Example: cmdwire-baseline-echo --listen 127.0.0.1:0 --threads 1"};
  std::string listen = "127.0.0.1:0";
  unsigned threads = 1;
  app.add_option("--listen", listen, "HOST:PORT; port 0 picks a free port")->capture_default_str();
  app.add_option("--threads", threads, "I/O threads, one io_context each")
      ->check(CLI::Range(1u, 256u))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // usage errors exit 2, as in every cmdwire binary
  }

  auto where = cmdwire::parse_host_port(listen);
  if (!where) {
    fmt::print(stderr, "cmdwire-baseline-echo: {}\n", where.error().message);
    return 2;
  }
  std::vector<std::unique_ptr<asio::io_context>> workers;
  for (unsigned i = 0; i < threads; ++i) workers.push_back(std::make_unique<asio::io_context>(1));

  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(where->host, ec);
  if (ec) {
    fmt::print(stderr, "cmdwire-baseline-echo: '{}' is not an IP address\n", where->host);
    return 2;
  }
  tcp::acceptor acceptor(*workers.front());
  try {
    acceptor.open(addr.is_v6() ? tcp::v6() : tcp::v4());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind({addr, where->port});
    acceptor.listen(asio::socket_base::max_listen_connections);
  } catch (const boost::system::system_error& e) {
    fmt::print(stderr, "cmdwire-baseline-echo: cannot listen on {}: {}\n", listen, e.what());
    return 3;
  }
  where->port = acceptor.local_endpoint().port();
  // Scripts read this line to learn the port.
  fmt::print("listening on {}\n", where->to_string());
  std::fflush(stdout);

  asio::co_spawn(*workers.front(), listener(acceptor, workers), asio::detached);
  asio::signal_set signals(*workers.front(), SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code, int) {
    for (auto& w : workers) w->stop();
  });
  std::vector<std::thread> pool;
  for (std::size_t i = 1; i < workers.size(); ++i) {
    pool.emplace_back([&ctx = *workers[i]] {
      auto guard = asio::make_work_guard(ctx);  // idle workers wait for connections
      ctx.run();
    });
  }
  workers.front()->run();
  for (auto& t : pool) t.join();
  return 0;
}
