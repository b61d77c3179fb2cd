// PROXY protocol v2: the header parser and formatter byte for byte, and an endpoint with
// proxy_protocol on: the client address it carries becomes the peer, LOCAL keeps the real one,
// and a connection without a valid header is refused with a log line.
#include "src/proxy_protocol.hpp"

#include <catch2/catch.hpp>
#include <string>

#include "cmdwire/endpoint.hpp"
#include "support/log_capture.hpp"
#include "support/test_server.hpp"

using namespace std::string_literals;
namespace proxy = cmdwire::detail::proxy_v2;
using boost::asio::ip::make_address;
using boost::asio::ip::tcp;
using cmdwire::test::log_capture;
using cmdwire::test::raw_socket;

namespace {

const std::string signature("\r\n\r\n\0\r\nQUIT\n", 12);

/// An endpoint that wants PROXY headers and answers PEER with the peer it sees.
class proxied_server {
 public:
  explicit proxied_server(std::chrono::milliseconds request_timeout = std::chrono::seconds(30),
                          std::chrono::milliseconds idle_timeout = std::chrono::minutes(5))
      : ep_(options(request_timeout, idle_timeout)) {
    ep_.handle_raw("PEER", [](const cmdwire::request_context& rc, cmdwire::reply_writer& w) {
      w.body() = rc.peer->address().to_string() + ":" + std::to_string(rc.peer->port());
    });
    auto bound = ep_.listen("127.0.0.1", 0);
    if (!bound) throw std::runtime_error(bound.error().message);
    port_ = *bound;
    ep_.start();
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  log_capture log;

 private:
  cmdwire::endpoint_options options(std::chrono::milliseconds request_timeout,
                                    std::chrono::milliseconds idle_timeout) {
    cmdwire::endpoint_options o;
    o.threads = 1;
    o.request_timeout = request_timeout;
    o.idle_timeout = idle_timeout;
    o.proxy_protocol = true;
    o.log = log.sink();
    return o;
  }
  cmdwire::endpoint ep_;
  std::uint16_t port_ = 0;
};

}  // namespace

TEST_CASE("PROXY v2 headers format as the spec lays them out", "[proxy]") {
  const std::string v4 = proxy::format(tcp::endpoint(make_address("203.0.113.7"), 4242),
                                       tcp::endpoint(make_address("10.0.0.1"), 61000));
  // Signature, version 2 + PROXY, TCP over IPv4, 12 address bytes, then the addresses.
  CHECK(v4 == signature + "\x21\x11\x00\x0c"s + "\xcb\x00\x71\x07"s + "\x0a\x00\x00\x01"s +
                  "\x10\x92"s + "\xee\x48"s);
  const std::string local = proxy::format_local();
  CHECK(local == signature + "\x20\x00\x00\x00"s);
  const std::string v6 = proxy::format(tcp::endpoint(make_address("2001:db8::1"), 1),
                                       tcp::endpoint(make_address("::1"), 2));
  CHECK(v6.size() == 16 + 36);
  CHECK(v6.substr(12, 4) == "\x21\x21\x00\x24"s);
}

TEST_CASE("PROXY v2 headers parse back, and bad ones are refused with a reason", "[proxy]") {
  const auto parse = [](const std::string& header) -> std::string {
    auto p = proxy::parse_prefix(header.substr(0, std::min<std::size_t>(16, header.size())));
    if (!p) return "refused: " + p.error().message;
    if (header.size() < 16 + p->payload) return "short";
    auto source = proxy::parse_source(*p, std::string_view(header).substr(16, p->payload));
    if (!source) return "refused: " + source.error().message;
    if (!*source) return "no address";
    return (*source)->address().to_string() + " " + std::to_string((*source)->port());
  };
  CHECK(parse(proxy::format(tcp::endpoint(make_address("203.0.113.7"), 4242),
                            tcp::endpoint(make_address("10.0.0.1"), 1))) == "203.0.113.7 4242");
  CHECK(parse(proxy::format(tcp::endpoint(make_address("2001:db8::7"), 65535),
                            tcp::endpoint(make_address("::1"), 1))) == "2001:db8::7 65535");
  CHECK(parse(proxy::format_local()) == "no address");
  // LOCAL with addresses (some proxies send them): ignored, as the spec says.
  CHECK(parse(signature + "\x20\x11\x00\x0c"s + std::string(12, 'x')) == "no address");
  // PROXY over AF_UNIX or UNSPEC carries no IP: the connection's own peer stands.
  CHECK(parse(signature + "\x21\x00\x00\x00"s) == "no address");
  // TLVs after the addresses are skipped.
  CHECK(parse(signature + "\x21\x11\x00\x10"s + "\x01\x02\x03\x04"s + "\x05\x06\x07\x08"s +
              "\x00\x50"s + "\x00\x51"s + "\x04\x00\x01\x00"s) == "1.2.3.4 80");

  CHECK(parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n") ==
        "refused: PROXY protocol v1 header; only v2 is accepted (HAProxy: send-proxy-v2)");
  CHECK(parse("PING\n") == "refused: no PROXY protocol v2 header");
  CHECK(parse(signature + "\x11\x11\x00\x0c"s) == "refused: PROXY header version 1 is not 2");
  CHECK(parse(signature + "\x22\x11\x00\x0c"s) ==
        "refused: PROXY header command 2 is neither LOCAL nor PROXY");
  CHECK(parse(signature + "\x21\x11\x08\x01"s) ==
        "refused: PROXY header of 2049 bytes is over the 2048-byte limit");
  CHECK(parse(signature + "\x21\x11\x00\x04"s + "abcd"s) ==
        "refused: PROXY header: IPv4 block too short");
  CHECK(parse(signature + "\x21\x12\x00\x0c"s + std::string(12, 'x')) ==
        "refused: PROXY header for transport 2, not a stream");

  CHECK(proxy::could_be_header(""));
  CHECK(proxy::could_be_header(signature.substr(0, 5)));
  CHECK(proxy::could_be_header(signature + "\x21"));
  CHECK_FALSE(proxy::could_be_header("P"));
  CHECK_FALSE(proxy::could_be_header("\r\n\r\n\r"));

  // A v1 header is waited for until its first 6 bytes are known, so it is refused by name.
  CHECK(proxy::could_be_v1_start(""));
  CHECK(proxy::could_be_v1_start("PRO"));
  CHECK(proxy::could_be_v1_start("PROXY"));
  CHECK_FALSE(proxy::could_be_v1_start("PROXY "));
  CHECK_FALSE(proxy::could_be_v1_start("PING"));
}

TEST_CASE("with proxy_protocol, the header's client address is the peer", "[proxy]") {
  proxied_server server;
  raw_socket s(server.port());
  // Byte by byte: the header may arrive in any pieces, and nothing after it is swallowed.
  const std::string header = proxy::format(tcp::endpoint(make_address("203.0.113.7"), 4242),
                                           tcp::endpoint(make_address("127.0.0.1"), 1));
  for (const char c : header) s.send(std::string(1, c));
  s.send("PEER 0\n");
  CHECK(cmdwire::test::read_framed_reply(s) == "OK 16\n203.0.113.7:4242");
  CHECK(server.log.wait_for("203.0.113.7:4242 (via 127.0.0.1:"));
  CHECK(server.log.wait_for("PROXY header: client address taken from it"));
}

TEST_CASE("with proxy_protocol, a LOCAL header (a health check) keeps the real peer", "[proxy]") {
  proxied_server server;
  raw_socket s(server.port());
  s.send(proxy::format_local() + "PEER 0\nHEALTH\n");
  const std::string peer = cmdwire::test::read_framed_reply(s);
  CHECK(peer.starts_with("OK "));
  CHECK(peer.find("\n127.0.0.1:") != std::string::npos);
  CHECK(peer.find("\n127.0.0.1:0") == std::string::npos);
  CHECK(cmdwire::test::read_framed_reply(s) == "OK 7\nSERVING");
}

TEST_CASE("with proxy_protocol, a connection without a valid header is refused and logged",
          "[proxy]") {
  proxied_server server;
  SECTION("a command first: refused at its first byte, not after a timeout") {
    raw_socket s(server.port());
    s.send("PING\n");
    CHECK(s.read_to_eof() ==
          "ERR bad-request 64\nexpected a PROXY protocol v2 header: no PROXY protocol v2 "
          "header\n");
    CHECK(
        server.log.wait_for("refused: no PROXY protocol v2 header (this server expects a "
                            "PROXY protocol v2 header first: --proxy-protocol)"));
  }
  SECTION("a v1 header") {
    raw_socket s(server.port());
    s.send("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nPING\n");
    CHECK(s.read_to_eof().find("only v2 is accepted") != std::string::npos);
    CHECK(server.log.wait_for("refused: PROXY protocol v1 header"));
  }
  SECTION("a v1 header whose first bytes come alone") {
    raw_socket s(server.port());
    s.send("PRO");  // the server reads this alone, and must wait for more, not refuse it
    s.send("XY TCP4 1.2.3.4 5.6.7.8 1 2\r\nPING\n");
    CHECK(s.read_to_eof().find("only v2 is accepted") != std::string::npos);
  }
  SECTION("a header whose length is over the limit") {
    raw_socket s(server.port());
    s.send(signature + "\x21\x11\xff\xff"s);
    CHECK(s.read_to_eof().find("over the 2048-byte limit") != std::string::npos);
  }
}

TEST_CASE("with proxy_protocol, a header that stops half-way is timed out", "[proxy]") {
  proxied_server server(std::chrono::milliseconds(200));
  raw_socket s(server.port());
  s.send(signature.substr(0, 5));  // could still be a header: the server waits, but not forever
  CHECK(s.read_to_eof().empty());
  CHECK(server.log.wait_for("request not completed in time: closing"));
}

TEST_CASE("with proxy_protocol and no request timeout, a silent client gets the idle timeout",
          "[proxy]") {
  proxied_server server(std::chrono::milliseconds(0), std::chrono::milliseconds(200));
  raw_socket s(server.port());  // connects and says nothing
  CHECK(s.read_to_eof().empty());
  CHECK(server.log.wait_for("request not completed in time: closing"));
}
