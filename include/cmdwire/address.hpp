// Addresses as users type them: HOST:PORT ("127.0.0.1:61000", "[::1]:80", "localhost:7") and
// Unix-domain sockets ("unix:/run/app.sock"). Parsing only; resolving is the caller's business.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cmdwire/error.hpp"

namespace cmdwire {

struct host_port {
  std::string host;  ///< without IPv6 brackets.
  std::uint16_t port = 0;

  /// "127.0.0.1:61000", "[::1]:80": the form parse_host_port accepts back.
  [[nodiscard]] std::string to_string() const;
};

/// Parses "HOST:PORT", "[V6]:PORT", or ":PORT"/"PORT" (host defaults to `default_host`).
/// Fails with errc::bad_address and a message naming the problem.
[[nodiscard]] result<host_port> parse_host_port(std::string_view text,
                                                std::string_view default_host = "127.0.0.1");

/// Where to connect or listen: a TCP HOST:PORT, or a Unix-domain socket file.
struct address {
  host_port tcp;          ///< when unix_path is empty
  std::string unix_path;  ///< non-empty: "unix:" + this

  [[nodiscard]] bool is_unix() const noexcept { return !unix_path.empty(); }
  /// "127.0.0.1:61000" or "unix:/run/app.sock": the form parse_address accepts back.
  [[nodiscard]] std::string to_string() const;
};

/// Parses "unix:PATH" (PATH at most 107 bytes, as sockaddr_un allows), or else what
/// parse_host_port accepts. Fails with errc::bad_address and a message naming the problem.
[[nodiscard]] result<address> parse_address(std::string_view text,
                                            std::string_view default_host = "127.0.0.1");

}  // namespace cmdwire
