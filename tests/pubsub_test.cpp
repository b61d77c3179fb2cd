// Publish/subscribe over loopback: the SUBSCRIBE/PUBLISH frames byte for byte, the client API,
// endpoint::publish from C++, topic isolation, receiver counts, and eviction of a subscriber
// that stops reading.
#include "cmdwire/pubsub.hpp"

#include <fmt/format.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cmdwire/client.hpp"
#include "support/log_capture.hpp"
#include "support/test_server.hpp"

using namespace std::string_literals;
using cmdwire::test::log_capture;
using cmdwire::test::raw_socket;
using cmdwire::test::test_server;

namespace {

/// What a client subscription received, for the test thread to wait on.
class inbox {
 public:
  cmdwire::client::message_handler handler() {
    return [this](std::string_view topic, std::string_view body) {
      std::lock_guard lock(mutex_);
      messages_.emplace_back(std::string(topic) + ":" + std::string(body));
      changed_.notify_all();
    };
  }
  /// Waits for the n-th message (1-based); empty after 10 s.
  std::string wait(std::size_t n) {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, std::chrono::seconds(10), [&] { return messages_.size() >= n; })) {
      return {};
    }
    return messages_[n - 1];
  }
  std::size_t size() {
    std::lock_guard lock(mutex_);
    return messages_.size();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> messages_;
};

/// Reads as many bytes as `expected` holds and checks they are those bytes.
void expect(raw_socket& s, std::string_view expected) {
  CHECK(s.read_exact(expected.size()) == expected);
}

cmdwire::endpoint_options logging_to(log_capture& logs) {
  cmdwire::endpoint_options o;
  o.log = logs.sink();
  return o;
}

}  // namespace

TEST_CASE("MSG frames parse and format", "[pubsub]") {
  std::string frame;
  cmdwire::pubsub::append_message(frame, "news", "a\0b"s);
  CHECK(frame == "MSG news 3\na\0b\n"s);
  const cmdwire::wire::limits lim;
  for (std::size_t cut = 0; cut < frame.size(); ++cut) {
    CHECK(cmdwire::pubsub::parse_message(frame.substr(0, cut), lim).state ==
          cmdwire::wire::status::need_more);
  }
  const std::string two = frame + "MSG";  // the parse refers into it
  const auto parsed = cmdwire::pubsub::parse_message(two, lim);
  REQUIRE(parsed.state == cmdwire::wire::status::complete);
  CHECK(parsed.value.topic == "news");
  CHECK(parsed.value.body == "a\0b"s);
  CHECK(parsed.size == frame.size());
  CHECK(cmdwire::pubsub::parse_message("OK 1\nx\n", lim).state == cmdwire::wire::status::error);
  CHECK(cmdwire::pubsub::parse_message("MSG news x\n", lim).state == cmdwire::wire::status::error);
}

TEST_CASE("SUBSCRIBE and PUBLISH over raw sockets, line and framed forms", "[pubsub]") {
  test_server server;
  raw_socket sub(server.port());
  sub.send("SUBSCRIBE\nnews\n");
  expect(sub, "OK 4\nnews\n");

  raw_socket pub(server.port());
  pub.send("PUBLISH\nnews hello all\n");
  expect(pub, "1\n");
  expect(sub, "MSG news 9\nhello all\n");

  SECTION("framed, binary-safe body") {
    const std::string body = "news a\0b\n"s;
    pub.send("PUBLISH 9\n" + body);
    expect(pub, "OK 1\n1\n");
    expect(sub, "MSG news 4\na\0b\n\n"s);
  }
  SECTION("framed SUBSCRIBE with a request id") {
    raw_socket sub2(server.port());
    sub2.send("SUBSCRIBE 6 id=7\nsports");
    expect(sub2, "OK 6 id=7\nsports\n");
    pub.send("PUBLISH\nsports goal\n");
    expect(pub, "1\n");
    expect(sub2, "MSG sports 4\ngoal\n");
  }
  SECTION("topics are isolated") {
    pub.send("PUBLISH\nsports goal\nPUBLISH\nnews second\n");
    expect(pub, "0\n1\n");
    expect(sub, "MSG news 6\nsecond\n");
  }
  SECTION("invalid topics are bad-body and the connection stays usable") {
    pub.send("PUBLISH\nbad\ttopic x\nPING\n");
    CHECK(pub.read_exact(14).starts_with("ERR bad-body "));
  }
}

TEST_CASE("client subscribe and publish, and endpoint::publish from C++", "[pubsub]") {
  log_capture logs;
  test_server server(logging_to(logs));
  auto sub_a = cmdwire::client::connect(server.address());
  auto sub_b = cmdwire::client::connect(server.address());
  auto pub = cmdwire::client::connect(server.address());
  REQUIRE(sub_a.has_value());
  REQUIRE(sub_b.has_value());
  REQUIRE(pub.has_value());
  inbox a;
  inbox b;
  REQUIRE(sub_a->subscribe("news", a.handler()).has_value());
  REQUIRE(sub_b->subscribe("news", b.handler()).has_value());

  auto receivers = pub->publish("news", "hello\0all"s);
  REQUIRE(receivers.has_value());
  CHECK(*receivers == 2);
  CHECK(a.wait(1) == "news:hello\0all"s);
  CHECK(b.wait(1) == "news:hello\0all"s);

  CHECK(server.ep().publish("news", "from c++") == 2);
  CHECK(a.wait(2) == "news:from c++");
  CHECK(b.wait(2) == "news:from c++");
  CHECK(server.ep().publish("weather", "rain") == 0);

  SECTION("a subscribed connection takes no other calls") {
    CHECK(sub_a->call_raw("PING", "").error().code == cmdwire::errc::not_connected);
    CHECK(!sub_a->subscribe("weather", a.handler()).has_value());
  }
  SECTION("closing a subscriber unsubscribes it") {
    sub_b->close();
    REQUIRE(logs.wait_for("unsubscribed from news"));
    CHECK(pub->publish("news", "after").value() == 1);
    CHECK(a.wait(3) == "news:after");
    CHECK(b.size() == 2);
  }
  SECTION("invalid topics are refused before sending") {
    CHECK(pub->publish("bad topic", "x").error().code == cmdwire::errc::bad_request);
  }
}

TEST_CASE("a subscriber that stops reading is disconnected, the others keep receiving",
          "[pubsub]") {
  log_capture logs;
  cmdwire::endpoint_options options = logging_to(logs);
  options.subscriber_limits.hard_bytes = 64 * 1024;
  test_server server(options);

  raw_socket slow(server.port());
  slow.send("SUBSCRIBE\nnews\n");
  expect(slow, "OK 4\nnews\n");  // the last bytes `slow` reads until the end

  auto good = cmdwire::client::connect(server.address());
  REQUIRE(good.has_value());
  inbox received;
  REQUIRE(good->subscribe("news", received.handler()).has_value());

  const std::string chunk(32 * 1024, 'x');
  constexpr std::size_t max_rounds = 4096;  // 128 MiB: far beyond any loopback buffering
  std::size_t rounds = 0;
  std::size_t receivers = 2;
  while (receivers == 2 && rounds < max_rounds) {
    receivers = server.ep().publish("news", chunk);
    ++rounds;
    // Pace on the reading subscriber, so only the slow one can fall behind.
    REQUIRE(received.wait(rounds) == "news:" + chunk);
  }
  CHECK(receivers == 1);
  CHECK(logs.wait_for("disconnected: not reading"));
  CHECK(server.ep().publish("news", "after") == 1);
  CHECK(received.wait(rounds + 1) == "news:after");
  // The slow subscriber sees the close once it drains what was already on its way.
  CHECK(slow.read_to_eof().size() < rounds * chunk.size());
}

TEST_CASE("with its Redis backplane down, PUBLISH delivers locally and says so", "[pubsub]") {
  // A port nothing listens on: the backplane can never connect.
  const std::uint16_t dead_port = cmdwire::test::closed_port();
  log_capture log;
  cmdwire::endpoint_options o;
  o.log = log.sink();
  o.pubsub_redis = cmdwire::redis_backplane_options{};
  o.pubsub_redis->port = dead_port;
  o.pubsub_redis->reconnect_initial = std::chrono::milliseconds(5);
  test_server server(o);
  REQUIRE(log.wait_for("pub/sub backplane down"));

  inbox got;
  auto sub = cmdwire::client::connect(server.address());
  REQUIRE(sub.has_value());
  REQUIRE(sub->subscribe("news", got.handler()).has_value());
  CHECK(log.wait_for("pub/sub backplane down: until it is back, only local publishes reach"));

  raw_socket s(server.port());
  s.send("PUBLISH\nnews hello\n");
  const std::string message = fmt::format(
      "delivered to 1 subscribers on this instance only: the Redis pub/sub backplane at "
      "127.0.0.1:{} is down",
      dead_port);
  CHECK(s.read_until("is down\n") ==
        fmt::format("ERR unavailable {}\n{}\n", message.size(), message));
  CHECK(got.wait(1) == "news:hello");
  CHECK(log.wait_for("PUBLISH news: delivered to 1 local subscribers only"));

  // STATS says so, and counts the failed publish.
  raw_socket st(server.port());
  st.send("STATS\n");
  const std::string stats = cmdwire::test::read_framed_reply(st);
  // "down", or "connecting" while a reconnect attempt is under way; never "ready".
  CHECK(stats.find("\"backplane\":{\"state\":\"") != std::string::npos);
  CHECK(stats.find("\"state\":\"ready\"") == std::string::npos);
  CHECK(stats.find("\"publish_errors\":1") != std::string::npos);
  // endpoint::publish from C++ still reaches local subscribers.
  CHECK(server.ep().publish("news", "from C++") == 1);
  CHECK(got.wait(2) == "news:from C++");
}

TEST_CASE("a Redis that accepts but never answers is dropped after command_timeout", "[pubsub]") {
  // A "Redis" that takes connections and never says a word.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor mute(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const std::uint16_t mute_port = mute.local_endpoint().port();
  std::vector<boost::asio::ip::tcp::socket> held;
  std::atomic<bool> done{false};
  std::thread accepting([&] {
    while (!done.load()) {
      boost::system::error_code ec;
      boost::asio::ip::tcp::socket s(io);
      mute.accept(s, ec);
      if (ec) return;
      held.push_back(std::move(s));
    }
  });
  log_capture log;
  cmdwire::endpoint_options o;
  o.log = log.sink();
  o.pubsub_redis = cmdwire::redis_backplane_options{};
  o.pubsub_redis->port = mute_port;
  o.pubsub_redis->command_timeout = std::chrono::milliseconds(100);
  {
    test_server server(o);
    REQUIRE(log.wait_for("pub/sub backplane connected"));
    raw_socket s(server.port());
    s.send("PUBLISH\nnews hello\n");
    // Without the watchdog this PUBLISH would wait for ever (raw_socket gives up after 10 s).
    const std::string reply = s.read_until(fmt::format("127.0.0.1:{}\n", mute_port));
    CHECK(reply.starts_with("ERR unavailable "));
    CHECK(reply.find("lost the connection to the Redis pub/sub backplane") != std::string::npos);
    CHECK(log.wait_for("no answer in 100 ms: reconnecting"));
  }
  // A blocking accept is woken by one more connection, not by close() from this thread.
  done = true;
  boost::asio::ip::tcp::socket wake(io);
  wake.connect({boost::asio::ip::make_address("127.0.0.1"), mute_port});
  accepting.join();
}
