// Tests for client/net_tools: canonical IP text, masks, ICMP checksum and echo packets.
#include "client/net_tools.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace nt = cmdwire::net_tools;

namespace {

std::string canonical(const std::string& text) {
  auto addr = nt::parse_ip(text);
  REQUIRE(addr.has_value());
  return addr->to_string();
}

nt::ip_mask mask_of(const std::string& text) {
  auto addr = nt::parse_ip(text);
  REQUIRE(addr.has_value());
  return nt::default_mask(*addr);
}

}  // namespace

TEST_CASE("parse_ip prints the canonical form", "[net_tools]") {
  CHECK(canonical("0:0:0:0:0:0:0:1") == "::1");
  CHECK(canonical("2001:0DB8:0000:0000:0000:0000:0000:0001") == "2001:db8::1");
  CHECK(canonical("2001:db8:0:0:1:0:0:1") == "2001:db8::1:0:0:1");  // first longest zero run
  CHECK(canonical("::ffff:192.0.2.1") == "::ffff:192.0.2.1");
  CHECK(canonical("192.0.2.1") == "192.0.2.1");
  CHECK(canonical("::") == "::");
}

TEST_CASE("parse_ip rejects what is not an address", "[net_tools]") {
  for (const char* bad :
       {"", "1.2.3", "1.2.3.400", "example.com", "::1::2", "[::1]", "127.0.0.1:80", "1.2.3.4 "}) {
    INFO(bad);
    CHECK_FALSE(nt::parse_ip(bad).has_value());
  }
}

TEST_CASE("default masks are class-based for IPv4 and /64 for IPv6", "[net_tools]") {
  SECTION("class A") {
    const auto m = mask_of("10.1.2.3");
    CHECK(m.hex() == "ff000000");
    CHECK(m.dotted() == "255.0.0.0");
    CHECK(m.ones() == 8);
    CHECK(m.bits() == 32);
  }
  SECTION("class B") {
    const auto m = mask_of("172.16.5.4");
    CHECK(m.dotted() == "255.255.0.0");
    CHECK(m.ones() == 16);
  }
  SECTION("class C") {
    const auto m = mask_of("192.168.1.7");
    CHECK(m.hex() == "ffffff00");
    CHECK(m.ones() == 24);
  }
  SECTION("class D and E fall into /24 as in Go") {
    CHECK(mask_of("224.0.0.1").ones() == 24);
    CHECK(mask_of("250.0.0.1").ones() == 24);
  }
  SECTION("class boundaries") {
    CHECK(mask_of("127.255.255.255").ones() == 8);
    CHECK(mask_of("128.0.0.0").ones() == 16);
    CHECK(mask_of("191.255.0.0").ones() == 16);
    CHECK(mask_of("192.0.0.0").ones() == 24);
  }
  SECTION("IPv6") {
    const auto m = mask_of("2001:db8::1");
    CHECK(m.hex() == "ffffffffffffffff0000000000000000");
    CHECK(m.dotted().empty());
    CHECK(m.ones() == 64);
    CHECK(m.bits() == 128);
  }
}

TEST_CASE("cidr_mask builds masks of any length and rejects impossible ones", "[net_tools]") {
  CHECK(nt::cidr_mask(0, 32)->hex() == "00000000");
  CHECK(nt::cidr_mask(20, 32)->dotted() == "255.255.240.0");
  CHECK(nt::cidr_mask(31, 32)->dotted() == "255.255.255.254");
  CHECK(nt::cidr_mask(32, 32)->dotted() == "255.255.255.255");
  CHECK(nt::cidr_mask(48, 128)->hex() == "ffffffffffff00000000000000000000");
  CHECK(nt::cidr_mask(127, 128)->hex() == "fffffffffffffffffffffffffffffffe");
  for (int ones : {0, 1, 7, 9, 20, 32}) CHECK(nt::cidr_mask(ones, 32)->ones() == ones);
  for (int ones : {0, 33, 64, 100, 128}) CHECK(nt::cidr_mask(ones, 128)->ones() == ones);
  CHECK_FALSE(nt::cidr_mask(33, 32).has_value());
  CHECK_FALSE(nt::cidr_mask(-1, 32).has_value());
  CHECK_FALSE(nt::cidr_mask(8, 64).has_value());
}

TEST_CASE("ones() reports non-canonical masks like Go's Size (0, 0)", "[net_tools]") {
  CHECK_FALSE(nt::ip_mask{{0xff, 0x00, 0xff, 0x00}}.ones().has_value());
  CHECK_FALSE(nt::ip_mask{{0xff, 0xd0, 0x00, 0x00}}.ones().has_value());
  CHECK(nt::ip_mask{{0xff, 0xf0, 0x00, 0x00}}.ones() == 12);
}

TEST_CASE("apply_mask clears the host bits", "[net_tools]") {
  const auto v4 = *nt::parse_ip("192.168.1.7");
  CHECK(nt::apply_mask(v4, *nt::cidr_mask(24, 32))->to_string() == "192.168.1.0");
  CHECK(nt::apply_mask(v4, *nt::cidr_mask(20, 32))->to_string() == "192.168.0.0");
  CHECK(nt::apply_mask(v4, *nt::cidr_mask(32, 32))->to_string() == "192.168.1.7");
  const auto v6 = *nt::parse_ip("2001:db8:1:2:3:4:5:6");
  CHECK(nt::apply_mask(v6, *nt::cidr_mask(64, 128))->to_string() == "2001:db8:1:2::");
  CHECK(nt::apply_mask(v6, *nt::cidr_mask(48, 128))->to_string() == "2001:db8:1::");
  // A mask of the wrong family has no meaning.
  CHECK_FALSE(nt::apply_mask(v4, *nt::cidr_mask(64, 128)).has_value());
  CHECK_FALSE(nt::apply_mask(v6, *nt::cidr_mask(24, 32)).has_value());
}

TEST_CASE("internet_checksum follows RFC 1071", "[net_tools]") {
  // RFC 1071 §3 worked example: the one's complement sum of these bytes is 0xddf2.
  const std::vector<std::uint8_t> rfc = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK(nt::internet_checksum(rfc) == static_cast<std::uint16_t>(~0xddf2));
  CHECK(nt::internet_checksum({}) == 0xffff);
  // An odd byte counts as the high byte of a zero-padded word.
  const std::vector<std::uint8_t> odd = {0x12};
  CHECK(nt::internet_checksum(odd) == static_cast<std::uint16_t>(~0x1200));
}

TEST_CASE("ICMPv4 echo request bytes and round trip", "[net_tools]") {
  const std::vector<std::uint8_t> payload = {'a', 'b', 'c'};
  const auto packet = nt::build_echo_request(nt::icmp_family::v4, 0x1234, 0x0102, payload);
  REQUIRE(packet.size() == nt::icmp_header_size + payload.size());
  CHECK(packet[0] == nt::icmp4_echo_request);
  CHECK(packet[1] == 0);
  CHECK(packet[4] == 0x12);
  CHECK(packet[5] == 0x34);
  CHECK(packet[6] == 0x01);
  CHECK(packet[7] == 0x02);
  // A filled-in checksum makes the whole message sum to zero.
  CHECK(nt::internet_checksum(packet) == 0);

  const auto echo = nt::parse_echo(nt::icmp_family::v4, packet);
  REQUIRE(echo.has_value());
  CHECK(echo->type == nt::icmp4_echo_request);
  CHECK(echo->identifier == 0x1234);
  CHECK(echo->sequence == 0x0102);
  CHECK(echo->payload == payload);
  CHECK_FALSE(nt::is_echo_reply(nt::icmp_family::v4, *echo));

  // The reply a peer sends back: type 0, checksum adjusted for the type change.
  auto reply = packet;
  reply[0] = nt::icmp4_echo_reply;
  reply[2] = reply[3] = 0;
  const auto sum = nt::internet_checksum(reply);
  reply[2] = static_cast<std::uint8_t>(sum >> 8);
  reply[3] = static_cast<std::uint8_t>(sum & 0xff);
  const auto parsed = nt::parse_echo(nt::icmp_family::v4, reply);
  REQUIRE(parsed.has_value());
  CHECK(nt::is_echo_reply(nt::icmp_family::v4, *parsed));
  CHECK(parsed->checksum == sum);
}

TEST_CASE("ICMPv6 echo request leaves the checksum to the kernel", "[net_tools]") {
  const std::vector<std::uint8_t> payload(56, 0x5a);
  const auto packet = nt::build_echo_request(nt::icmp_family::v6, 7, 9, payload);
  CHECK(packet[0] == nt::icmp6_echo_request);
  CHECK(packet[2] == 0);
  CHECK(packet[3] == 0);
  auto reply = packet;
  reply[0] = nt::icmp6_echo_reply;
  const auto echo = nt::parse_echo(nt::icmp_family::v6, reply);
  REQUIRE(echo.has_value());
  CHECK(nt::is_echo_reply(nt::icmp_family::v6, *echo));
  CHECK(echo->identifier == 7);
  CHECK(echo->sequence == 9);
  CHECK(echo->payload == payload);
}

TEST_CASE("parse_echo skips what a pinger must ignore", "[net_tools]") {
  const std::vector<std::uint8_t> short_packet = {0, 0, 0, 0, 0, 0, 0};
  CHECK_FALSE(nt::parse_echo(nt::icmp_family::v4, short_packet).has_value());
  // Destination unreachable (v4 type 3) and an ICMPv6 neighbour solicitation (135).
  const std::vector<std::uint8_t> unreachable = {3, 3, 0, 0, 0, 0, 0, 0};
  CHECK_FALSE(nt::parse_echo(nt::icmp_family::v4, unreachable).has_value());
  const std::vector<std::uint8_t> solicitation = {135, 0, 0, 0, 0, 0, 0, 0};
  CHECK_FALSE(nt::parse_echo(nt::icmp_family::v6, solicitation).has_value());
  // The families' type numbers do not cross over.
  const auto v4 = nt::build_echo_request(nt::icmp_family::v4, 1, 1, {});
  CHECK_FALSE(nt::parse_echo(nt::icmp_family::v6, v4).has_value());
}

TEST_CASE("strip_ipv4_header finds the ICMP message in a raw datagram", "[net_tools]") {
  const auto icmp = nt::build_echo_request(nt::icmp_family::v4, 1, 2, {});
  std::vector<std::uint8_t> datagram(20 + icmp.size(), 0);
  datagram[0] = 0x45;  // version 4, 5 words of header
  datagram[8] = 64;    // TTL
  std::copy(icmp.begin(), icmp.end(), datagram.begin() + 20);
  const auto inner = nt::strip_ipv4_header(datagram);
  CHECK(std::vector<std::uint8_t>(inner.begin(), inner.end()) == icmp);

  datagram[0] = 0x46;  // claims 24 header bytes: options present
  CHECK(nt::strip_ipv4_header(datagram).size() == icmp.size() - 4);
  datagram[0] = 0x44;  // header shorter than the minimum
  CHECK(nt::strip_ipv4_header(datagram).empty());
  datagram[0] = 0x65;  // not IPv4
  CHECK(nt::strip_ipv4_header(datagram).empty());
  CHECK(nt::strip_ipv4_header(std::vector<std::uint8_t>(10, 0x45)).empty());
}
