// The buffered connection under the server's sessions and the client (src/connection.hpp):
// reads against its limits, queued writes, and its separate read and write deadlines.
#include "src/connection.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>

namespace asio = boost::asio;
using asio::ip::tcp;
using cmdwire::detail::connection;
using cmdwire::detail::connection_options;
using namespace std::chrono_literals;

namespace {

// Two ends of one loopback TCP connection, on one io_context run by the test itself.
struct socket_pair {
  asio::io_context ctx{1};
  tcp::socket ours{ctx};
  tcp::socket theirs{ctx};
  socket_pair() {
    tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    theirs.connect(acceptor.local_endpoint());
    ours = acceptor.accept();
  }
};

/// Runs `ctx` until `done` holds a value. Fails when nothing is left to run, or after 10 s: a
/// broken connection fails the test instead of hanging it.
template <class T>
T run_until(asio::io_context& ctx, std::optional<T>& done) {
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (!done) {
    if (ctx.stopped()) ctx.restart();  // an earlier run_until ran out of work
    REQUIRE(std::chrono::steady_clock::now() < give_up);
    if (ctx.run_one_for(100ms) == 0) REQUIRE_FALSE(ctx.stopped());  // out of work: never done
  }
  return *done;
}

}  // namespace

TEST_CASE("connection reads lines and exact sizes within its limits") {
  socket_pair p;
  connection_options opt;
  opt.limits.max_line = 16;
  opt.limits.max_body = 64;
  connection conn(std::move(p.ours), opt);
  asio::write(p.theirs, asio::buffer(std::string("hello\r\nabcdefgh") + std::string(20, 'x')));

  std::optional<std::string> line;
  asio::co_spawn(
      p.ctx,
      [&]() -> asio::awaitable<void> {
        auto l = co_await conn.read_line();
        line = l ? std::string(*l) : "error: " + l.error().message;
      },
      asio::detached);
  CHECK(run_until(p.ctx, line) == "hello");

  std::optional<std::string> exact;
  asio::co_spawn(
      p.ctx,
      [&]() -> asio::awaitable<void> {
        auto e = co_await conn.read_exact(8);
        exact = e ? std::string(*e) : "error: " + e.error().message;
      },
      asio::detached);
  CHECK(run_until(p.ctx, exact) == "abcdefgh");

  // 20 bytes with no LF: over max_line, refused rather than buffered without end.
  std::optional<cmdwire::errc> too_long;
  asio::co_spawn(
      p.ctx,
      [&]() -> asio::awaitable<void> {
        auto l = co_await conn.read_line();
        too_long = l ? cmdwire::errc{} : static_cast<cmdwire::errc>(l.error().code.value());
      },
      asio::detached);
  CHECK(run_until(p.ctx, too_long) == cmdwire::errc::too_large);

  std::optional<cmdwire::errc> too_big;
  asio::co_spawn(
      p.ctx,
      [&]() -> asio::awaitable<void> {
        auto e = co_await conn.read_exact(65);
        too_big = e ? cmdwire::errc{} : static_cast<cmdwire::errc>(e.error().code.value());
      },
      asio::detached);
  CHECK(run_until(p.ctx, too_big) == cmdwire::errc::too_large);
}

TEST_CASE("connection: queued bytes go out on flush, and before a read waits") {
  socket_pair p;
  connection conn(std::move(p.ours), connection_options{});
  conn.out() += "one\n";
  conn.out() += "two\n";
  std::optional<std::string> echoed;
  asio::co_spawn(
      p.ctx,
      [&]() -> asio::awaitable<void> {
        auto line = co_await conn.read_line();  // flushes "one\ntwo\n" before it waits
        echoed = line ? std::string(*line) : "error";
      },
      asio::detached);
  // The peer answers only once it has both queued lines: a read that did not flush first
  // would wait forever here.
  std::string got(8, '\0');
  asio::co_spawn(
      p.ctx,
      [&]() -> asio::awaitable<void> {
        co_await asio::async_read(p.theirs, asio::buffer(got), asio::use_awaitable);
        co_await asio::async_write(p.theirs, asio::buffer(std::string("back\n")),
                                   asio::use_awaitable);
      },
      asio::detached);
  CHECK(run_until(p.ctx, echoed) == "back");
  CHECK(got == "one\ntwo\n");
  CHECK(conn.out().empty());
}

TEST_CASE("connection: a read and a write in flight keep their own deadlines") {
  // A subscriber's session reads (no idle limit) while pushes are written: the read must not
  // lift the write deadline, or a peer that stops reading would be kept forever.
  socket_pair p;
  connection_options opt;
  opt.idle_timeout = 0ms;  // reading may wait forever
  opt.write_timeout = 200ms;
  connection conn(std::move(p.ours), opt);
  std::optional<bool> read_ended;
  std::optional<bool> write_ended;
  std::optional<connection::overdue> which;
  const std::string big(64u << 20, 'p');  // far more than loopback buffers hold
  asio::co_spawn(
      p.ctx,
      [&]() -> asio::awaitable<void> {
        auto ec = co_await conn.write(big);
        write_ended = static_cast<bool>(ec);
      },
      asio::detached);
  asio::co_spawn(
      p.ctx,
      [&]() -> asio::awaitable<void> {
        auto ec = co_await conn.read_more(1);
        read_ended = static_cast<bool>(ec);
      },
      asio::detached);
  asio::co_spawn(
      p.ctx, [&]() -> asio::awaitable<void> { which = co_await conn.watch(10ms); }, asio::detached);
  CHECK(run_until(p.ctx, which) == connection::overdue::write);
  CHECK(conn.writing());
  CHECK(conn.reading());
  conn.close();
  CHECK(run_until(p.ctx, write_ended));
  CHECK(run_until(p.ctx, read_ended));
}

TEST_CASE("connection: idle and partial-frame read deadlines") {
  socket_pair p;
  connection_options opt;
  opt.idle_timeout = 100ms;
  opt.request_timeout = 150ms;
  connection conn(std::move(p.ours), opt);
  std::optional<bool> stopped;
  asio::co_spawn(
      p.ctx,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto ec = co_await conn.read_more(conn.pending().size() + 1);
          if (ec) break;
        }
        stopped = true;
      },
      asio::detached);

  SECTION("nothing received: the idle deadline") {
    std::optional<connection::overdue> which;
    asio::co_spawn(
        p.ctx, [&]() -> asio::awaitable<void> { which = co_await conn.watch(5ms); },
        asio::detached);
    CHECK(run_until(p.ctx, which) == connection::overdue::read);
    CHECK_FALSE(conn.frame_in_progress());
  }
  SECTION("part of a frame received: the request deadline, from its first bytes") {
    asio::write(p.theirs, asio::buffer(std::string("ECHO 5\nab")));
    std::optional<connection::overdue> which;
    asio::co_spawn(
        p.ctx, [&]() -> asio::awaitable<void> { which = co_await conn.watch(5ms); },
        asio::detached);
    CHECK(run_until(p.ctx, which) == connection::overdue::read);
    CHECK(conn.frame_in_progress());
    CHECK(conn.pending() == "ECHO 5\nab");
  }
  conn.close();
  CHECK(run_until(p.ctx, stopped));
}

TEST_CASE("connection: the receive buffer grows to what a frame needs, within the limits") {
  socket_pair p;
  connection_options opt;
  opt.initial_buffer = 64;
  opt.limits.max_line = 32;
  opt.limits.max_body = 1000;
  std::atomic<std::size_t> accounted{0};
  opt.buffered_bytes = &accounted;
  std::optional<connection> conn(std::in_place, std::move(p.ours), opt);
  CHECK(accounted.load() >= 64);
  const std::string frame = "ECHO 900\n" + std::string(900, 'b');
  asio::write(p.theirs, asio::buffer(frame));
  std::optional<bool> have_all;
  asio::co_spawn(
      p.ctx,
      [&]() -> asio::awaitable<void> {
        while (conn->pending().size() < frame.size()) {
          if (co_await conn->read_more(frame.size())) break;
        }
        have_all = conn->pending() == frame;
      },
      asio::detached);
  CHECK(run_until(p.ctx, have_all));
  CHECK(accounted.load() >= frame.size());
  CHECK(accounted.load() <= 2 * 32 + 1000 + 64);  // buffer capped at 2 × max_line + max_body
  conn.reset();
  CHECK(accounted.load() == 0);
}

TEST_CASE("connection: reads that fill the buffer grow it towards read_ahead, not past the cap") {
  const std::size_t cap = GENERATE(std::size_t{1 << 20}, std::size_t{3000});
  CAPTURE(cap);
  socket_pair p;
  connection_options opt;
  opt.initial_buffer = 1024;
  opt.read_ahead = 8192;
  opt.limits.max_line = 100;
  opt.limits.max_body = cap - 200;  // 2 × max_line + max_body == cap
  std::optional<connection> conn(std::in_place, std::move(p.ours), opt);
  // A burst far larger than any buffer here, all sent before the first read: every read but
  // the last fills the room it has, as under pipelined load.
  const std::string burst(64 * 1024, 'x');
  asio::write(p.theirs, asio::buffer(burst));
  std::optional<std::size_t> largest;
  asio::co_spawn(
      p.ctx,
      [&]() -> asio::awaitable<void> {
        std::size_t got = 0;
        std::size_t most = 0;
        while (got < burst.size()) {
          // Like a session: each read asks for one more byte than it has, then consumes all.
          if (co_await conn->read_more(1)) break;
          // Everything was consumed before, so a read gets the whole buffer as its room.
          got += conn->pending().size();
          most = std::max(most, conn->pending().size());
          conn->consume(conn->pending().size());
        }
        largest = got == burst.size() ? most : 0;
      },
      asio::detached);
  const std::size_t most = run_until(p.ctx, largest);
  REQUIRE(most > 0);  // the whole burst arrived
  // The largest read: the buffer grown from 1 KiB by doubling, to read_ahead, or to the frame
  // cap when that is lower.
  CHECK(most == std::min<std::size_t>(8192, cap));
}
