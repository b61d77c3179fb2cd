// `cmdwire net ip` and `cmdwire net mask`: address parsing and masks, no network traffic.
#include <fmt/format.h>

#include <memory>
#include <string>

#include "client/cli.hpp"
#include "client/net.hpp"
#include "client/net_tools.hpp"

namespace cmdwire::cli::net {

namespace {

boost::asio::ip::address parse_or_fail(const std::string& text) {
  auto addr = net_tools::parse_ip(text);
  if (!addr) {
    throw failure(exit_error_reply,
                  fmt::format("invalid address \"{}\": give an IPv4 or IPv6 address such as "
                              "192.0.2.1 or ::1 (no port, no brackets)",
                              text));
  }
  return *addr;
}

void add_ip_command(CLI::App& net) {
  auto text = std::make_shared<std::string>();
  auto* cmd =
      net.add_subcommand("ip", "Parse an IPv4 or IPv6 address and print its canonical form");
  cmd->add_option("ADDR", *text, "address to parse")->required();
  cmd->footer(
      "Example: cmdwire net ip 0:0:0:0:0:0:0:1   # prints ::1\n"
      "Exit status 1 and `invalid address` when ADDR is not an address.");
  cmd->callback([text] { fmt::print("{}\n", parse_or_fail(*text).to_string()); });
}

void add_mask_command(CLI::App& net) {
  struct options {
    std::string addr;
    int bits = 0;
  };
  auto opts = std::make_shared<options>();
  auto* cmd = net.add_subcommand(
      "mask", "Print the network mask of an address: hex, dotted, ones, length, network");
  cmd->add_option("ADDR", opts->addr, "IPv4 or IPv6 address")->required();
  auto* bits = cmd->add_option("--bits", opts->bits,
                               "prefix length; default is class-based for IPv4 (A /8, B /16, "
                               "C /24) and /64 for IPv6")
                   ->check(CLI::Range(0, 128));
  cmd->footer(
      "Example: cmdwire net mask 192.168.1.7            # class C: ffffff00, /24\n"
      "         cmdwire net mask 2001:db8::1 --bits 48");
  cmd->callback([opts, bits] {
    const auto addr = parse_or_fail(opts->addr);
    const int total = addr.is_v4() ? 32 : 128;
    net_tools::ip_mask mask;
    if (bits->count() > 0) {
      auto m = net_tools::cidr_mask(opts->bits, total);
      if (!m) {
        throw failure(exit_usage, fmt::format("--bits {} is too long for an IPv{} address: use 0 "
                                              "to {}",
                                              opts->bits, addr.is_v4() ? 4 : 6, total));
      }
      mask = std::move(*m);
    } else {
      mask = net_tools::default_mask(addr);
    }
    // Masks we build are canonical, so ones() always has a value; Go reports (0, 0) otherwise.
    const int ones = mask.ones().value_or(0);
    const auto network = net_tools::apply_mask(addr, mask);
    fmt::print("address  {}\n", addr.to_string());
    if (addr.is_v4()) {
      fmt::print("mask     {} ({})\n", mask.hex(), mask.dotted());
    } else {
      fmt::print("mask     {}\n", mask.hex());
    }
    fmt::print("ones     {}\n", ones);
    fmt::print("bits     {}\n", mask.bits());
    fmt::print("network  {}/{}\n", network ? network->to_string() : std::string("?"), ones);
  });
}

}  // namespace

void add_addr_commands(CLI::App& net) {
  add_ip_command(net);
  add_mask_command(net);
}

}  // namespace cmdwire::cli::net
