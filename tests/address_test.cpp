// Tests for HOST:PORT parsing and printing.
#include "cmdwire/address.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

using cmdwire::errc;

namespace {

cmdwire::host_port parse_ok(std::string_view text, std::string_view default_host = "127.0.0.1") {
  INFO("input: " << std::string(text));
  const auto r = cmdwire::parse_host_port(text, default_host);
  if (!r) FAIL("unexpected error: " << r.error().to_string());
  return *r;
}

std::string parse_error(std::string_view text) {
  INFO("input: " << std::string(text));
  const auto r = cmdwire::parse_host_port(text);
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().code == errc::bad_address);
  REQUIRE_FALSE(r.error().message.empty());
  return r.error().message;
}

}  // namespace

TEST_CASE("HOST:PORT") {
  auto hp = parse_ok("127.0.0.1:61000");
  CHECK(hp.host == "127.0.0.1");
  CHECK(hp.port == 61000);

  hp = parse_ok("localhost:7");
  CHECK(hp.host == "localhost");
  CHECK(hp.port == 7);

  hp = parse_ok("example.com:0");
  CHECK(hp.host == "example.com");
  CHECK(hp.port == 0);

  hp = parse_ok("h:65535");
  CHECK(hp.port == 65535);
}

TEST_CASE("[V6]:PORT") {
  auto hp = parse_ok("[::1]:80");
  CHECK(hp.host == "::1");
  CHECK(hp.port == 80);

  hp = parse_ok("[fe80::1%eth0]:61000");
  CHECK(hp.host == "fe80::1%eth0");
  CHECK(hp.port == 61000);
}

TEST_CASE("port alone takes the default host") {
  auto hp = parse_ok(":61000");
  CHECK(hp.host == "127.0.0.1");
  CHECK(hp.port == 61000);

  hp = parse_ok("61000");
  CHECK(hp.host == "127.0.0.1");
  CHECK(hp.port == 61000);

  hp = parse_ok("8080", "0.0.0.0");
  CHECK(hp.host == "0.0.0.0");
  CHECK(hp.port == 8080);

  hp = parse_ok(":1", "::");
  CHECK(hp.host == "::");
}

TEST_CASE("malformed addresses") {
  CHECK(parse_error("foo") == "'foo' is not HOST:PORT (expected e.g. 127.0.0.1:61000)");
  parse_error("");
  parse_error("host:");
  parse_error(":");
  parse_error("host:http");
  parse_error("host:-1");
  parse_error("host:+80");
  parse_error("host:80 ");
  parse_error("host: 80");
  parse_error("host:0x50");
  parse_error("host:65536");
  parse_error("host:99999999999999999999");
  parse_error("host:000080");
  parse_error("my host:80");
  parse_error("[::1]");
  parse_error("[::1]80");
  parse_error("[::1:80");
  parse_error("[]:80");
  parse_error("[::1]:");
  parse_error("[::1]:x");
}

TEST_CASE("port range edges") {
  CHECK(parse_ok("h:65535").port == 65535);
  CHECK(parse_error("h:65536").find("65536") != std::string::npos);
  CHECK(parse_ok("h:00080").port == 80);
}

TEST_CASE("bare IPv6 is ambiguous and the message shows the bracket form") {
  for (const std::string_view text : {"::1", "::1:80", "fe80::1:61000", "::"}) {
    INFO(std::string(text));
    CHECK(parse_error(text).find("[::1]:") != std::string::npos);
  }
}

TEST_CASE("to_string round trips") {
  CHECK(cmdwire::host_port{"127.0.0.1", 61000}.to_string() == "127.0.0.1:61000");
  CHECK(cmdwire::host_port{"::1", 80}.to_string() == "[::1]:80");
  CHECK(cmdwire::host_port{"localhost", 0}.to_string() == "localhost:0");
  for (const std::string_view text :
       {"127.0.0.1:61000", "[::1]:80", "localhost:7", "[fe80::1]:0"}) {
    CHECK(parse_ok(text).to_string() == text);
  }
}

TEST_CASE("unix:PATH and its length limit") {
  const auto ok = cmdwire::parse_address("unix:/run/app.sock");
  REQUIRE(ok.has_value());
  CHECK(ok->is_unix());
  CHECK(ok->unix_path == "/run/app.sock");
  CHECK(ok->to_string() == "unix:/run/app.sock");
  // sun_path holds 108 bytes with its NUL: 107 is the longest path.
  const std::string longest = "/" + std::string(106, 'a');
  CHECK(cmdwire::parse_address("unix:" + longest).has_value());
  const auto too_long = cmdwire::parse_address("unix:" + longest + "a");
  REQUIRE_FALSE(too_long.has_value());
  CHECK(too_long.error().code == cmdwire::errc::bad_address);
  const auto empty = cmdwire::parse_address("unix:");
  REQUIRE_FALSE(empty.has_value());
  CHECK(empty.error().code == cmdwire::errc::bad_address);
  CHECK_FALSE(cmdwire::parse_address(std::string("unix:/a\0b", 9)).has_value());
  const auto tcp = cmdwire::parse_address("127.0.0.1:7");
  REQUIRE(tcp.has_value());
  CHECK_FALSE(tcp->is_unix());
  CHECK(tcp->to_string() == "127.0.0.1:7");
}
