// Out-of-order replies (HELLO), concurrent calls per connection, the handler's call_context
// (deadline, cancellation, propagation) and offloaded handlers.
#include <fmt/format.h>

#include <atomic>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "cmdwire/client.hpp"
#include "cmdwire/endpoint.hpp"
#include "demo/demo_commands.hpp"
#include "support/eventually.hpp"
#include "support/test_server.hpp"

using cmdwire::errc;
using cmdwire::test::eventually;
using cmdwire::test::raw_socket;
using cmdwire::test::test_server;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

constexpr std::string_view hello_ooo = "HELLO 3\nooo";

std::size_t count(std::string_view text, std::string_view what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string_view::npos;
       at = text.find(what, at + what.size())) {
    ++n;
  }
  return n;
}

struct Inner {  ///< answers the deadline it was given, in ms left, or "none"
  static constexpr std::string_view name = "INNER";
  using request = std::string;
  using response = std::string;
};
struct Outer {  ///< calls INNER on another server from inside its handler, within its context
  static constexpr std::string_view name = "OUTER";
  using request = std::string;
  using response = std::string;
};
struct Block {  ///< offloaded: holds a pool thread until the test releases it
  static constexpr std::string_view name = "BLOCK";
  using request = std::string;
  using response = std::string;
};

}  // namespace

TEST_CASE("HELLO grants out-of-order replies, and says what it granted", "[ooo]") {
  cmdwire::endpoint_options options;
  options.max_concurrent = 7;
  test_server server(options);
  raw_socket s(server.port());
  s.send("HELLO 3 id=9\nooo");
  const std::string granted = "OK 20 id=9\nooo max-concurrent=7\n";
  CHECK(s.read_exact(granted.size()) == granted);
  s.send("HELLO 9\nzstd warp");  // unknown features are not granted: back to in order
  CHECK(s.read_exact(6) == "OK 0\n\n");
  s.send("HELLO\n");
  CHECK(s.read_exact(6) == "OK 0\n\n");
}

TEST_CASE("no handler may be registered as HELLO", "[ooo]") {
  cmdwire::endpoint ep;
  CHECK_THROWS_AS(
      ep.handle_raw("HELLO", [](const cmdwire::request_context&, cmdwire::reply_writer&) {}),
      std::invalid_argument);
}

TEST_CASE("out of order: a slow call does not hold up the ones behind it", "[ooo]") {
  test_server server;
  raw_socket s(server.port());
  s.send(hello_ooo);
  CHECK(s.read_until("max-concurrent=64\n") == "OK 21\nooo max-concurrent=64\n");
  std::string requests = "SLEEP 4 id=1000\n1000";
  for (int i = 0; i < 100; ++i) requests += "PING id=" + std::to_string(i) + "\n";
  s.send(requests);
  const std::string got = s.read_until("slept 1000 ms\n");
  // Every PONG came first, each with its id, and the SLEEP reply last.
  CHECK(count(got, "\nPONG\n") == 100);
  for (int i = 0; i < 100; ++i) {
    CHECK(got.find("OK 4 id=" + std::to_string(i) + "\nPONG\n") != std::string::npos);
  }
  CHECK(got.ends_with("OK 13 id=1000\nslept 1000 ms\n"));
}

TEST_CASE("without HELLO the same requests are answered in order, byte for byte", "[ooo]") {
  test_server server;
  raw_socket s(server.port());
  s.send("SLEEP 3 id=1\n300PING id=2\nPING\nECHO 2\nhiSLEEP\n10\n");
  const std::string expected =
      "OK 12 id=1\nslept 300 ms\nOK 4 id=2\nPONG\nOK 4\nPONG\nOK 2\nhi\nslept 10 ms\n";
  CHECK(s.read_exact(expected.size()) == expected);
}

TEST_CASE("out of order: at most max_concurrent calls run at once", "[ooo]") {
  cmdwire::endpoint_options options;
  options.max_concurrent = 16;
  test_server server(options);
  auto c = cmdwire::client::connect(server.address());
  REQUIRE(c.has_value());
  REQUIRE(c->out_of_order());
  constexpr int calls = 1000;
  std::atomic<int> ok{0};
  std::atomic<int> done{0};
  std::promise<void> all_done;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) {
    c->async_call_raw("NAP", "50", {}, [&](std::error_code ec, std::string body) {
      if (!ec && body == "slept") ++ok;
      if (++done == calls) all_done.set_value();
    });
  }
  REQUIRE(all_done.get_future().wait_for(60s) == std::future_status::ready);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(ok == calls);
  CHECK(server.naps_peak() <= 16);
  CHECK(server.naps_peak() > 1);  // they really overlapped
  // One at a time would take 50 s; 16 at a time about 3 s.
  CHECK(took < 25s);
}

TEST_CASE("a call is cancelled when its client leaves", "[ooo]") {
  test_server server;
  {
    raw_socket s(server.port());
    s.send(hello_ooo);
    (void)s.read_until("max-concurrent=64\n");
    // The PING's reply proves the NAP before it has been started.
    s.send("NAP 5 id=1\n10000PING id=2\n");
    CHECK(s.read_exact(15) == "OK 4 id=2\nPONG\n");
    CHECK(server.naps_started() == 1);
  }
  CHECK(eventually([&] { return server.naps_cancelled() == 1; }));
  CHECK(eventually([&] { return server.ep().stats().connections == 0; }));
  CHECK(server.naps_running() == 0);
}

TEST_CASE("deadline-ms cancels a running call and answers ERR deadline", "[ooo]") {
  test_server server;
  for (const bool ooo : {false, true}) {
    raw_socket s(server.port());
    if (ooo) {
      s.send(hello_ooo);
      (void)s.read_until("max-concurrent=64\n");
    }
    const int cancelled_before = server.naps_cancelled();
    s.send("NAP 5 id=4 deadline-ms=100\n10000");
    const std::string reply = s.read_until("ran\n");
    CHECK(reply == "ERR deadline 37 id=4\ndeadline passed while the request ran\n");
    // The reply is written after the handler ended, so its cancellation has been counted.
    CHECK(server.naps_cancelled() == cancelled_before + 1);
    s.send("PING\n");
    CHECK(s.read_exact(10) == "OK 4\nPONG\n");
  }
}

TEST_CASE("a call made from a handler inherits the remaining deadline", "[ooo]") {
  cmdwire::endpoint inner_ep;
  inner_ep.handle<Inner>([](const std::string&, const cmdwire::call_context& call) {
    return call.deadline() ? std::to_string(call.remaining().count()) : std::string("none");
  });
  const auto inner_port = inner_ep.listen("127.0.0.1", 0);
  REQUIRE(inner_port.has_value());
  inner_ep.start();
  auto to_inner = cmdwire::client::connect("127.0.0.1:" + std::to_string(*inner_port));
  REQUIRE(to_inner.has_value());

  cmdwire::endpoint outer_ep;
  outer_ep.handle<Outer>(
      [&](const std::string&,
          const cmdwire::call_context& call) -> asio::awaitable<cmdwire::result<std::string>> {
        cmdwire::call_options opt;
        opt.within = &call;
        auto left = co_await to_inner->async_call<Inner>(std::string("?"), opt);
        if (!left) co_return left.error();
        co_return *left;
      });
  const auto outer_port = outer_ep.listen("127.0.0.1", 0);
  REQUIRE(outer_port.has_value());
  outer_ep.start();
  auto c = cmdwire::client::connect("127.0.0.1:" + std::to_string(*outer_port));
  REQUIRE(c.has_value());

  cmdwire::call_options opt;
  opt.deadline = 5000ms;
  const auto left = c->call<Outer>("go", opt);
  REQUIRE(left.has_value());
  const int ms = std::stoi(*left);
  CHECK(ms > 0);
  CHECK(ms <= 5000);
  CHECK(c->call<Outer>("go").value() == "none");  // no deadline: none passed on
}

TEST_CASE("offloaded handlers: the I/O thread keeps serving, a full queue says busy", "[ooo]") {
  cmdwire::endpoint_options options;
  options.threads = 1;
  options.handler_threads = 1;
  options.handler_queue = 1;
  cmdwire::endpoint ep(options);
  std::promise<void> started;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> runs{0};
  ep.handle<cmdwire::demo::Ping>([](cmdwire::none) { return std::string("PONG"); });
  ep.handle<Block>(
      [&](const std::string&) {
        if (++runs == 1) started.set_value();
        // Held until the test has seen the other connection answered: if this ran on the one
        // I/O thread, that could never happen and the wait would give up.
        return released.wait_for(10s) == std::future_status::ready ? std::string("released")
                                                                   : std::string("gave up");
      },
      cmdwire::offload);
  const auto port = ep.listen("127.0.0.1", 0);
  REQUIRE(port.has_value());
  ep.start();
  const std::string address = "127.0.0.1:" + std::to_string(*port);

  auto a = cmdwire::client::connect(address);
  auto b = cmdwire::client::connect(address);
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  std::promise<cmdwire::result<std::string>> blocked;
  a->async_call_raw("BLOCK", "", {}, [&](std::error_code ec, std::string body) {
    blocked.set_value(ec ? cmdwire::result<std::string>(cmdwire::error{ec, body})
                         : cmdwire::result<std::string>(body));
  });
  REQUIRE(started.get_future().wait_for(10s) == std::future_status::ready);

  cmdwire::call_options quick;
  quick.deadline = 5000ms;
  CHECK(b->call<cmdwire::demo::Ping>({}, quick).value() == "PONG");  // while BLOCK runs
  const auto busy = b->call_raw("BLOCK", "", quick);                 // the queue is full
  REQUIRE_FALSE(busy.has_value());
  CHECK(busy.error().code == errc::busy);
  CHECK(b->call<cmdwire::demo::Ping>({}, quick).value() == "PONG");  // still connected

  release.set_value();
  CHECK(blocked.get_future().get().value() == "released");
  CHECK(runs == 1);
}

TEST_CASE("a server that does not know HELLO is used in order, without ids", "[ooo]") {
  // A server from before HELLO, played by hand: it answers anything with ERR
  // unknown-command or PONG, in order, and keeps what it received.
  asio::io_context ctx;
  asio::ip::tcp::acceptor acceptor(ctx, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  std::promise<std::string> received;
  std::jthread old_server([&] {
    auto peer = acceptor.accept();
    std::string in;
    char buf[4096];
    boost::system::error_code ec;
    // HELLO 3\nooo, then two PINGs.
    while (in.find("PING 0 deadline-ms=10000\nPING 0 deadline-ms=10000\n") == std::string::npos &&
           !ec) {
      const std::size_t n = peer.read_some(asio::buffer(buf), ec);
      in.append(buf, n);
      if (in == "HELLO 3\nooo") {
        asio::write(peer,
                    asio::buffer(std::string("ERR unknown-command 23\nunknown command 'HELLO'\n")));
      }
    }
    asio::write(peer, asio::buffer(std::string("OK 4\nPONG\nOK 4\nPONG\n")), ec);
    received.set_value(in);
    (void)peer.read_some(asio::buffer(buf), ec);  // until the client closes
  });
  {
    auto c = cmdwire::client::connect("127.0.0.1:" + std::to_string(port));
    INFO((c.has_value() ? std::string("connected") : c.error().message));
    REQUIRE(c.has_value());
    CHECK_FALSE(c->out_of_order());
    std::promise<std::string> first;
    cmdwire::call_options in_time;
    in_time.deadline = 10s;  // a client that waits for ever would hang the test, not fail it
    c->async_call_raw("PING", "", in_time, [&](std::error_code ec, std::string body) {
      first.set_value(ec ? "error" : body);
    });
    CHECK(c->call<cmdwire::demo::Ping>({}, in_time).value() == "PONG");
    CHECK(first.get_future().get() == "PONG");
  }
  // Today's bytes: the deadline, but no id=.
  CHECK(received.get_future().get() ==
        "HELLO 3\noooPING 0 deadline-ms=10000\nPING 0 deadline-ms=10000\n");
}

TEST_CASE("HASH is the documented FNV-1a chain", "[demo]") {
  // Recomputed here from the description in PROTOCOL.md §7.
  const auto fnv_chain = [](std::uint64_t rounds, std::string_view text) {
    std::uint64_t digest = 14695981039346656037ull;
    for (std::uint64_t r = 0; r < rounds; ++r) {
      std::uint64_t h = 14695981039346656037ull;
      for (int i = 0; i < 8; ++i) h = (h ^ ((digest >> (8 * i)) & 0xff)) * 1099511628211ull;
      for (const char ch : text) h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
      digest = h;
    }
    return fmt::format("{:016x}", digest);
  };
  test_server server;
  auto c = cmdwire::client::connect(server.address());
  REQUIRE(c.has_value());
  CHECK(c->call_line("HASH", "0 x").value() == "cbf29ce484222325");  // the FNV offset basis
  CHECK(c->call_line("HASH", "3 ab").value() == fnv_chain(3, "ab"));
  CHECK(c->call_line("HASH", "100000 hello world").value() == fnv_chain(100000, "hello world"));
  CHECK(c->call_line("HASH", "1 ").value() == fnv_chain(1, ""));
  const auto bad = c->call_line("HASH", "lots x");
  REQUIRE_FALSE(bad.has_value());
  // An argument error is this request's: bad-body, not bad-request (which closes).
  CHECK(bad.error().code == errc::bad_body);
  CHECK(c->call_line("HASH", "0 x").value() == "cbf29ce484222325");
  // The documented ranges: SLEEP 0 to 600000 ms, HASH 0 to 10^9 rounds.
  for (const auto& [name, line] : {std::pair{"SLEEP", "-1"}, std::pair{"SLEEP", "600001"},
                                   std::pair{"HASH", "1000000001 x"}, std::pair{"SLEEP", ""}}) {
    INFO(name << " " << line);
    const auto refused = c->call_line(name, line);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == errc::bad_body);
  }
  CHECK(c->call_line("SLEEP", "0").value() == "slept 0 ms");
}
