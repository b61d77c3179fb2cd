// Pure helpers behind `cmdwire net`: canonical IP text, masks, ICMP echo packets.
#include "client/net_tools.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <bit>

namespace cmdwire::net_tools {

namespace asio_ip = boost::asio::ip;

boost::system::result<asio_ip::address> parse_ip(std::string_view text) {
  boost::system::error_code ec;
  // make_address wraps inet_pton, whose output (to_string) is the canonical RFC 5952 form.
  auto addr = asio_ip::make_address(std::string(text), ec);
  if (ec) return ec;
  return addr;
}

// ---- masks

std::optional<int> ip_mask::ones() const noexcept {
  int count = 0;
  bool seen_zero = false;
  for (std::uint8_t byte : bytes) {
    if (seen_zero) {
      if (byte != 0) return std::nullopt;
      continue;
    }
    const int leading = std::countl_one(byte);
    // Within a byte the ones must be contiguous from the top: 0b11110000, never 0b11010000.
    if (static_cast<std::uint8_t>(byte << leading) != 0) return std::nullopt;
    count += leading;
    if (leading < 8) seen_zero = true;
  }
  return count;
}

std::string ip_mask::hex() const {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t byte : bytes) out += fmt::format("{:02x}", byte);
  return out;
}

std::string ip_mask::dotted() const {
  if (bytes.size() != 4) return {};
  return fmt::format("{}.{}.{}.{}", bytes[0], bytes[1], bytes[2], bytes[3]);
}

std::optional<ip_mask> cidr_mask(int ones, int bits) {
  if ((bits != 32 && bits != 128) || ones < 0 || ones > bits) return std::nullopt;
  ip_mask mask{std::vector<std::uint8_t>(static_cast<std::size_t>(bits / 8), 0)};
  for (auto& byte : mask.bytes) {
    const int take = std::min(ones, 8);
    byte = static_cast<std::uint8_t>(0xff00u >> take);
    ones -= take;
  }
  return mask;
}

ip_mask default_mask(const asio_ip::address& addr) {
  if (addr.is_v6()) return *cidr_mask(64, 128);
  const auto first = addr.to_v4().to_bytes()[0];
  if (first < 0x80) return *cidr_mask(8, 32);
  if (first < 0xc0) return *cidr_mask(16, 32);
  return *cidr_mask(24, 32);
}

std::optional<asio_ip::address> apply_mask(const asio_ip::address& addr, const ip_mask& mask) {
  if (addr.is_v4()) {
    if (mask.bytes.size() != 4) return std::nullopt;
    auto bytes = addr.to_v4().to_bytes();
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] &= mask.bytes[i];
    return asio_ip::address_v4(bytes);
  }
  if (mask.bytes.size() != 16) return std::nullopt;
  const auto v6 = addr.to_v6();
  auto bytes = v6.to_bytes();
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] &= mask.bytes[i];
  return asio_ip::address_v6(bytes, v6.scope_id());
}

// ---- ICMP

namespace {

std::uint16_t load_be16(std::span<const std::uint8_t> data, std::size_t at) noexcept {
  return static_cast<std::uint16_t>((data[at] << 8) | data[at + 1]);
}

void store_be16(std::vector<std::uint8_t>& data, std::size_t at, std::uint16_t value) {
  data[at] = static_cast<std::uint8_t>(value >> 8);
  data[at + 1] = static_cast<std::uint8_t>(value & 0xff);
}

}  // namespace

std::uint16_t internet_checksum(std::span<const std::uint8_t> data) noexcept {
  std::uint32_t sum = 0;
  std::size_t i = 0;
  for (; i + 1 < data.size(); i += 2) sum += load_be16(data, i);
  // An odd trailing byte is padded with a zero byte on the right (RFC 1071 §4.1).
  if (i < data.size()) sum += static_cast<std::uint32_t>(data[i]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xffff);
}

std::vector<std::uint8_t> build_echo_request(icmp_family family, std::uint16_t identifier,
                                             std::uint16_t sequence,
                                             std::span<const std::uint8_t> payload) {
  // Sized once: appending the payload to a header-sized vector makes GCC 12 warn
  // (-Warray-bounds, a false positive in vector's reallocation) where the call is inlined.
  std::vector<std::uint8_t> packet(icmp_header_size + payload.size(), 0);
  packet[0] = family == icmp_family::v4 ? icmp4_echo_request : icmp6_echo_request;
  packet[1] = 0;  // code
  store_be16(packet, 4, identifier);
  store_be16(packet, 6, sequence);
  std::copy(payload.begin(), payload.end(), packet.begin() + icmp_header_size);
  if (family == icmp_family::v4) store_be16(packet, 2, internet_checksum(packet));
  return packet;
}

std::optional<icmp_echo> parse_echo(icmp_family family, std::span<const std::uint8_t> packet) {
  if (packet.size() < icmp_header_size) return std::nullopt;
  const std::uint8_t type = packet[0];
  const bool is_echo = family == icmp_family::v4
                           ? (type == icmp4_echo_request || type == icmp4_echo_reply)
                           : (type == icmp6_echo_request || type == icmp6_echo_reply);
  if (!is_echo) return std::nullopt;
  icmp_echo echo;
  echo.type = type;
  echo.code = packet[1];
  echo.checksum = load_be16(packet, 2);
  echo.identifier = load_be16(packet, 4);
  echo.sequence = load_be16(packet, 6);
  echo.payload.assign(packet.begin() + icmp_header_size, packet.end());
  return echo;
}

bool is_echo_reply(icmp_family family, const icmp_echo& echo) noexcept {
  return echo.type == (family == icmp_family::v4 ? icmp4_echo_reply : icmp6_echo_reply);
}

std::span<const std::uint8_t> strip_ipv4_header(std::span<const std::uint8_t> datagram) noexcept {
  constexpr std::size_t min_header = 20;
  if (datagram.size() < min_header || (datagram[0] >> 4) != 4) return {};
  const std::size_t header = static_cast<std::size_t>(datagram[0] & 0x0f) * 4;
  if (header < min_header || header > datagram.size()) return {};
  return datagram.subspan(header);
}

}  // namespace cmdwire::net_tools
