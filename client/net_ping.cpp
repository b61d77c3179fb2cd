// `cmdwire net ping`: ICMP echo over an unprivileged datagram socket, or a raw one as root.
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/basic_datagram_socket.hpp>
#include <boost/asio/basic_raw_socket.hpp>
#include <boost/asio/ip/basic_endpoint.hpp>
#include <cerrno>
#include <fstream>
#include <memory>
#include <string>

#include "client/cli.hpp"
#include "client/net.hpp"
#include "client/net_tools.hpp"

namespace cmdwire::cli::net {

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using steady_clock = std::chrono::steady_clock;
using net_tools::icmp_family;

/// ICMP as an Asio protocol, like asio::ip::icmp but with the socket type chosen at compile
/// time: Linux offers ICMP both as SOCK_DGRAM ("ping sockets", unprivileged when allowed) and
/// as SOCK_RAW (needs CAP_NET_RAW). asio::ip::icmp only does SOCK_RAW.
template <int SocketType>
class icmp_protocol {
 public:
  using endpoint = asio::ip::basic_endpoint<icmp_protocol>;

  static icmp_protocol v4() noexcept { return {AF_INET, IPPROTO_ICMP}; }
  static icmp_protocol v6() noexcept { return {AF_INET6, IPPROTO_ICMPV6}; }
  [[nodiscard]] int type() const noexcept { return SocketType; }
  [[nodiscard]] int protocol() const noexcept { return protocol_; }
  [[nodiscard]] int family() const noexcept { return family_; }
  friend bool operator==(const icmp_protocol&, const icmp_protocol&) = default;

 private:
  icmp_protocol(int family, int protocol) noexcept : family_(family), protocol_(protocol) {}
  int family_;
  int protocol_;
};

using icmp_datagram = icmp_protocol<SOCK_DGRAM>;
using icmp_raw = icmp_protocol<SOCK_RAW>;

// ping(8)'s defaults: 56 payload bytes (64 with the ICMP header), one probe a second so a
// long count never floods a link.
constexpr std::size_t payload_size = 56;
constexpr auto ping_interval = std::chrono::seconds(1);
// Loopback answers in microseconds and a remote host within a second; two leaves headroom.
constexpr double default_reply_timeout_seconds = 2.0;
// Sequence numbers are 16 bits; a longer run would reuse them and could match stale replies.
constexpr int max_count = 65535;

struct ping_plan {
  std::string host;  // as typed, for messages
  asio::ip::address destination;
  icmp_family family = icmp_family::v4;
  bool raw = false;
  // Only checked on raw sockets: on ping sockets the kernel replaces it with the socket's own
  // and delivers only replies carrying it, so any value seen there is the kernel's.
  std::uint16_t identifier = 0;
  int count = 1;
  double timeout_seconds = default_reply_timeout_seconds;
  std::vector<std::uint8_t> payload;
};

struct reply_info {
  std::size_t bytes = 0;  // ICMP header + payload
  int ttl = -1;           // known only on raw IPv4 sockets, which see the IP header
};

struct ping_stats {
  int sent = 0;
  int received = 0;
  std::vector<double> rtt_ms;
};

/// Waits for the echo reply to `sequence`, skipping everything else the socket sees (our own
/// request on loopback, other pingers' replies, late replies, other ICMP types). `socket` is
/// borrowed until the awaitable completes.
template <class Socket>
awaitable<result<reply_info>> async_wait_reply(Socket& socket, const ping_plan& plan,
                                               std::uint16_t sequence) {
  std::vector<std::uint8_t> buffer(65536);
  for (;;) {
    typename Socket::endpoint_type from;
    auto [ec, n] = co_await socket.async_receive_from(asio::buffer(buffer), from, use_ec);
    if (ec) {
      co_return error{
          ec, fmt::format("ping {} failed while waiting for a reply: {}", plan.host, ec.message())};
    }
    std::span<const std::uint8_t> packet(buffer.data(), n);
    reply_info info;
    if (plan.raw && plan.family == icmp_family::v4) {
      // Raw IPv4 sockets deliver the IP header too (raw IPv6 sockets do not); TTL is byte 8.
      if (packet.size() > 8) info.ttl = packet[8];
      packet = net_tools::strip_ipv4_header(packet);
    }
    const auto echo = net_tools::parse_echo(plan.family, packet);
    if (!echo || !net_tools::is_echo_reply(plan.family, *echo)) continue;
    if (from.address() != plan.destination) continue;
    // The IPv6 checksum covers a pseudo-header and the kernel verifies it for ICMPv6 sockets.
    if (plan.family == icmp_family::v4 && net_tools::internet_checksum(packet) != 0) continue;
    if (plan.raw && echo->identifier != plan.identifier) continue;
    if (echo->sequence != sequence || echo->payload != plan.payload) continue;
    info.bytes = packet.size();
    co_return info;
  }
}

/// Sends plan.count echo requests, one per interval, and prints a line per reply. Owns the
/// socket. Fails only when the socket itself fails; lost replies are counted in the stats.
template <class Socket>
awaitable<result<ping_stats>> async_ping(Socket socket, ping_plan plan) {
  const typename Socket::endpoint_type destination(plan.destination, 0);
  asio::steady_timer pause(co_await asio::this_coro::executor);
  ping_stats stats;
  for (int i = 1; i <= plan.count; ++i) {
    const auto sequence = static_cast<std::uint16_t>(i);
    const auto request =
        net_tools::build_echo_request(plan.family, plan.identifier, sequence, plan.payload);
    const auto sent_at = steady_clock::now();
    if (auto [ec, n] = co_await socket.async_send_to(asio::buffer(request), destination, use_ec);
        ec) {
      co_return error{ec, fmt::format("cannot send ping to {}: {}", plan.host, ec.message())};
    }
    ++stats.sent;
    // A lost reply is reported per sequence below, so the timeout needs no message of its own.
    auto reply = co_await with_timeout(async_wait_reply(socket, plan, sequence),
                                       to_duration(plan.timeout_seconds), "");
    if (reply) {
      const double ms =
          std::chrono::duration<double, std::milli>(steady_clock::now() - sent_at).count();
      ++stats.received;
      stats.rtt_ms.push_back(ms);
      fmt::print("{} bytes from {}: icmp_seq={}{} time={:.3f} ms\n", reply->bytes,
                 plan.destination.to_string(), sequence,
                 reply->ttl >= 0 ? fmt::format(" ttl={}", reply->ttl) : "", ms);
    } else if (reply.error().code == errc::timeout) {
      fmt::print("no reply for icmp_seq={} within {} s\n", sequence, plan.timeout_seconds);
    } else {
      co_return reply.error();
    }
    std::fflush(stdout);  // a long ping shows progress even when piped
    if (i < plan.count) {
      pause.expires_at(sent_at + ping_interval);
      co_await pause.async_wait(use_ec);
    }
  }
  co_return stats;
}

std::string read_ping_group_range() {
  std::ifstream in("/proc/sys/net/ipv4/ping_group_range");
  std::string low, high;
  if (!(in >> low >> high)) return "unknown";
  return low + " " + high;
}

[[noreturn]] void fail_no_socket(const boost::system::error_code& dgram_ec,
                                 const boost::system::error_code& raw_ec) {
  const bool dgram_denied = dgram_ec.value() == EACCES || dgram_ec.value() == EPERM;
  const bool raw_denied = raw_ec.value() == EPERM || raw_ec.value() == EACCES;
  if (dgram_denied && raw_denied) {
    throw failure(
        exit_error_reply,
        fmt::format("ping not permitted: the unprivileged ICMP socket needs group {} inside "
                    "sysctl net.ipv4.ping_group_range (now \"{}\"), and the raw socket needs "
                    "CAP_NET_RAW (run as root or `setcap cap_net_raw+ep cmdwire`)",
                    getgid(), read_ping_group_range()));
  }
  throw failure(exit_error_reply, fmt::format("cannot open an ICMP socket: datagram: {}; raw: {}",
                                              dgram_ec.message(), raw_ec.message()));
}

void print_summary(const ping_plan& plan, const ping_stats& stats) {
  const int lost = stats.sent - stats.received;
  fmt::print("--- {} ping: {} sent, {} received, {}% loss", plan.host, stats.sent, stats.received,
             stats.sent == 0 ? 0 : lost * 100 / stats.sent);
  if (!stats.rtt_ms.empty()) {
    const auto [lo, hi] = std::minmax_element(stats.rtt_ms.begin(), stats.rtt_ms.end());
    double sum = 0;
    for (double ms : stats.rtt_ms) sum += ms;
    fmt::print(", rtt min/avg/max {:.3f}/{:.3f}/{:.3f} ms", *lo,
               sum / static_cast<double>(stats.rtt_ms.size()), *hi);
  }
  fmt::print("\n");
}

void ping(ping_plan plan) {
  asio::io_context ctx;
  const bool v4 = plan.family == icmp_family::v4;
  boost::system::error_code dgram_ec, raw_ec;
  result<ping_stats> stats = ping_stats{};

  asio::basic_datagram_socket<icmp_datagram> dgram_socket(ctx);
  dgram_socket.open(v4 ? icmp_datagram::v4() : icmp_datagram::v6(), dgram_ec);
  if (!dgram_ec) {
    fmt::print("PING {} ({}): {} data bytes, unprivileged ICMP socket\n", plan.host,
               plan.destination.to_string(), plan.payload.size());
    stats = run(ctx, async_ping(std::move(dgram_socket), plan));
  } else {
    asio::basic_raw_socket<icmp_raw> raw_socket(ctx);
    raw_socket.open(v4 ? icmp_raw::v4() : icmp_raw::v6(), raw_ec);
    if (raw_ec) fail_no_socket(dgram_ec, raw_ec);
    plan.raw = true;
    fmt::print("PING {} ({}): {} data bytes, raw ICMP socket\n", plan.host,
               plan.destination.to_string(), plan.payload.size());
    stats = run(ctx, async_ping(std::move(raw_socket), plan));
  }
  if (!stats) throw failure(exit_connection, stats.error().message);
  print_summary(plan, *stats);
  if (stats->received == 0) {
    throw failure(exit_connection, fmt::format("no echo reply from {} within {} s", plan.host,
                                               plan.timeout_seconds));
  }
  if (stats->received < stats->sent) {
    throw failure(exit_connection,
                  fmt::format("{} of {} echo requests to {} got no reply",
                              stats->sent - stats->received, stats->sent, plan.host));
  }
}

}  // namespace

void add_ping_command(CLI::App& net) {
  struct options {
    std::string host;
    int count = 4;
    double timeout = default_reply_timeout_seconds;
  };
  auto opts = std::make_shared<options>();
  auto* cmd = net.add_subcommand(
      "ping", "Send ICMP echo requests (IPv4 or IPv6) and print each round-trip time");
  cmd->add_option("HOST", opts->host, "host name or address")->required();
  cmd->add_option("-c,--count", opts->count, "echo requests to send, one a second")
      ->check(CLI::Range(1, max_count))
      ->capture_default_str();
  cmd->add_option("-W,--timeout", opts->timeout, "seconds to wait for each reply")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->footer(
      "Example: cmdwire net ping 127.0.0.1 --count 1\n"
      "Uses an unprivileged ICMP socket when net.ipv4.ping_group_range allows the group, else a\n"
      "raw socket (needs CAP_NET_RAW). Exit 3 when a reply is missing.");
  cmd->callback([opts] {
    auto addrs = resolve_addresses(opts->host);
    if (!addrs) {
      throw failure(addrs.error().code == errc::bad_address ? exit_error_reply : exit_connection,
                    addrs.error().message);
    }
    auto destination = addrs->front();
    // An IPv4-mapped IPv6 address is reached over IPv4; ICMPv6 to it goes nowhere.
    if (destination.is_v6() && destination.to_v6().is_v4_mapped()) {
      destination = asio::ip::make_address_v4(asio::ip::v4_mapped, destination.to_v6());
    }
    ping_plan plan;
    plan.host = opts->host;
    plan.destination = destination;
    plan.family = destination.is_v4() ? icmp_family::v4 : icmp_family::v6;
    plan.identifier = static_cast<std::uint16_t>(getpid());
    plan.count = opts->count;
    plan.timeout_seconds = opts->timeout;
    plan.payload.resize(payload_size);
    for (std::size_t i = 0; i < payload_size; ++i) {
      plan.payload[i] = static_cast<std::uint8_t>(i);
    }
    ping(std::move(plan));
  });
}

}  // namespace cmdwire::cli::net
