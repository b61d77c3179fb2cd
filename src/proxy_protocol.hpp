// PROXY protocol version 2 (HAProxy's binary header that carries the client's real address to
// the server behind a balancer): parsing and formatting, pure. Not installed.
//
// Spec: https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt, section 2.2.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cmdwire/error.hpp"

namespace cmdwire::detail::proxy_v2 {

/// Signature, version/command, family and length: what must be read before the rest's size is
/// known.
inline constexpr std::size_t prefix_size = 16;
/// Longest address block (with TLVs) accepted. The spec allows 65535 bytes; HAProxy sends
/// under 300 unless configured to add large TLVs, and a bound keeps a stranger's header from
/// committing 64 KiB per connection.
inline constexpr std::size_t max_payload = 2048;

/// What the first 16 bytes say.
struct prefix {
  bool local = false;       ///< LOCAL: the proxy's own connection (a health check)
  std::uint8_t family = 0;  ///< high nibble: 0 unspec, 1 inet, 2 inet6, 3 unix
  std::size_t payload = 0;  ///< bytes that follow: addresses, then TLVs
};

/// False as soon as `bytes` (the first bytes of a connection, possibly fewer than 16) cannot
/// be the start of a v2 header, so a client that is not a proxy is refused at once instead of
/// being waited on.
[[nodiscard]] bool could_be_header(std::string_view bytes) noexcept;

/// True while `bytes` is a proper prefix of "PROXY ", the start of a v1 text header: reading
/// on until 6 bytes are there lets parse_prefix refuse v1 by name however the bytes arrive.
[[nodiscard]] bool could_be_v1_start(std::string_view bytes) noexcept;

/// Parses the 16-byte prefix. Errors say what was wrong (a v1 text header, a bad version or
/// command, a payload over max_payload), in words fit for a log line.
[[nodiscard]] result<prefix> parse_prefix(std::string_view first16);

/// The client's address the header carries: set for PROXY over TCP/IPv4 or IPv6; empty for
/// LOCAL, and for families that carry no IP address (unspec, unix), where the connection's own
/// peer stands. `payload` is the `prefix.payload` bytes after the prefix.
[[nodiscard]] result<std::optional<boost::asio::ip::tcp::endpoint>> parse_source(
    const prefix& p, std::string_view payload);

/// A whole v2 header saying PROXY from `source` to `destination` (both IPv4 or both IPv6):
/// what a balancer sends; tests and tools use it.
[[nodiscard]] std::string format(const boost::asio::ip::tcp::endpoint& source,
                                 const boost::asio::ip::tcp::endpoint& destination);
/// A whole v2 header with the LOCAL command and no address, as a balancer's health check sends.
[[nodiscard]] std::string format_local();

}  // namespace cmdwire::detail::proxy_v2
