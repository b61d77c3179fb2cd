// Adversarial clients against an in-process endpoint: every case here must fail if the
// defence it exercises is removed (limits, timeouts, backpressure, auth, connection cap).
#include "cmdwire/endpoint.hpp"

#include <sys/resource.h>
#include <catch2/catch.hpp>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "cmdwire/client.hpp"
#include "demo/demo_commands.hpp"
#include "support/eventually.hpp"
#include "support/test_server.hpp"

using cmdwire::test::eventually;
using cmdwire::test::raw_socket;
using cmdwire::test::test_server;
using namespace std::chrono_literals;

namespace {

std::string frame(std::string_view name, std::string_view enc, std::string_view body) {
  std::string out(name);
  if (!enc.empty()) out.append(" ").append(enc);
  out.append(" ").append(std::to_string(body.size())).append("\n").append(body);
  return out;
}

void expect_alive(const test_server& server) {
  raw_socket probe(server.port());
  probe.send("PING\n");
  CHECK(probe.read_exact(10) == "OK 4\nPONG\n");
}

/// ComplexData in cereal portable binary, `depth` levels deep, written iteratively.
std::string deep_struct_binary(std::size_t depth) {
  std::string out(1, '\x01');         // little-endian marker
  const std::string level(32, '\0');  // n, and empty s, m, p (8-byte sizes)
  for (std::size_t i = 0; i < depth; ++i) out.append(level).append(1, '\x01');  // child valid
  out.append(level).append(1, '\x00');
  return out;
}

/// pb::Complex nested `depth` levels through field 5, written iteratively.
std::string deep_proto_binary(std::size_t depth) {
  std::vector<std::size_t> lengths(depth + 1, 0);  // lengths[k]: bytes of the k-th innermost
  const auto varint_size = [](std::size_t v) {
    std::size_t n = 1;
    while (v >= 0x80) v >>= 7, ++n;
    return n;
  };
  for (std::size_t k = 1; k <= depth; ++k) {
    lengths[k] = 1 + varint_size(lengths[k - 1]) + lengths[k - 1];
  }
  std::string out;
  out.reserve(lengths[depth]);
  for (std::size_t k = depth; k >= 1; --k) {
    out.push_back('\x2a');  // field 5, length-delimited
    for (std::size_t v = lengths[k - 1];; v >>= 7) {
      if (v < 0x80) {
        out.push_back(static_cast<char>(v));
        break;
      }
      out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    }
  }
  return out;
}

}  // namespace

TEST_CASE("random garbage closes only the sender's connection", "[hardening]") {
  test_server server;
  std::mt19937 rng(12345);
  for (int round = 0; round < 50; ++round) {
    raw_socket s(server.port());
    std::string junk(1 + rng() % 4096, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    s.send(junk);
    s.shutdown_send();
    (void)s.read_to_eof();  // whatever it answered, it must end the connection
  }
  expect_alive(server);
  CHECK(eventually([&] { return server.ep().stats().connections == 0; }));
}

TEST_CASE("hostile lengths are refused before any allocation", "[hardening]") {
  test_server server;
  const auto [head, code] = GENERATE(table<std::string, std::string>({
      {"ECHO 1000000000\n", "too-large"},
      {"ECHO -5\n", "bad-request"},
      {"ECHO 99999999999999999999999999\n", "too-large"},
      {"ECHO 12abc\n", "bad-request"},
      {"ECHO +5\n", "bad-request"},
  }));
  CAPTURE(head);
  raw_socket s(server.port());
  s.send(head);
  const std::string reply = s.read_to_eof();
  CHECK(reply.starts_with("ERR " + code + " "));
  CHECK(server.ep().stats().buffered_bytes < 64 * 1024);
  expect_alive(server);
}

TEST_CASE("bodies nested 100,000 levels deep get bad-body, not a stack overflow", "[hardening]") {
  test_server server;
  constexpr std::size_t depth = 100000;
  const std::string deep_json_struct = std::string(depth, '[') + std::string(depth, ']');
  std::string deep_json_proto;
  for (std::size_t i = 0; i < depth; ++i) deep_json_proto += "{\"c\":";
  deep_json_proto += "{}" + std::string(depth, '}');
  const auto [request, label] = GENERATE_COPY(table<std::string, std::string>({
      {frame("STRUCT", "", deep_struct_binary(depth)), "STRUCT bin"},
      {frame("STRUCT", "json", deep_json_struct), "STRUCT json"},
      {frame("PROTO", "", deep_proto_binary(depth)), "PROTO bin"},
      {frame("PROTO", "json", deep_json_proto), "PROTO json"},
  }));
  CAPTURE(label);
  raw_socket s(server.port());
  s.send(request);
  s.send("PING\n");
  // The connection survives a bad body; the PING behind it is still answered.
  const std::string replies = s.read_until("OK 4\nPONG\n");
  CHECK(replies.starts_with("ERR bad-body "));
  CHECK(replies.ends_with("OK 4\nPONG\n"));
}

TEST_CASE("JSON numbers that crashed rapidjson get bad-body or a reply, and PING still works",
          "[hardening][json]") {
  // Issue 14: rapidjson 1.1.0's full-precision strtod read out of bounds on these.
  const std::vector<std::string> numbers = {
      "0." + std::string(445, '0'),
      "5521.4555555555555554e-343",
      "555010766721.4555555555555554e-349",
      "5555500.10762166721316515555555550555555555555554e-355",
      "0." + std::string(5000, '0'),
      "1e99999999",
      "-0." + std::string(400, '0') + "1",
      std::string(400, '7'),
  };
  test_server server;
  for (const auto& number : numbers) {
    for (const std::string command : {"STRUCT", "PROTO"}) {
      const std::vector<std::string> bodies = {
          number,
          R"({"zz":)" + number + "}",
          R"({"n":)" + number + "}",
          R"({"n":1,"zz":[[{"a":[)" + number + R"(]}],{"b":{"c":)" + number + "}}]}",
      };
      for (const auto& body : bodies) {
        CAPTURE(command, body.substr(0, 80));
        raw_socket s(server.port());
        s.send(frame(command, "json", body));
        s.send("PING\n");
        const std::string replies = s.read_until("OK 4\nPONG\n");
        const bool refused = replies.starts_with("ERR bad-body ");
        const bool answered = replies.starts_with("OK ");
        CHECK((refused || answered));
        // A bare number is never a STRUCT or PROTO request.
        if (body == number) CHECK(refused);
        CHECK(replies.ends_with("OK 4\nPONG\n"));
      }
    }
  }
  // The error names the number.
  raw_socket s(server.port());
  s.send(frame("STRUCT", "json", R"({"zz":1e99999999})"));
  s.send("PING\n");
  const std::string replies = s.read_until("OK 4\nPONG\n");
  CHECK(replies.starts_with("ERR bad-body "));
  CHECK(replies.find("JSON number '1e99999999' is outside the range of a double\n") !=
        std::string::npos);
  expect_alive(server);
}

TEST_CASE("malformed command lines", "[hardening]") {
  test_server server;
  SECTION("1 MiB without a newline is too-large, answered before the megabyte ends") {
    raw_socket s(server.port());
    try {
      s.send(std::string(1 << 20, 'A'));
    } catch (const std::exception&) {
      // The server may stop reading part way through the megabyte; the reply still comes.
    }
    CHECK(s.read_to_eof().starts_with("ERR too-large "));
  }
  SECTION("a NUL byte in a command name") {
    raw_socket s(server.port());
    s.send(std::string("PI\0NG\n", 6));
    CHECK(s.read_to_eof().starts_with("ERR bad-request "));
  }
  SECTION("non-ASCII bytes in a command name") {
    raw_socket s(server.port());
    s.send("P\xc3\xa9NG\n");
    CHECK(s.read_to_eof().starts_with("ERR bad-request "));
  }
  expect_alive(server);
}

TEST_CASE("1,000 idle connections do not slow a served client", "[hardening]") {
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < 2200) {
    WARN("skipped: RLIMIT_NOFILE hard limit " << files.rlim_max << " is below 2200");
    return;
  }
  test_server server;
  auto c = cmdwire::client::connect(server.address()).value();
  const auto time_pings = [&] {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 200; ++i) REQUIRE(c.call<cmdwire::demo::Ping>({}).value() == "PONG");
    return std::chrono::steady_clock::now() - start;
  };
  const auto alone = time_pings();
  std::vector<std::unique_ptr<raw_socket>> idle;
  for (int i = 0; i < 1000; ++i) idle.push_back(std::make_unique<raw_socket>(server.port()));
  REQUIRE(eventually([&] { return server.ep().stats().connections >= 1001; }));
  const auto crowded = time_pings();
  using ms = std::chrono::duration<double, std::milli>;
  INFO("200 pings alone: " << ms(alone).count() << " ms, with 1,000 idle: " << ms(crowded).count()
                           << " ms");
  // Idle connections cost nothing per request; allow generous noise on a shared machine.
  CHECK(crowded < alone * 10 + 200ms);
}

TEST_CASE("timeouts", "[hardening]") {
  cmdwire::endpoint_options options;
  options.request_timeout = 300ms;
  options.idle_timeout = 400ms;
  options.write_timeout = 300ms;
  test_server server(options);
  SECTION("slowloris: a request trickling in a byte at a time is cut off") {
    raw_socket s(server.port());
    const std::string request = "ECHO 1000\n" + std::string(1000, 'x');
    const auto start = std::chrono::steady_clock::now();
    std::size_t sent = 0;
    bool closed = false;
    // Pacing the attacker is the point of the test, not synchronisation.
    while (sent < request.size() && std::chrono::steady_clock::now() - start < 10s) {
      try {
        s.send(request.substr(sent, 1));
      } catch (const std::exception&) {
        closed = true;
        break;
      }
      ++sent;
      std::this_thread::sleep_for(20ms);
    }
    CHECK((closed || sent < request.size()));
    CHECK(s.read_to_eof().empty());
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK(server.ep().stats().timed_out >= 1);
  }
  SECTION("an idle connection is closed") {
    raw_socket s(server.port());
    s.send("PING\n");
    CHECK(s.read_exact(10) == "OK 4\nPONG\n");
    CHECK(s.read_to_eof().empty());  // closed by the server, well before the 10 s read limit
    CHECK(server.ep().stats().timed_out >= 1);
  }
  SECTION("a client that pipelines 100,000 requests and never reads") {
    raw_socket s(server.port());
    s.set_nonblocking();
    std::string batch;
    // 27 MB of requests whose replies are as big: more than loopback socket buffers hold.
    const std::string one = "ECHO 256\n" + std::string(256, 'e');
    batch.reserve(one.size() * 100000);
    for (int i = 0; i < 100000; ++i) batch += one;
    std::size_t sent = 0;
    const auto start = std::chrono::steady_clock::now();
    std::size_t peak = 0;
    while (sent < batch.size() && std::chrono::steady_clock::now() - start < 5s) {
      sent += s.try_send(std::string_view(batch).substr(sent));
      peak = std::max(peak, server.ep().stats().buffered_bytes);
    }
    // The server stopped reading once its replies could not be written.
    CHECK(sent < batch.size());
    peak = std::max(peak, server.ep().stats().buffered_bytes);
    CHECK(peak <= options.max_reply_backlog + 256 * 1024);
    // ...and drops the client when its write timeout passes.
    CHECK(eventually([&] { return server.ep().stats().timed_out >= 1; }));
  }
  expect_alive(server);
}

TEST_CASE("clients that vanish or half-close", "[hardening]") {
  test_server server;
  SECTION("disconnect in the middle of a body") {
    {
      raw_socket s(server.port());
      s.send("ECHO 100\nabc");
    }
    CHECK(eventually([&] { return server.ep().stats().connections == 0; }));
  }
  SECTION("half-closed socket still gets its replies") {
    raw_socket s(server.port());
    s.send("PING\nECHO 2\nhi");
    s.shutdown_send();
    CHECK(s.read_to_eof() == "OK 4\nPONG\nOK 2\nhi\n");
  }
  expect_alive(server);
}

TEST_CASE("connection limit", "[hardening]") {
  cmdwire::endpoint_options options;
  options.max_connections = 3;
  test_server server(options);
  std::vector<std::unique_ptr<raw_socket>> held;
  for (int i = 0; i < 3; ++i) held.push_back(std::make_unique<raw_socket>(server.port()));
  REQUIRE(eventually([&] { return server.ep().stats().connections == 3; }));
  raw_socket extra(server.port());
  CHECK(extra.read_to_eof().starts_with("ERR busy "));
  CHECK(server.ep().stats().rejected_busy == 1);
  held.pop_back();  // one leaves: room for the next
  REQUIRE(eventually([&] { return server.ep().stats().connections == 2; }));
  expect_alive(server);
}

TEST_CASE("shared-secret auth", "[hardening]") {
  cmdwire::endpoint_options options;
  options.auth_token = "correct horse";
  test_server server(options);
  SECTION("a request before AUTH is refused and closed") {
    raw_socket s(server.port());
    s.send("PING\n");
    CHECK(s.read_to_eof().starts_with("ERR auth "));
  }
  SECTION("a wrong token is refused") {
    raw_socket s(server.port());
    s.send("AUTH correct horsf\nPING\n");
    const std::string reply = s.read_to_eof();
    CHECK(reply.starts_with("ERR auth "));
    CHECK(reply.find("PONG") == std::string::npos);
  }
  SECTION("an AUTH line longer than max_line gets too-large, like any other line") {
    raw_socket s(server.port());
    s.send("AUTH " + std::string(5000, 'x') + "\n");
    CHECK(s.read_to_eof() == "ERR too-large 30\nAUTH line longer than max_line\n");
  }
  SECTION("blank lines and HEALTH come before AUTH; nothing else does") {
    raw_socket s(server.port());
    s.send("\n\r\nHEALTH\nAUTH correct horse\nPING\n");
    CHECK(s.read_exact(29) == "OK 7\nSERVING\nOK 0\n\nOK 4\nPONG\n");
    raw_socket stats(server.port());
    stats.send("HEALTH\nSTATS\n");
    const std::string reply = stats.read_to_eof();
    CHECK(reply.starts_with("OK 7\nSERVING\nERR auth "));
    CHECK(reply.find("uptime") == std::string::npos);
  }
  SECTION("HEALTH checks and blank lines cannot hold a connection open without AUTH") {
    // The wait for AUTH is bounded by the request timeout as a whole, not per line.
    cmdwire::endpoint_options quick = options;
    quick.request_timeout = std::chrono::milliseconds(300);
    test_server strict(quick);
    raw_socket s(strict.port());
    const auto began = std::chrono::steady_clock::now();
    bool closed = false;
    while (!closed && std::chrono::steady_clock::now() - began < std::chrono::seconds(5)) {
      try {
        s.send("\nHEALTH\n");
        closed = s.read_exact(13) != "OK 7\nSERVING\n";
      } catch (const std::exception&) {
        closed = true;  // EOF or reset: the server closed
      }
    }
    CHECK(closed);
    CHECK(std::chrono::steady_clock::now() - began < std::chrono::seconds(3));
    CHECK(eventually([&] { return strict.ep().stats().connections == 0; }));
  }
  SECTION("the right token opens the connection") {
    raw_socket s(server.port());
    s.send("AUTH correct horse\nPING\n");
    CHECK(s.read_exact(16) == "OK 0\n\nOK 4\nPONG\n");
  }
  SECTION("the client sends the token from its options") {
    cmdwire::client_options copt;
    copt.auth_token = "correct horse";
    auto c = cmdwire::client::connect(server.address(), copt);
    REQUIRE(c.has_value());
    CHECK(c->call<cmdwire::demo::Ping>({}).value() == "PONG");
    copt.auth_token = "wrong";
    auto refused = cmdwire::client::connect(server.address(), copt);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == cmdwire::errc::unauthorized);
  }
}

TEST_CASE("AUTH on a server without a token is an ordinary, unregistered command", "[hardening]") {
  test_server server;
  SECTION("a word token makes a malformed request line") {
    raw_socket s(server.port());
    s.send("AUTH s3cret\nPING\n");
    const std::string reply = s.read_to_eof();
    CHECK(reply.starts_with("ERR bad-request "));
    CHECK(reply.find("PONG") == std::string::npos);
  }
  SECTION("a numeric token is a LENGTH: its body is read, then unknown-command") {
    raw_socket s(server.port());
    s.send("AUTH 3\nabcPING\n");
    const std::string replies = s.read_until("PONG\n");
    CHECK(replies.starts_with("ERR unknown-command "));
    CHECK(replies.ends_with("OK 4\nPONG\n"));
  }
}

TEST_CASE("subscribers are exempt from the idle timeout, plain connections are not",
          "[hardening]") {
  cmdwire::endpoint_options options;
  options.idle_timeout = 200ms;
  test_server server(options);
  raw_socket subscriber(server.port());
  subscriber.send("SUBSCRIBE\nnews\n");
  CHECK(subscriber.read_exact(10) == "OK 4\nnews\n");
  raw_socket idle(server.port());
  idle.send("PING\n");
  CHECK(idle.read_exact(10) == "OK 4\nPONG\n");
  CHECK(idle.read_to_eof().empty());  // the plain connection is closed as idle...
  // ...while the subscriber, just as quiet for as long, still gets what is published.
  CHECK(server.ep().publish("news", "still here") == 1);
  CHECK(subscriber.read_exact(23) == "MSG news 10\nstill here\n");
}
