// Connecting and reporting failures the CLI way: one line that says what to do, and the exit
// code that goes with it.
#pragma once

#include <string>

#include "client/cli.hpp"
#include "cmdwire/client.hpp"

namespace cmdwire::cli {

/// Default server address of every subcommand.
inline constexpr const char* default_address = "127.0.0.1:61000";

/// Connects or throws `failure` (exit 3, or 2 for a malformed address).
[[nodiscard]] cmdwire::client connect_or_fail(const std::string& address, double timeout_s);

/// Throws the `failure` that matches a failed call: exit 1 for an error reply, 3 for a lost
/// connection or timeout.
[[noreturn]] void fail_call(std::string_view command, const cmdwire::error& e);

}  // namespace cmdwire::cli
