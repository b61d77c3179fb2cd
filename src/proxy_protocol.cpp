// PROXY protocol v2 headers: the fixed prefix, the address block, and formatting for tests.
#include "proxy_protocol.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <array>
#include <cstring>

namespace cmdwire::detail::proxy_v2 {

namespace {

constexpr std::string_view signature("\r\n\r\n\0\r\nQUIT\n", 12);
constexpr std::uint8_t version_2 = 0x20;
constexpr std::uint8_t command_local = 0x00;
constexpr std::uint8_t command_proxy = 0x01;
constexpr std::uint8_t family_inet = 0x1;
constexpr std::uint8_t family_inet6 = 0x2;
constexpr std::uint8_t transport_stream = 0x1;
constexpr std::size_t inet_block = 12;   // src, dst addresses (4 + 4), ports (2 + 2)
constexpr std::size_t inet6_block = 36;  // 16 + 16 + 2 + 2

error refusal(std::string message) {
  return error{make_error_code(errc::bad_request), std::move(message)};
}

std::uint8_t byte_at(std::string_view s, std::size_t i) noexcept {
  return static_cast<std::uint8_t>(s[i]);
}

std::uint16_t u16_at(std::string_view s, std::size_t i) noexcept {
  return static_cast<std::uint16_t>(byte_at(s, i) << 8 | byte_at(s, i + 1));
}

void append_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

template <std::size_t N>
void append_bytes(std::string& out, const std::array<unsigned char, N>& bytes) {
  out.append(reinterpret_cast<const char*>(bytes.data()), N);
}

}  // namespace

bool could_be_header(std::string_view bytes) noexcept {
  const std::size_t n = std::min(bytes.size(), signature.size());
  return bytes.substr(0, n) == signature.substr(0, n);
}

bool could_be_v1_start(std::string_view bytes) noexcept {
  constexpr std::string_view v1 = "PROXY ";
  return bytes.size() < v1.size() && v1.starts_with(bytes);
}

result<prefix> parse_prefix(std::string_view first16) {
  if (first16.size() < prefix_size || !first16.starts_with(signature)) {
    if (first16.starts_with("PROXY ")) {
      return refusal("PROXY protocol v1 header; only v2 is accepted (HAProxy: send-proxy-v2)");
    }
    return refusal("no PROXY protocol v2 header");
  }
  const std::uint8_t version_command = byte_at(first16, 12);
  if ((version_command & 0xf0) != version_2) {
    return refusal(fmt::format("PROXY header version {} is not 2", version_command >> 4));
  }
  prefix p;
  const std::uint8_t command = version_command & 0x0f;
  if (command != command_local && command != command_proxy) {
    return refusal(fmt::format("PROXY header command {} is neither LOCAL nor PROXY", command));
  }
  p.local = command == command_local;
  p.family = byte_at(first16, 13);
  p.payload = u16_at(first16, 14);
  if (p.payload > max_payload) {
    return refusal(
        fmt::format("PROXY header of {} bytes is over the {}-byte limit", p.payload, max_payload));
  }
  return p;
}

result<std::optional<boost::asio::ip::tcp::endpoint>> parse_source(const prefix& p,
                                                                   std::string_view payload) {
  using boost::asio::ip::tcp;
  if (payload.size() != p.payload) return refusal("PROXY header shorter than its length");
  // LOCAL: the addresses, if any, are the proxy's own; the receiver must ignore them.
  if (p.local) return std::optional<tcp::endpoint>{};
  const std::uint8_t family = p.family >> 4;
  const std::uint8_t transport = p.family & 0x0f;
  if (family != family_inet && family != family_inet6) return std::optional<tcp::endpoint>{};
  if (transport != transport_stream) {
    return refusal(fmt::format("PROXY header for transport {}, not a stream", transport));
  }
  if (family == family_inet) {
    if (payload.size() < inet_block) return refusal("PROXY header: IPv4 block too short");
    boost::asio::ip::address_v4::bytes_type a{};
    std::memcpy(a.data(), payload.data(), a.size());
    return std::optional<tcp::endpoint>(
        tcp::endpoint(boost::asio::ip::address_v4(a), u16_at(payload, 8)));
  }
  if (payload.size() < inet6_block) return refusal("PROXY header: IPv6 block too short");
  boost::asio::ip::address_v6::bytes_type a{};
  std::memcpy(a.data(), payload.data(), a.size());
  return std::optional<tcp::endpoint>(
      tcp::endpoint(boost::asio::ip::address_v6(a), u16_at(payload, 32)));
}

std::string format(const boost::asio::ip::tcp::endpoint& source,
                   const boost::asio::ip::tcp::endpoint& destination) {
  std::string out(signature);
  out.push_back(static_cast<char>(version_2 | command_proxy));
  const bool v4 = source.address().is_v4() && destination.address().is_v4();
  out.push_back(static_cast<char>((v4 ? family_inet : family_inet6) << 4 | transport_stream));
  append_u16(out, static_cast<std::uint16_t>(v4 ? inet_block : inet6_block));
  if (v4) {
    append_bytes(out, source.address().to_v4().to_bytes());
    append_bytes(out, destination.address().to_v4().to_bytes());
  } else {
    const auto as_v6 = [](const boost::asio::ip::address& a) {
      return a.is_v6() ? a.to_v6()
                       : boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, a.to_v4());
    };
    append_bytes(out, as_v6(source.address()).to_bytes());
    append_bytes(out, as_v6(destination.address()).to_bytes());
  }
  append_u16(out, source.port());
  append_u16(out, destination.port());
  return out;
}

std::string format_local() {
  std::string out(signature);
  out.push_back(static_cast<char>(version_2 | command_local));
  out.push_back(0);  // AF_UNSPEC, UNSPEC
  append_u16(out, 0);
  return out;
}

}  // namespace cmdwire::detail::proxy_v2
