// HOST:PORT strings as users type them ("127.0.0.1:61000", "[::1]:80", "localhost:7").
// Parsing only; resolving names is the caller's business (Asio's resolver).
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

}  // namespace cmdwire
