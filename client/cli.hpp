// Shared pieces of the cmdwire CLI: exit codes, the one-line failure every subcommand ends
// with, and the functions that add each subcommand to the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>
#include <stdexcept>
#include <string>

namespace cmdwire::cli {

/// Exit codes, documented in `cmdwire --help`.
enum exit_code : int {
  exit_ok = 0,
  exit_error_reply = 1,  ///< the server answered ERR, or a toolbox check failed
  exit_usage = 2,        ///< bad command line
  exit_connection = 3,   ///< cannot connect, or the connection was lost
};

/// Thrown by a subcommand's callback; main prints "cmdwire: <message>" and exits with `code`.
/// The message is one line and says what to do next.
class failure : public std::runtime_error {
 public:
  failure(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] int code() const noexcept { return code_; }

 private:
  int code_;
};

void add_call_command(CLI::App& app);
void add_demo_command(CLI::App& app);
/// `health` and `stats` (client/introspect.cpp).
void add_introspection_commands(CLI::App& app);
void add_net_command(CLI::App& app);
/// `subscribe TOPIC` and `publish TOPIC TEXT` (client/pubsub.cpp).
void add_pubsub_commands(CLI::App& app);
/// `shell`: the interactive session (client/shell.cpp).
void add_shell_command(CLI::App& app);

}  // namespace cmdwire::cli
