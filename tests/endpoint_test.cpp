// Endpoint over loopback, checked byte for byte with a raw socket: every demo command, every
// error reply, pipelining, stream handlers and lifecycle.
#include "cmdwire/endpoint.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <regex>
#include <thread>
#include <vector>

#include "cmdwire/client.hpp"
#include "demo/demo_commands.hpp"
#include "support/test_server.hpp"

using namespace std::string_literals;

using cmdwire::test::raw_socket;
using cmdwire::test::test_server;

namespace {
/// Reads one framed reply ("OK n\n...\n" or "ERR code n\n...\n") from a raw socket.
std::string read_reply(raw_socket& s) {
  std::string head;
  while (head.empty() || head.back() != '\n') head += s.read_exact(1);
  // "OK LENGTH ..." or "ERR CODE LENGTH ...": LENGTH is the second or third token.
  std::size_t at = head.find(' ') + 1;
  if (head.starts_with("ERR ")) at = head.find(' ', at) + 1;
  const std::size_t n = std::stoul(head.substr(at, head.find_first_of(" \n", at) - at));
  return head + s.read_exact(n + 1);
}
}  // namespace

TEST_CASE("STRING answers the Go client's exchange byte for byte", "[endpoint]") {
  test_server server;
  raw_socket s(server.port());
  s.send("STRING\nAdditional data.\n");
  CHECK(s.read_exact(11) == "Thank you.\n");
  SECTION("CRLF line endings, as telnet sends them") {
    s.send("STRING\r\nfrom telnet\r\n");
    CHECK(s.read_exact(11) == "Thank you.\n");
  }
  SECTION("framed form answers framed") {
    s.send("STRING 4\nabcd");
    CHECK(read_reply(s) == "OK 10\nThank you.\n");
  }
}

TEST_CASE("demo commands answer in framed form", "[endpoint]") {
  test_server server;
  raw_socket s(server.port());
  s.send("PING\n");
  CHECK(read_reply(s) == "OK 4\nPONG\n");
  s.send("ECHO 11\nhello\0world\n"s.substr(0, 19));
  CHECK(read_reply(s) == std::string("OK 11\nhello\0world\n", 18));
  s.send("ECHO\n");
  CHECK(read_reply(s) == "OK 0\n\n");
  s.send("COMMANDS\n");
  const std::string commands = read_reply(s);
  for (const char* name : {"COMMANDS", "DAYTIME", "ECHO", "PING", "PROTO", "STRING", "STRUCT"}) {
    CHECK(commands.find(std::string("\n") + name) != std::string::npos);
  }
  s.send("DAYTIME\n");
  const std::string daytime = read_reply(s);
  CHECK(daytime.starts_with("OK "));
  CHECK(daytime.find("-UTC\n") != std::string::npos);
  // PROTOCOL.md §7: "Weekday, Month DD, YYYY HH:MM:SS-UTC", zero-padded.
  const std::string line = daytime.substr(daytime.find('\n') + 1);
  static const std::regex format(
      R"(^(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), )"
      R"((January|February|March|April|May|June|July|August|September|October|November|December) )"
      R"([0-3][0-9], [0-9]{4} [0-2][0-9]:[0-5][0-9]:[0-6][0-9]-UTC\n$)");
  CHECK(std::regex_match(line, format));
  // COMMANDS: names separated by LF, no LF at the end of the body (then the frame's own LF).
  s.send("COMMANDS\n");
  const std::string listed = read_reply(s);
  CHECK_FALSE(listed.ends_with("\n\n"));
  SECTION("request ids are echoed") {
    s.send("PING id=42\n");
    CHECK(read_reply(s) == "OK 4 id=42\nPONG\n");
  }
  SECTION("an extra newline after a body is ignored, as nc users type it") {
    s.send("ECHO 2\nhi\n\nPING\n");
    CHECK(read_reply(s) == "OK 2\nhi\n");
    CHECK(read_reply(s) == "OK 4\nPONG\n");
  }
}

TEST_CASE("STRUCT and PROTO decode JSON bodies and answer in JSON", "[endpoint]") {
  test_server server;
  cmdwire::demo::ComplexData data = cmdwire::demo::make_sample(3);
  std::string json;
  cmdwire::codec<cmdwire::demo::ComplexData>::encode(data, cmdwire::wire::encoding::json, json);
  raw_socket s(server.port());
  s.send("STRUCT json " + std::to_string(json.size()) + "\n" + json);
  const std::string reply = read_reply(s);
  CHECK(reply.find("\"depth\":3") != std::string::npos);
  CHECK(reply.find("\"names\":\"level0/level1/level2\"") != std::string::npos);

  const std::string proto_json = R"({"n":"1","s":"root","c":{"s":"kid"}})";
  s.send("PROTO json " + std::to_string(proto_json.size()) + "\n" + proto_json);
  const std::string proto = read_reply(s);
  CHECK(proto.find("\"depth\":2") != std::string::npos);
  CHECK(proto.find("root/kid") != std::string::npos);
}

TEST_CASE("error replies", "[endpoint]") {
  test_server server;
  raw_socket s(server.port());
  SECTION("an unknown command between two good ones: both good ones answered, in order") {
    s.send("PING id=1\nNOPE 3\nxyzPING id=2\n");
    CHECK(read_reply(s) == "OK 4 id=1\nPONG\n");
    CHECK(read_reply(s) == "ERR unknown-command 22\nunknown command 'NOPE'\n");
    CHECK(read_reply(s) == "OK 4 id=2\nPONG\n");
  }
  SECTION("an undecodable body is bad-body and the connection stays usable") {
    s.send("STRUCT 3\n\x01\x02\x03");
    CHECK(read_reply(s).starts_with("ERR bad-body "));
    s.send("STRUCT json 8\n{\"n\":[]}");
    CHECK(read_reply(s).starts_with("ERR bad-body "));
    s.send("PING\n");
    CHECK(read_reply(s) == "OK 4\nPONG\n");
  }
  SECTION("a handler that throws is internal and the connection stays usable") {
    s.send("THROW 3\nabc");
    CHECK(read_reply(s) == "ERR internal 9\nboom: abc\n");
    s.send("PING\n");
    CHECK(read_reply(s) == "OK 4\nPONG\n");
  }
  SECTION("a malformed command line is bad-request, then the server closes") {
    s.send("PI\tNG\nPING\n");
    const std::string rest = s.read_to_eof();
    CHECK(rest.starts_with("ERR bad-request "));
    CHECK(rest.find("PONG") == std::string::npos);
  }
  SECTION("a body over the limit is refused from its length alone, then the server closes") {
    s.send("ECHO 1000000000\n");
    const std::string rest = s.read_to_eof();
    CHECK(rest.starts_with("ERR too-large "));
  }
  SECTION("a request whose deadline passed while queued is not run") {
    // NAP holds the connection for 200 ms; the PING behind it allows 1 ms.
    s.send("NAP 3\n200PING deadline-ms=1\nPING\n");
    CHECK(read_reply(s) == "OK 5\nslept\n");
    CHECK(read_reply(s).starts_with("ERR deadline "));
    CHECK(read_reply(s) == "OK 4\nPONG\n");
  }
}

TEST_CASE("limits are configurable", "[endpoint]") {
  cmdwire::endpoint_options options;
  options.limits.max_body = 16;
  options.limits.max_line = 32;
  test_server server(options);
  raw_socket s(server.port());
  SECTION("body at the limit passes, one above is refused") {
    s.send("ECHO 16\n0123456789abcdef");
    CHECK(read_reply(s) == "OK 16\n0123456789abcdef\n");
    s.send("ECHO 17\n");
    CHECK(s.read_to_eof().starts_with("ERR too-large "));
  }
  SECTION("a command line longer than max_line is refused before its newline arrives") {
    s.send(std::string(40, 'A'));
    CHECK(s.read_to_eof().starts_with("ERR too-large "));
  }
}

TEST_CASE("1,000 pipelined requests in one write are all answered, in order", "[endpoint]") {
  test_server server;
  raw_socket s(server.port());
  std::string batch;
  for (int i = 0; i < 1000; ++i) {
    const std::string body = std::to_string(i);
    batch += "ECHO " + std::to_string(body.size()) + "\n" + body;
  }
  s.send(batch);
  for (int i = 0; i < 1000; ++i) {
    const std::string body = std::to_string(i);
    REQUIRE(read_reply(s) == "OK " + std::to_string(body.size()) + "\n" + body + "\n");
  }
}

TEST_CASE("requests split at every byte boundary give the same replies", "[endpoint]") {
  test_server server;
  const std::string stream = "PING\nECHO 5\nhelloSTRING\nline\nECHO json 2\nhi";
  const std::string expected = "OK 4\nPONG\nOK 5\nhello\nThank you.\nOK 2\nhi\n";
  for (std::size_t split = 1; split < stream.size(); ++split) {
    raw_socket s(server.port());
    s.send(stream.substr(0, split));
    s.send(stream.substr(split));
    s.shutdown_send();
    REQUIRE(s.read_to_eof() == expected);
  }
}

TEST_CASE("a stream handler reads its own body and the session continues after it", "[endpoint]") {
  test_server server;
  raw_socket s(server.port());
  s.send("REVERSE 5\nabcdePING\n");
  CHECK(read_reply(s) == "OK 5\nedcba\n");
  CHECK(read_reply(s) == "OK 4\nPONG\n");
}

TEST_CASE("a slow handler on one connection does not stall another", "[endpoint]") {
  test_server server;  // two worker threads; the sleeper holds neither
  raw_socket slow(server.port());
  slow.send("NAP 4\n2000");
  raw_socket fast(server.port());
  const auto start = std::chrono::steady_clock::now();
  fast.send("PING\n");
  CHECK(read_reply(fast) == "OK 4\nPONG\n");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(1500));
  CHECK(read_reply(slow) == "OK 5\nslept\n");
}

TEST_CASE("endpoint lifecycle", "[endpoint]") {
  SECTION("port 0 binds a free port that port() reports") {
    test_server server;
    CHECK(server.port() != 0);
    CHECK(server.ep().port() == server.port());
  }
  SECTION("stop is idempotent and closes open connections") {
    test_server server;
    raw_socket s(server.port());
    s.send("PING\n");
    CHECK(read_reply(s) == "OK 4\nPONG\n");
    server.ep().stop();
    server.ep().stop();
    CHECK(s.read_to_eof().empty());
  }
  SECTION("stop lets a running request finish and flushes its reply before closing") {
    test_server server;
    raw_socket s(server.port());
    s.send("NAP 3\n300PING\n");
    while (server.naps_started() == 0) std::this_thread::yield();
    server.ep().stop();
    // Both requests were read before stop, so both are answered; then the server closes.
    CHECK(s.read_to_eof() == "OK 5\nslept\nOK 4\nPONG\n");
  }
  SECTION("a handler that outlives drain_timeout is abandoned") {
    cmdwire::endpoint_options options;
    options.drain_timeout = std::chrono::milliseconds(100);
    test_server server(options);
    raw_socket s(server.port());
    s.send("NAP 5\n60000");
    while (server.naps_started() == 0) std::this_thread::yield();
    const auto start = std::chrono::steady_clock::now();
    server.ep().stop();
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));
    CHECK(s.read_to_eof().empty());
  }
  SECTION("stop from two threads at once") {
    test_server server;
    std::thread a([&] { server.ep().stop(); });
    std::thread b([&] { server.ep().stop(); });
    a.join();
    b.join();
    auto c = cmdwire::client::connect(server.address());
    CHECK_FALSE(c.has_value());
  }
  SECTION("listening on a port in use fails with a message") {
    test_server server;
    cmdwire::endpoint other;
    auto bound = other.listen("127.0.0.1", server.port());
    REQUIRE_FALSE(bound.has_value());
    CHECK(bound.error().message.find("cannot listen on 127.0.0.1:") != std::string::npos);
  }
  SECTION("registering after start or twice is refused") {
    test_server server;
    CHECK_THROWS_AS(server.ep().handle_raw("LATE", [](auto&, auto&) {}), std::logic_error);
    cmdwire::endpoint fresh;
    fresh.handle_raw("X", [](auto&, auto&) {});
    CHECK_THROWS_AS(fresh.handle_raw("X", [](auto&, auto&) {}), std::invalid_argument);
    CHECK_THROWS_AS(fresh.handle_raw("bad name", [](auto&, auto&) {}), std::invalid_argument);
  }
}

namespace {
/// Listens on 127.0.0.1, port 0, and starts `ep`; returns the bound port.
std::uint16_t start_on_loopback(cmdwire::endpoint& ep) {
  const auto port = ep.listen("127.0.0.1", 0);
  REQUIRE(port.has_value());
  ep.start();
  return *port;
}

struct Lookup {
  static constexpr std::string_view name = "LOOKUP";
  using request = std::string;
  using response = std::string;
};
struct AsyncLookup {
  static constexpr std::string_view name = "ALOOKUP";
  using request = std::string;
  using response = std::string;
};
}  // namespace

TEST_CASE("typed handlers report failures as values, sync and async", "[endpoint][errors]") {
  using cmdwire::errc;
  cmdwire::endpoint ep;
  ep.handle<Lookup>([](const std::string& key) -> cmdwire::result<std::string> {
    if (key == "apple") return std::string("3");
    if (key == "io") return cmdwire::error{std::make_error_code(std::errc::io_error), "disk"};
    if (key == "local") return cmdwire::make_error(errc::timeout, "client-only code");
    return cmdwire::make_error(errc::bad_body, "no such key: " + key);
  });
  ep.handle<AsyncLookup>(
      [](const std::string& key) -> boost::asio::awaitable<cmdwire::result<std::string>> {
        if (key == "apple") co_return std::string("3");
        co_return cmdwire::make_error(errc::deadline_exceeded);
      });
  const std::uint16_t port = start_on_loopback(ep);

  raw_socket s(port);
  s.send("LOOKUP 5\napple");
  CHECK(read_reply(s) == "OK 1\n3\n");
  s.send("LOOKUP 4\npear");
  CHECK(read_reply(s) == "ERR bad-body 17\nno such key: pear\n");
  // Codes without a wire name (another category, or a client-local one) go out as internal.
  s.send("LOOKUP 2\nio");
  CHECK(read_reply(s) == "ERR internal 4\ndisk\n");
  s.send("LOOKUP 5\nlocal");
  CHECK(read_reply(s) == "ERR internal 16\nclient-only code\n");
  s.send("ALOOKUP 5\napple");
  CHECK(read_reply(s) == "OK 1\n3\n");
  s.send("ALOOKUP 1\nx");
  const std::string described = cmdwire::make_error_code(errc::deadline_exceeded).message();
  REQUIRE_FALSE(described.empty());
  CHECK(read_reply(s) ==
        "ERR deadline " + std::to_string(described.size()) + "\n" + described + "\n");

  // The client sees the same error value the handler returned.
  auto c = cmdwire::client::connect("127.0.0.1:" + std::to_string(port));
  REQUIRE(c.has_value());
  const auto r = c->call<Lookup>(std::string("pear"));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::bad_body);
  CHECK(r.error().message == "no such key: pear");
  ep.stop();
}

TEST_CASE("wire_code maps any error code to one the wire can carry", "[endpoint][errors]") {
  using cmdwire::errc;
  CHECK(cmdwire::wire_code(cmdwire::make_error_code(errc::too_large)) == errc::too_large);
  // bad-request on the wire means "framing lost, closing"; a handler's is this request's only.
  CHECK(cmdwire::wire_code(cmdwire::make_error_code(errc::bad_request)) == errc::bad_body);
  CHECK(cmdwire::wire_code(cmdwire::make_error_code(errc::connection_lost)) == errc::internal);
  CHECK(cmdwire::wire_code(std::make_error_code(std::errc::io_error)) == errc::internal);
  CHECK(cmdwire::make_error(errc::busy).message == cmdwire::make_error_code(errc::busy).message());
  CHECK(cmdwire::make_error(errc::busy, "full").message == "full");
}

TEST_CASE("pub/sub is opt-in, its names are free until enable_pubsub", "[endpoint][pubsub]") {
  SECTION("an endpoint without it answers SUBSCRIBE as unknown") {
    cmdwire::endpoint ep;
    ep.handle<cmdwire::demo::Ping>([](cmdwire::none) { return std::string("PONG"); });
    const std::uint16_t port = start_on_loopback(ep);
    raw_socket s(port);
    s.send("SUBSCRIBE 4\nnewsPING\n");
    CHECK(read_reply(s) == "ERR unknown-command 27\nunknown command 'SUBSCRIBE'\n");
    CHECK(read_reply(s) == "OK 4\nPONG\n");
    ep.stop();
  }
  SECTION("a user may take PUBLISH; enabling pub/sub then is a clear error") {
    cmdwire::endpoint ep;
    ep.handle_raw("PUBLISH", [](const cmdwire::request_context&, cmdwire::reply_writer& w) {
      w.body() = "mine";
    });
    try {
      ep.enable_pubsub();
      FAIL("enable_pubsub accepted a taken name");
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()) ==
            "cmdwire::endpoint: enable_pubsub: command 'PUBLISH' is already registered");
    }
    // Nothing half-registered: SUBSCRIBE is still free.
    ep.handle_raw("SUBSCRIBE", [](const cmdwire::request_context&, cmdwire::reply_writer& w) {
      w.body() = "also mine";
    });
    const std::uint16_t port = start_on_loopback(ep);
    raw_socket s(port);
    s.send("PUBLISH 0\nSUBSCRIBE 0\n");
    CHECK(read_reply(s) == "OK 4\nmine\n");
    CHECK(read_reply(s) == "OK 9\nalso mine\n");
    ep.stop();
  }
  SECTION("enabling it twice is refused") {
    cmdwire::endpoint ep;
    ep.enable_pubsub();
    CHECK_THROWS_AS(ep.enable_pubsub(), std::invalid_argument);
  }
}
