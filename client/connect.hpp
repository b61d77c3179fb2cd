// Connecting and reporting failures the CLI way: one line that says what to do, and the exit
// code that goes with it.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "client/cli.hpp"
#include "cmdwire/client.hpp"

namespace cmdwire::cli {

/// The server address when nothing else says: `$CMDWIRE_ADDRESS`, else `127.0.0.1:$PORT`
/// (the port cmdwire-server listens on by default too), else 127.0.0.1:61000.
[[nodiscard]] std::string default_address();

/// The server every subcommand talks to: the app-level `--connect/-c` and `--timeout/-t`,
/// which may come before or after the subcommand.
struct server_target {
  std::string address = default_address();
  double timeout_s = 10.0;
};
[[nodiscard]] server_target& target();
/// Adds `--connect/-c` and `--timeout/-t` to the app, bound to target().
void add_target_options(CLI::App& app);

/// Where connect_or_fail finds the auth token: this file's first line if set (the app-level
/// --auth-token-file option), else the CMDWIRE_TOKEN environment variable, else none.
void set_auth_token_file(std::string path);

/// TLS settings for every connection the CLI makes: the app-level --tls* options, bound to
/// `*config` before parsing and read when a subcommand connects. Naming a CA or a client
/// certificate implies --tls.
void set_tls(const cmdwire::tls_client_config* config);

/// Connects or throws `failure` (exit 3, or 2 for a malformed address, 1 if auth is refused).
[[nodiscard]] cmdwire::client connect_or_fail(const std::string& address, double timeout_s);

/// Throws the `failure` that matches a failed call: exit 1 for an error reply, 3 for a lost
/// connection or timeout.
[[noreturn]] void fail_call(std::string_view command, const cmdwire::error& e);

}  // namespace cmdwire::cli
