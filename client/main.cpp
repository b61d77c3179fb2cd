// cmdwire: the command-line client. Sends any command by hand, runs the demo exchange, and
// carries the socket toolbox (`cmdwire net ...`).
#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <cstdio>

#include "client/cli.hpp"
#include "client/connect.hpp"
#include "cmdwire/version.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "cmdwire: send commands to a cmdwire server.\n"
      "Exit codes: 0 ok, 1 error reply (or failed check), 2 usage, 3 cannot connect or "
      "connection lost.\n"
      "Example: cmdwire call PING; cmdwire call STRUCT --json '{\"n\":1,\"s\":\"x\","
      "\"m\":{\"a\":1},\"c\":null}'"};
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? cmdwire::cli::exit_ok : cmdwire::cli::exit_usage;
  } catch (const cmdwire::cli::failure& f) {
    std::fflush(stdout);
    fmt::print(stderr, "cmdwire: {}\n", f.what());
    return f.code();
  }
  return cmdwire::cli::exit_ok;
}
