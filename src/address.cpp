// Parsing and printing of HOST:PORT strings as users type them on command lines.
#include "cmdwire/address.hpp"

#include <fmt/format.h>
#include <charconv>

namespace cmdwire {
namespace {

constexpr std::string_view example = "(expected e.g. 127.0.0.1:61000)";

error bad_address(std::string msg) {
  return error{make_error_code(errc::bad_address), std::move(msg)};
}

bool valid_host(std::string_view host) {
  for (const char c : host) {
    const auto u = static_cast<unsigned char>(c);
    // Whitespace and control bytes are never part of a host name, and usually mean a
    // copy-paste accident the user would rather hear about than get a resolver error for.
    if (u <= 0x20 || u == 0x7f || c == '[' || c == ']') return false;
  }
  return true;
}

result<std::uint16_t> parse_port(std::string_view port, std::string_view text) {
  if (port.empty()) return bad_address(fmt::format("'{}' has no port {}", text, example));
  unsigned value = 0;
  // Five digits reach 65535; more (even zero-padded) is a typo, and this keeps from_chars
  // from accepting a wrapped-around number.
  const bool digits_only = port.find_first_not_of("0123456789") == std::string_view::npos;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (!digits_only || ec == std::errc::invalid_argument || end != port.data() + port.size())
    return bad_address(fmt::format("'{}': port '{}' is not a number {}", text, port, example));
  if (ec == std::errc::result_out_of_range || port.size() > 5 || value > 65535)
    return bad_address(fmt::format("'{}': port {} is out of range 0-65535", text, port));
  return static_cast<std::uint16_t>(value);
}

}  // namespace

std::string host_port::to_string() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

result<host_port> parse_host_port(std::string_view text, std::string_view default_host) {
  std::string_view host;
  std::string_view port;
  if (text.empty()) return bad_address(fmt::format("empty address {}", example));

  if (text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos)
      return bad_address(fmt::format("'{}' has no closing ']' (expected e.g. [::1]:61000)", text));
    host = text.substr(1, close - 1);
    if (host.empty()) return bad_address(fmt::format("'{}' has an empty host in brackets", text));
    const std::string_view after = text.substr(close + 1);
    if (after.empty() || after.front() != ':')
      return bad_address(
          fmt::format("'{}' needs :PORT after ']' (expected e.g. [::1]:61000)", text));
    port = after.substr(1);
  } else {
    const std::size_t colon = text.find(':');
    if (colon == std::string_view::npos) {
      // A lone number is a port; anything else would be a host without one.
      if (text.find_first_not_of("0123456789") != std::string_view::npos)
        return bad_address(fmt::format("'{}' is not HOST:PORT {}", text, example));
      host = default_host;
      port = text;
    } else if (text.find(':', colon + 1) != std::string_view::npos) {
      // "::1:80" could be [::1]:80 or [::1:80] with no port: refuse to guess.
      return bad_address(fmt::format(
          "'{}' is ambiguous: write an IPv6 address in brackets, as in [::1]:61000", text));
    } else {
      host = text.substr(0, colon);
      if (host.empty()) host = default_host;
      port = text.substr(colon + 1);
    }
  }

  if (!valid_host(host))
    return bad_address(fmt::format("'{}': host '{}' contains invalid characters", text, host));
  const result<std::uint16_t> p = parse_port(port, text);
  if (!p) return p.error();
  return host_port{std::string(host), *p};
}

std::string address::to_string() const { return is_unix() ? "unix:" + unix_path : tcp.to_string(); }

result<address> parse_address(std::string_view text, std::string_view default_host) {
  constexpr std::string_view scheme = "unix:";
  address a;
  if (text.substr(0, scheme.size()) == scheme) {
    const std::string_view path = text.substr(scheme.size());
    // sun_path holds 108 bytes including the terminating NUL.
    constexpr std::size_t max_path = 107;
    if (path.empty() || path.size() > max_path) {
      return bad_address(
          fmt::format("'{}': a Unix socket path is 1-{} bytes (expected e.g. "
                      "unix:/tmp/cmdwire.sock)",
                      text, max_path));
    }
    if (path.find('\0') != std::string_view::npos) {
      return bad_address(fmt::format("'{}': a Unix socket path cannot hold a NUL byte", text));
    }
    a.unix_path = path;
    return a;
  }
  auto hp = parse_host_port(text, default_host);
  if (!hp) return hp.error();
  a.tcp = std::move(*hp);
  return a;
}

}  // namespace cmdwire
