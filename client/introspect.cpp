// `cmdwire health` and `cmdwire stats`: the server's built-in HEALTH and STATS (PROTOCOL.md §11).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "client/cli.hpp"
#include "client/connect.hpp"
#include "client/json_pretty.hpp"

namespace cmdwire::cli {

namespace {

struct server_args {
  std::string address = default_address;
  double timeout_s = 10.0;
};

CLI::App* add_server_command(CLI::App& app, const char* name, const char* what,
                             const std::shared_ptr<server_args>& args) {
  CLI::App* cmd = app.add_subcommand(name, what);
  cmd->add_option("--connect", args->address, "server HOST:PORT or unix:PATH")
      ->capture_default_str();
  cmd->add_option("--timeout", args->timeout_s, "seconds to wait for connect and reply")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  return cmd;
}

std::string ask(const server_args& args, std::string_view command) {
  auto conn = connect_or_fail(args.address, args.timeout_s);
  auto reply = conn.call_raw(command, {});
  if (!reply) fail_call(command, reply.error());
  return std::move(*reply);
}

}  // namespace

void add_introspection_commands(CLI::App& app) {
  auto health = std::make_shared<server_args>();
  add_server_command(app, "health",
                     "Print the server's HEALTH: SERVING (exit 0) or DRAINING (exit 1, it is "
                     "shutting down)",
                     health)
      ->callback([health] {
        const std::string state = ask(*health, "HEALTH");
        fmt::print("{}\n", state);
        if (state != "SERVING") {
          throw failure(exit_error_reply, fmt::format("{} is {}, not SERVING", health->address,
                                                      state == "DRAINING" ? "draining" : state));
        }
      });
  auto stats = std::make_shared<server_args>();
  add_server_command(app, "stats",
                     "Print the server's STATS (JSON: connections, bytes, and calls, errors and "
                     "latency per command)",
                     stats)
      ->callback([stats] {
        const std::string body = ask(*stats, "STATS");
        const auto pretty = pretty_json(body);
        fmt::print("{}\n", pretty ? *pretty : body);
      });
}

}  // namespace cmdwire::cli
