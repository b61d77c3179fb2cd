// Pure helpers behind `cmdwire net`: canonical IP text, masks, ICMP echo packets. No I/O.
//
// Everything here is a value computation so the tests can pin the exact bytes and strings:
//
//   auto a = cmdwire::net_tools::parse_ip("0:0:0:0:0:0:0:1");   // a->to_string() == "::1"
//   auto m = cmdwire::net_tools::default_mask(*a);               // /64 for IPv6
//   auto pkt = cmdwire::net_tools::build_echo_request(icmp_family::v4, 7, 1, payload);
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/system/result.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cmdwire::net_tools {

/// Parses an IPv4 or IPv6 address (no brackets, no port). Fails with
/// boost::asio::error::invalid_argument-style codes from make_address.
[[nodiscard]] boost::system::result<boost::asio::ip::address> parse_ip(std::string_view text);

// ---- masks, after Go's net.IPMask

/// A network mask: 4 bytes for IPv4, 16 for IPv6. A value type.
struct ip_mask {
  std::vector<std::uint8_t> bytes;

  /// Total bits: 32 or 128.
  [[nodiscard]] int bits() const noexcept { return static_cast<int>(bytes.size()) * 8; }
  /// Leading one bits when the mask is canonical (ones then zeros), otherwise nullopt;
  /// Go's Mask.Size returns (0, 0) in that case.
  [[nodiscard]] std::optional<int> ones() const noexcept;
  /// Lower-case hex, no separators: "ffffff00" (Go's IPMask.String).
  [[nodiscard]] std::string hex() const;
  /// "255.255.255.0" for 4-byte masks; empty for IPv6 masks, which have no dotted form.
  [[nodiscard]] std::string dotted() const;

  friend bool operator==(const ip_mask&, const ip_mask&) = default;
};

/// The mask of `ones` leading ones out of `bits` (32 or 128); nullopt when ones is out of range
/// or bits is neither 32 nor 128 (Go's CIDRMask returns nil there).
[[nodiscard]] std::optional<ip_mask> cidr_mask(int ones, int bits);

/// IPv4: class-based like Go's DefaultMask (first octet < 128 → /8, < 192 → /16, else /24; class
/// D and E fall into /24 as in Go). IPv6 has no classes, so the conventional /64 subnet.
[[nodiscard]] ip_mask default_mask(const boost::asio::ip::address& addr);

/// `addr` with the host bits cleared; nullopt when the mask length does not match the family.
[[nodiscard]] std::optional<boost::asio::ip::address> apply_mask(
    const boost::asio::ip::address& addr, const ip_mask& mask);

// ---- ICMP echo (RFC 792 for IPv4, RFC 4443 for IPv6)

enum class icmp_family { v4, v6 };

inline constexpr std::uint8_t icmp4_echo_reply = 0;
inline constexpr std::uint8_t icmp4_echo_request = 8;
inline constexpr std::uint8_t icmp6_echo_request = 128;
inline constexpr std::uint8_t icmp6_echo_reply = 129;
inline constexpr std::size_t icmp_header_size = 8;

/// One ICMP echo request or reply, decoded. A value type.
struct icmp_echo {
  std::uint8_t type = 0;
  std::uint8_t code = 0;
  std::uint16_t checksum = 0;  ///< as found on the wire
  std::uint16_t identifier = 0;
  std::uint16_t sequence = 0;
  std::vector<std::uint8_t> payload;
};

/// RFC 1071 internet checksum (one's complement of the one's complement sum, big-endian words).
/// A packet whose checksum field is filled in sums to 0 here.
[[nodiscard]] std::uint16_t internet_checksum(std::span<const std::uint8_t> data) noexcept;

/// Echo request bytes, header in network order. The checksum is filled in for IPv4; for IPv6 it
/// stays 0 because it covers a pseudo-header with addresses only the kernel knows, and Linux
/// fills it in for ICMPv6 sockets (RFC 3542 §3.1).
[[nodiscard]] std::vector<std::uint8_t> build_echo_request(icmp_family family,
                                                           std::uint16_t identifier,
                                                           std::uint16_t sequence,
                                                           std::span<const std::uint8_t> payload);

/// Decodes an ICMP message that is an echo request or reply of `family`; nullopt for anything
/// else (too short, other types), which a pinger skips. Does not verify the checksum.
[[nodiscard]] std::optional<icmp_echo> parse_echo(icmp_family family,
                                                  std::span<const std::uint8_t> packet);

/// True when this is an echo *reply* for `family`.
[[nodiscard]] bool is_echo_reply(icmp_family family, const icmp_echo& echo) noexcept;

/// The ICMP part of an IPv4 datagram as a raw IPv4 socket delivers it (IP header included);
/// empty when the header is malformed.
[[nodiscard]] std::span<const std::uint8_t> strip_ipv4_header(
    std::span<const std::uint8_t> datagram) noexcept;

}  // namespace cmdwire::net_tools
