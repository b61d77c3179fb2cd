// `cmdwire net`: the socket toolbox, a parent for the subcommands in client/net_*.cpp.
#include "client/net.hpp"
#include "client/cli.hpp"

namespace cmdwire::cli {

void add_net_command(CLI::App& app) {
  auto* net = app.add_subcommand(
      "net",
      "Socket toolbox: parse addresses and masks, look up names and ports, probe "
      "echo/daytime/HTTP services, ping");
  net->require_subcommand(1);
  net->footer(
      "Example: cmdwire net ip 0:0:0:0:0:0:0:1\nRun `cmdwire net SUBCOMMAND --help` for each.");
  net::add_addr_commands(*net);
  net::add_lookup_commands(*net);
  net::add_probe_commands(*net);
  net::add_ping_command(*net);
}

}  // namespace cmdwire::cli
