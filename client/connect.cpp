// Connection and failure reporting shared by the CLI's subcommands.
#include "client/connect.hpp"

#include <chrono>
#include <fmt/format.h>

namespace cmdwire::cli {

cmdwire::client connect_or_fail(const std::string& address, double timeout_s) {
  cmdwire::client_options options;
  options.connect_timeout =
      std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000.0));
  options.default_deadline = options.connect_timeout;
  auto c = cmdwire::client::connect(address, options);
  if (!c) {
    if (c.error().code == cmdwire::errc::bad_address) {
      throw failure(exit_usage, c.error().message);
    }
    throw failure(exit_connection,
                  fmt::format("{} — is cmdwire-server running? (start it with: cmdwire-server "
                              "--listen {})",
                              c.error().message, address));
  }
  return std::move(*c);
}

void fail_call(std::string_view command, const cmdwire::error& e) {
  const auto& code = e.code;
  if (code == cmdwire::errc::timeout) {
    throw failure(exit_connection,
                  fmt::format("{}: no reply in time — raise --timeout if the server is slow",
                              command));
  }
  if (code == cmdwire::errc::connection_lost || code == cmdwire::errc::not_connected ||
      code == cmdwire::errc::protocol_error) {
    throw failure(exit_connection, fmt::format("{}: {}", command, e.message));
  }
  const auto wire = code.category() == cmdwire::error_category()
                        ? cmdwire::wire_name(static_cast<cmdwire::errc>(code.value()))
                        : std::string_view{};
  throw failure(exit_error_reply,
                fmt::format("{}: server replied ERR {}: {}", command,
                            wire.empty() ? std::string_view(code.message()) : wire, e.message));
}

}  // namespace cmdwire::cli
