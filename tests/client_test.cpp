// Client against an in-process endpoint over loopback: typed calls in both encodings, the
// coroutine API, pipelining, many clients, deadlines and every way a call can fail.
#include "cmdwire/client.hpp"

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <latch>
#include <thread>
#include <vector>

#include "demo/demo_commands.hpp"
#include "support/test_server.hpp"

using cmdwire::errc;
using cmdwire::test::test_server;
namespace demo = cmdwire::demo;

namespace {
cmdwire::client connect(const test_server& server, cmdwire::client_options options = {}) {
  auto c = cmdwire::client::connect(server.address(), options);
  REQUIRE(c.has_value());
  return std::move(*c);
}
}  // namespace

TEST_CASE("typed calls of every demo command", "[client]") {
  test_server server;
  auto c = connect(server);
  const auto enc = GENERATE(cmdwire::wire::encoding::bin, cmdwire::wire::encoding::json);
  const cmdwire::call_options opt{enc, {}};
  CAPTURE(cmdwire::wire::to_string(enc));

  CHECK(c.call<demo::Ping>({}, opt).value() == "PONG");
  CHECK(c.call<demo::Echo>("binary\0safe", opt).value() == "binary");  // string_view stops at NUL
  const std::string bytes("a\0b\nc", 5);
  CHECK(c.call<demo::Echo>(bytes, opt).value() == bytes);
  CHECK(c.call<demo::String>("anything", opt).value() == "Thank you.");
  CHECK(c.call<demo::Daytime>({}, opt).value().ends_with("-UTC"));
  CHECK(c.call<demo::Commands>({}, opt).value().find("STRUCT") != std::string::npos);

  const auto summary = c.call<demo::Struct>(demo::make_sample(5, 10), opt);
  REQUIRE(summary.has_value());
  CHECK(summary->depth == 5);
  CHECK(summary->entries == 10);
  CHECK(summary->bytes == 50);
  CHECK(summary->names == "level0/level1/level2/level3/level4");

  const auto proto = c.call<demo::Proto>(demo::make_sample_proto(4, 3), opt);
  REQUIRE(proto.has_value());
  CHECK(proto->depth() == 4);
  CHECK(proto->entries() == 8);
  CHECK(proto->bytes() == 12);
  CHECK(proto->names() == "level0/level1/level2/level3");
}

// The server decodes STRUCT (reuse_request) and PROTO (arena) requests into storage it keeps per
// worker thread: nothing of one request may show through in the next, whatever their shapes.
TEST_CASE("typed requests decoded into reused storage carry nothing over", "[client][reuse]") {
  cmdwire::endpoint_options options;
  options.threads = 1;  // every request on the one worker, so they all share its storage
  test_server server(options);
  auto c = connect(server);
  const cmdwire::call_options json{.enc = cmdwire::wire::encoding::json};
  struct step {
    std::uint32_t depth;
    std::size_t bytes;
    bool as_json;
  };
  for (const step& st : {step{5, 40, false}, step{1, 0, false}, step{3, 2, true}, step{0, 0, false},
                         step{4, 1, false}, step{2, 9, true}, step{1, 3, false}}) {
    CAPTURE(st.depth, st.bytes, st.as_json);
    const cmdwire::call_options opt = st.as_json ? json : cmdwire::call_options{};
    const demo::ComplexData value = demo::make_sample(st.depth, st.bytes);
    const auto s = c.call<demo::Struct>(value, opt);
    REQUIRE(s.has_value());
    CHECK(*s == demo::summarize(value));
    const demo::pb::Complex message = demo::make_sample_proto(st.depth, st.bytes);
    const auto p = c.call<demo::Proto>(message, opt);
    REQUIRE(p.has_value());
    CHECK(p->SerializeAsString() == demo::summarize(message).SerializeAsString());
  }
  // JSON leaves absent fields at their defaults, not at the previous request's values.
  REQUIRE(c.call<demo::Struct>(demo::make_sample(3, 5)).has_value());
  const auto empty = c.call_raw("STRUCT", R"({"s":"only"})", json);
  REQUIRE(empty.has_value());
  CHECK(*empty == R"({"depth":1,"entries":0,"bytes":0,"names":"only"})");
}

TEST_CASE("line-form call", "[client]") {
  test_server server;
  auto c = connect(server);
  CHECK(c.call_line("STRING", "Additional data.").value() == "Thank you.");
  const auto bad = c.call_line("STRING", "two\nlines");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code == errc::bad_request);
}

TEST_CASE("async_call from a coroutine on another io_context", "[client]") {
  test_server server;
  auto c = connect(server);
  boost::asio::io_context ctx;
  std::string got;
  demo::Summary summary;
  boost::asio::co_spawn(
      ctx,
      [&]() -> boost::asio::awaitable<void> {
        auto pong = co_await c.async_call<demo::Ping>({});
        got = pong.value();
        auto s = co_await c.async_call<demo::Struct>(demo::make_sample(2));
        summary = s.value();
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  ctx.run();  // returns only once the coroutine finished: the client kept the context busy
  CHECK(got == "PONG");
  CHECK(summary.depth == 2);
}

TEST_CASE("1,000 calls in flight on one connection come back matched and in order", "[client]") {
  test_server server;
  auto c = connect(server);
  constexpr int calls = 1000;
  std::vector<std::string> replies(calls);
  std::vector<int> completion_order;
  std::mutex mutex;
  std::latch done(calls);
  for (int i = 0; i < calls; ++i) {
    c.async_call_raw("ECHO", "payload-" + std::to_string(i), {},
                     [&, i](std::error_code ec, std::string body) {
                       std::lock_guard lock(mutex);
                       replies[i] = ec ? "error: " + ec.message() : std::move(body);
                       completion_order.push_back(i);
                       done.count_down();
                     });
  }
  done.wait();
  for (int i = 0; i < calls; ++i) REQUIRE(replies[i] == "payload-" + std::to_string(i));
  CHECK(std::is_sorted(completion_order.begin(), completion_order.end()));
  CHECK(c.in_flight() == 0);
}

TEST_CASE("50 concurrent clients", "[client]") {
  test_server server;
  constexpr int clients = 50;
  constexpr int calls_each = 20;
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      auto c = cmdwire::client::connect(server.address());
      if (!c) return;
      for (int i = 0; i < calls_each; ++i) {
        const std::string body = std::to_string(t) + ":" + std::to_string(i);
        const auto reply = c->call<demo::Echo>(body);
        if (reply.has_value() && *reply == body) ++good;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(good == clients * calls_each);
}

TEST_CASE("error replies surface as typed errors", "[client]") {
  test_server server;
  auto c = connect(server);
  SECTION("handler exception") {
    const auto r = c.call<cmdwire::test::Throw>("x");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::internal);
    CHECK(r.error().message == "boom: x");
    CHECK(r.error().to_string() == "internal: boom: x");
    CHECK_THROWS_AS(r.value(), cmdwire::call_failed);
  }
  SECTION("unknown command") {
    const auto r = c.call_raw("NOPE", "");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::unknown_command);
  }
  SECTION("undecodable body") {
    const auto r = c.call_raw("STRUCT", "garbage");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::bad_body);
  }
  // Every one of these leaves the connection usable.
  CHECK(c.call<demo::Ping>({}).value() == "PONG");
}

TEST_CASE("per-call deadline", "[client]") {
  test_server server;
  auto c = connect(server);
  cmdwire::call_options opt;
  opt.deadline = std::chrono::milliseconds(50);
  const auto r = c.call<cmdwire::test::Nap>("500", opt);
  REQUIRE_FALSE(r.has_value());
  // The client's timer and the server's (deadline-ms) fire together: either may tell first.
  CHECK((r.error().code == errc::timeout || r.error().code == errc::deadline_exceeded));
  // The late reply is dropped; the next call gets its own reply.
  CHECK(c.call<demo::Ping>({}).value() == "PONG");
}

TEST_CASE("connection failures", "[client]") {
  SECTION("nothing listening") {
    std::uint16_t port = 0;
    {
      test_server server;
      port = server.port();
    }  // stopped: the port is closed now
    auto c = cmdwire::client::connect("127.0.0.1:" + std::to_string(port));
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().message.starts_with("cannot connect to 127.0.0.1:"));
  }
  SECTION("malformed address") {
    auto c = cmdwire::client::connect("no-port-here");
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().code == errc::bad_address);
  }
  SECTION("the server goes away with a call in flight") {
    cmdwire::endpoint_options options;
    options.drain_timeout = std::chrono::milliseconds(50);
    test_server server(options);
    auto c = connect(server);
    std::thread stopper([&] {
      while (c.in_flight() == 0) std::this_thread::yield();
      server.ep().stop();
    });
    const auto r = c.call<cmdwire::test::Nap>("5000");
    stopper.join();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::connection_lost);
  }
  SECTION("calls after close fail at once") {
    test_server server;
    auto c = connect(server);
    c.close();
    c.close();
    const auto r = c.call<demo::Ping>({});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::not_connected);
  }
}

TEST_CASE("a hostile server's JSON numbers give the client bad_body, not a crash",
          "[client][json]") {
  // Issue 14 from the other side: typed replies are decoded through the same JSON guard.
  cmdwire::endpoint ep;
  ep.handle_raw("STRUCT", [](const cmdwire::request_context&, cmdwire::reply_writer& w) {
    w.body() = R"({"depth":1,"entries":5521.4555555555555554e-343,"bytes":0,"names":""})";
  });
  ep.handle_raw("PROTO", [](const cmdwire::request_context&, cmdwire::reply_writer& w) {
    w.body() = R"({"depth":1e99999999})";
  });
  const auto port = ep.listen("127.0.0.1", 0);
  REQUIRE(port.has_value());
  ep.start();
  auto c = cmdwire::client::connect("127.0.0.1:" + std::to_string(*port));
  REQUIRE(c.has_value());
  const cmdwire::call_options json{.enc = cmdwire::wire::encoding::json};

  // A number too small for a double: rewritten to 0 before rapidjson sees it (PROTOCOL.md §6),
  // so the integer field gets 0 and nothing crashes.
  const auto s = c->call<cmdwire::demo::Struct>(cmdwire::demo::make_sample(1), json);
  REQUIRE(s.has_value());
  CHECK(s->depth == 1);
  CHECK(s->entries == 0);
  const auto p = c->call<cmdwire::demo::Proto>(cmdwire::demo::make_sample_proto(1), json);
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().code == errc::bad_body);
  CHECK(p.error().message == "JSON number '1e99999999' is outside the range of a double");
  // The connection is still good for the next call: the same refusal, not a lost connection.
  const auto again = c->call<cmdwire::demo::Proto>(cmdwire::demo::make_sample_proto(1), json);
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error().code == errc::bad_body);
  CHECK(c->in_flight() == 0);
  ep.stop();
}
