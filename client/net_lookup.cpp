// `cmdwire net resolve|lookup|port`: the system resolver and services database.
#include <fmt/format.h>
#include <netdb.h>

#include <algorithm>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <charconv>
#include <memory>
#include <string>

#include "client/cli.hpp"
#include "client/net.hpp"

namespace cmdwire::cli::net {

namespace {

namespace asio_ip = boost::asio::ip;

struct lookup_answer {
  std::string canonical_name;
  std::vector<asio_ip::address> addresses;
};

result<lookup_answer> lookup(std::string_view host) {
  boost::asio::io_context ctx;
  asio_ip::tcp::resolver resolver(ctx);
  boost::system::error_code ec;
  // No address_configured flag: "localhost" must resolve even on a host with only loopback.
  // The tcp resolver asks for SOCK_STREAM only, so each address comes back once.
  auto entries = resolver.resolve(host, "", asio_ip::resolver_base::canonical_name, ec);
  if (ec) {
    // "Try again" means the resolver could not reach its servers: a connection problem, not
    // an answer about the name; keep the code so the caller can tell.
    const std::error_code code = ec == boost::asio::error::host_not_found_try_again
                                     ? std::error_code(ec)
                                     : make_error_code(errc::bad_address);
    return error{code, fmt::format("cannot resolve \"{}\": {}", host, ec.message())};
  }
  lookup_answer answer;
  for (const auto& entry : entries) {
    // Asio fills host_name() from ai_canonname when AI_CANONNAME was asked for.
    if (answer.canonical_name.empty()) answer.canonical_name = entry.host_name();
    const auto addr = entry.endpoint().address();
    if (std::find(answer.addresses.begin(), answer.addresses.end(), addr) ==
        answer.addresses.end()) {
      answer.addresses.push_back(addr);
    }
  }
  if (answer.addresses.empty()) {
    return error{make_error_code(errc::bad_address),
                 fmt::format("cannot resolve \"{}\": no addresses", host)};
  }
  return answer;
}

[[noreturn]] void fail_lookup(const error& e) {
  throw failure(e.code == errc::bad_address ? exit_error_reply : exit_connection, e.message);
}

void add_resolve_command(CLI::App& net) {
  auto host = std::make_shared<std::string>();
  auto* cmd = net.add_subcommand("resolve", "Resolve a host name to one address (the first)");
  cmd->add_option("HOST", *host, "host name or address")->required();
  cmd->footer("Example: cmdwire net resolve localhost");
  cmd->callback([host] {
    auto addrs = resolve_addresses(*host);
    if (!addrs) fail_lookup(addrs.error());
    fmt::print("{}\n", addrs->front().to_string());
  });
}

void add_lookup_command(CLI::App& net) {
  auto host = std::make_shared<std::string>();
  auto* cmd =
      net.add_subcommand("lookup", "Look up all addresses of a host and its canonical name");
  cmd->add_option("HOST", *host, "host name or address")->required();
  cmd->footer("Example: cmdwire net lookup localhost");
  cmd->callback([host] {
    auto answer = lookup(*host);
    if (!answer) fail_lookup(answer.error());
    fmt::print("canonical  {}\n", answer->canonical_name);
    for (const auto& addr : answer->addresses) fmt::print("address    {}\n", addr.to_string());
  });
}

// Go's net.LookupPort accepts tcp4/tcp6/udp4/udp6 too; the services database only knows the
// transport, so the suffix is dropped.
std::optional<std::string> services_protocol(std::string_view network) {
  for (std::string_view proto : {"tcp", "udp"}) {
    if (network == proto || (network.size() == 4 && network.substr(0, 3) == proto &&
                             (network[3] == '4' || network[3] == '6'))) {
      return std::string(proto);
    }
  }
  return std::nullopt;
}

void add_port_command(CLI::App& net) {
  struct options {
    std::string network;
    std::string service;
  };
  auto opts = std::make_shared<options>();
  auto* cmd = net.add_subcommand(
      "port", "Look up the port of a service name in the services database (/etc/services)");
  cmd->add_option("NETWORK", opts->network, "tcp or udp (tcp4, tcp6, udp4, udp6 also accepted)")
      ->required();
  cmd->add_option("SERVICE", opts->service, "service name such as telnet, or a port number")
      ->required();
  cmd->footer("Example: cmdwire net port tcp telnet   # prints 23");
  cmd->callback([opts] {
    const auto proto = services_protocol(opts->network);
    if (!proto) {
      throw failure(exit_usage,
                    fmt::format("unknown network \"{}\": use tcp or udp", opts->network));
    }
    // A number is its own port, as in Go's LookupPort.
    unsigned port = 0;
    const auto& s = opts->service;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), port);
    if (ec == std::errc{} && end == s.data() + s.size() && !s.empty()) {
      if (port > 65535) {
        throw failure(exit_error_reply, fmt::format("port {} is out of range 0..65535", s));
      }
      fmt::print("{}\n", port);
      return;
    }
    // getservbyname_r rather than getservbyname: no static buffer shared with other threads.
    servent entry{};
    servent* found = nullptr;
    std::array<char, 4096> buffer{};
    const int rc =
        getservbyname_r(s.c_str(), proto->c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (rc != 0 || found == nullptr) {
      throw failure(exit_error_reply,
                    fmt::format("unknown service {}/{}: not in the services database "
                                "(/etc/services; on Debian install netbase)",
                                *proto, s));
    }
    fmt::print("{}\n", ntohs(static_cast<std::uint16_t>(found->s_port)));
  });
}

}  // namespace

result<std::vector<asio_ip::address>> resolve_addresses(std::string_view host) {
  // An IP literal needs no resolver round trip and keeps its IPv6 scope id.
  boost::system::error_code ec;
  auto literal = asio_ip::make_address(std::string(host), ec);
  if (!ec) return std::vector<asio_ip::address>{literal};
  auto answer = lookup(host);
  if (!answer) return answer.error();
  return std::move(answer->addresses);
}

void add_lookup_commands(CLI::App& net) {
  add_resolve_command(net);
  add_lookup_command(net);
  add_port_command(net);
}

}  // namespace cmdwire::cli::net
