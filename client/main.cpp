// cmdwire: the command-line client. Sends any command by hand, runs the demo exchange, and
// carries the socket toolbox (`cmdwire net ...`).
#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "client/cli.hpp"
#include "client/connect.hpp"
#include "cmdwire/version.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "cmdwire: send commands to a cmdwire server.\n"
      "Run alone on a terminal (or as `cmdwire shell`), it is an interactive shell.\n"
      "Exit codes: 0 ok, 1 error reply (or failed check), 2 usage, 3 cannot connect or "
      "connection lost.\n"
      "Examples: cmdwire call PING; cmdwire call PROTO --attr n=1 --attr s=root --attr "
      "m.a:=2; cmdwire shell"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "cmdwire " CMDWIRE_VERSION_STRING);
  app.add_option_function<std::string>("--auth-token-file", cmdwire::cli::set_auth_token_file,
                                       "file whose first line is the server's auth token "
                                       "(default: $CMDWIRE_TOKEN)");
  cmdwire::tls_client_config tls;
  app.add_flag("--tls", tls.enabled, "connect with TLS, verifying the server's certificate");
  app.add_option("--tls-ca", tls.ca_file, "PEM CA that signed the server's certificate")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-cert", tls.cert_file, "client certificate, for mutual TLS")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", tls.key_file, "private key for --tls-cert")->check(CLI::ExistingFile);
  cmdwire::cli::set_tls(&tls);
  cmdwire::cli::add_target_options(app);
  cmdwire::cli::add_call_command(app);
  cmdwire::cli::add_demo_command(app);
  cmdwire::cli::add_introspection_commands(app);
  cmdwire::cli::add_net_command(app);
  cmdwire::cli::add_pubsub_commands(app);
  cmdwire::cli::add_shell_command(app);
  // `cmdwire` alone on a terminal opens the shell; without a terminal it stays a usage error,
  // so a script that forgot its subcommand fails instead of waiting for input.
  std::vector<std::string> shell_args{"shell"};
  const bool open_shell = argc == 1 && ::isatty(STDIN_FILENO) != 0 && ::isatty(STDOUT_FILENO) != 0;
  try {
    if (open_shell) {
      app.parse(shell_args);
    } else {
      app.parse(argc, argv);
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? cmdwire::cli::exit_ok : cmdwire::cli::exit_usage;
  } catch (const cmdwire::cli::failure& f) {
    std::fflush(stdout);
    fmt::print(stderr, "cmdwire: {}\n", f.what());
    return f.code();
  }
  return cmdwire::cli::exit_ok;
}
