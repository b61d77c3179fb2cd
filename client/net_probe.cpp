// `cmdwire net head|daytime|echo`: one request to a TCP or UDP service, answer printed.
#include <fmt/format.h>

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/write.hpp>
#include <functional>
#include <memory>
#include <string>

#include "client/cli.hpp"
#include "client/net.hpp"
#include "cmdwire/address.hpp"

namespace cmdwire::cli::net {

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using asio::ip::udp;

// Reading stops at these sizes so a server that never stops talking cannot fill memory.
constexpr std::size_t head_limit = 64 * 1024;  // response headers are a few hundred bytes
constexpr std::size_t daytime_limit = 1024;    // RFC 867: one line of text
// The largest UDP payload; a bigger buffer could not receive more.
constexpr std::size_t max_datagram = 65507;

/// Where a probe goes: the user's text (for messages) and the resolved endpoints.
struct target {
  std::string text;
  std::vector<asio::ip::address> addresses;
  std::uint16_t port = 0;
};

target resolve_target(const std::string& text) {
  auto hp = parse_host_port(text);
  if (!hp) throw failure(exit_usage, hp.error().message);
  if (hp->port == 0) {
    throw failure(exit_usage,
                  fmt::format("\"{}\" has port 0: give HOST:PORT such as 127.0.0.1:7", text));
  }
  auto addrs = resolve_addresses(hp->host);
  if (!addrs) throw failure(exit_connection, addrs.error().message);
  return {text, std::move(*addrs), hp->port};
}

/// Connects to the first address of `to` that answers, writes `request`, then reads until
/// `complete` says so, the peer closes, or `limit` bytes arrived.
awaitable<result<std::string>> async_tcp_exchange(target to, std::string request,
                                                  std::function<bool(std::string_view)> complete,
                                                  std::size_t limit) {
  std::vector<tcp::endpoint> endpoints;
  for (const auto& addr : to.addresses) endpoints.emplace_back(addr, to.port);
  tcp::socket socket(co_await asio::this_coro::executor);
  if (auto [ec, ep] = co_await asio::async_connect(socket, endpoints, use_ec); ec) {
    co_return error{ec, fmt::format("cannot connect to {}: {}", to.text, ec.message())};
  }
  if (!request.empty()) {
    if (auto [ec, n] = co_await asio::async_write(socket, asio::buffer(request), use_ec); ec) {
      co_return error{ec, fmt::format("cannot send to {}: {}", to.text, ec.message())};
    }
  }
  std::string data;
  std::array<char, 4096> chunk{};
  while (!complete(data) && data.size() < limit) {
    const auto room = std::min(chunk.size(), limit - data.size());
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(chunk.data(), room), use_ec);
    data.append(chunk.data(), n);
    // The peer closing is the normal end of daytime and HTTP/1.0, not a failure.
    if (ec == asio::error::eof) break;
    if (ec) co_return error{ec, fmt::format("connection to {} lost: {}", to.text, ec.message())};
  }
  co_return data;
}

/// Sends one datagram to the first address of `to` and returns the first datagram back.
awaitable<result<std::string>> async_udp_exchange(target to, std::string datagram) {
  const udp::endpoint peer(to.addresses.front(), to.port);
  udp::socket socket(co_await asio::this_coro::executor);
  // A connected UDP socket turns the ICMP "port unreachable" of a closed port into
  // connection_refused on receive, instead of a silent wait until the timeout.
  if (auto [ec] = co_await socket.async_connect(peer, use_ec); ec) {
    co_return error{ec, fmt::format("cannot reach {}: {}", to.text, ec.message())};
  }
  if (auto [ec, n] = co_await socket.async_send(asio::buffer(datagram), use_ec); ec) {
    co_return error{ec, fmt::format("cannot send to {}: {}", to.text, ec.message())};
  }
  std::string reply(max_datagram, '\0');
  auto [ec, n] = co_await socket.async_receive(asio::buffer(reply), use_ec);
  if (ec) co_return error{ec, fmt::format("no answer from {}: {}", to.text, ec.message())};
  reply.resize(n);
  co_return reply;
}

/// Runs a probe under its timeout; any failure here means the service could not be reached.
std::string run_probe(awaitable<result<std::string>> probe, const target& to, double seconds) {
  asio::io_context ctx;
  auto answer =
      run(ctx, with_timeout(std::move(probe), to_duration(seconds),
                            fmt::format("no answer from {} within {} s", to.text, seconds)));
  if (!answer) throw failure(exit_connection, answer.error().message);
  return std::move(*answer);
}

std::string strip_line_end(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  return std::string(text);
}

CLI::Option* add_timeout_option(CLI::App& cmd, double& seconds) {
  return cmd.add_option("--timeout", seconds, "seconds to wait for the whole exchange")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

void add_head_command(CLI::App& net) {
  struct options {
    std::string target;
    std::string path = "/";
    double timeout = default_timeout_seconds;
  };
  auto opts = std::make_shared<options>();
  auto* cmd =
      net.add_subcommand("head", "Send `HEAD PATH HTTP/1.0` and print the response headers");
  cmd->add_option("HOST:PORT", opts->target, "HTTP server")->required();
  cmd->add_option("PATH", opts->path, "request path, starting with /")->capture_default_str();
  add_timeout_option(*cmd, opts->timeout);
  cmd->footer("Example: cmdwire net head 127.0.0.1:8080 /index.html");
  cmd->callback([opts] {
    const auto& path = opts->path;
    if (path.empty() || path.front() != '/' || path.find_first_of(" \r\n") != std::string::npos) {
      throw failure(exit_usage,
                    fmt::format("bad PATH \"{}\": it starts with / and has no spaces", path));
    }
    const auto to = resolve_target(opts->target);
    auto headers_done = [](std::string_view d) { return d.find("\r\n\r\n") != d.npos; };
    const auto response =
        run_probe(async_tcp_exchange(to, fmt::format("HEAD {} HTTP/1.0\r\n\r\n", path),
                                     headers_done, head_limit),
                  to, opts->timeout);
    if (response.empty()) {
      throw failure(exit_connection,
                    fmt::format("{} closed the connection without a response", opts->target));
    }
    if (!response.starts_with("HTTP/")) {
      throw failure(exit_error_reply,
                    fmt::format("{} did not answer with HTTP (got \"{}\")", opts->target,
                                strip_line_end(response.substr(0, 40))));
    }
    // Headers end at the first empty line; a HEAD response has no body, but stop there anyway.
    std::string_view rest = response;
    while (!rest.empty()) {
      const auto eol = rest.find('\n');
      const auto line = strip_line_end(rest.substr(0, eol));
      if (line.empty()) break;
      fmt::print("{}\n", line);
      if (eol == rest.npos) break;
      rest.remove_prefix(eol + 1);
    }
  });
}

void add_daytime_command(CLI::App& net) {
  struct options {
    std::string target;
    bool udp = false;
    double timeout = default_timeout_seconds;
  };
  auto opts = std::make_shared<options>();
  auto* cmd = net.add_subcommand("daytime", "Ask an RFC 867 daytime service for the time");
  cmd->add_option("HOST:PORT", opts->target, "daytime server")->required();
  cmd->add_flag("--udp", opts->udp, "use UDP (one datagram each way) instead of TCP");
  add_timeout_option(*cmd, opts->timeout);
  cmd->footer("Example: cmdwire net daytime 127.0.0.1:13 --udp");
  cmd->callback([opts] {
    const auto to = resolve_target(opts->target);
    auto until_close = [](std::string_view) { return false; };
    // RFC 867 ignores the datagram's content; one byte rather than none because some
    // implementations drop empty datagrams.
    auto probe = opts->udp ? async_udp_exchange(to, "\n")
                           : async_tcp_exchange(to, "", until_close, daytime_limit);
    const auto time = strip_line_end(run_probe(std::move(probe), to, opts->timeout));
    if (time.empty()) {
      throw failure(exit_error_reply, fmt::format("{} sent no time", opts->target));
    }
    fmt::print("{}\n", time);
  });
}

void add_echo_command(CLI::App& net) {
  struct options {
    std::string target;
    std::vector<std::string> words;
    bool udp = false;
    double timeout = default_timeout_seconds;
  };
  auto opts = std::make_shared<options>();
  auto* cmd = net.add_subcommand(
      "echo", "Send TEXT to an RFC 862 echo service and check the same bytes come back");
  cmd->add_option("HOST:PORT", opts->target, "echo server")->required();
  cmd->add_option("TEXT", opts->words, "text to send; several words are joined by spaces")
      ->required();
  cmd->add_flag("--udp", opts->udp, "use UDP (one datagram each way) instead of TCP");
  add_timeout_option(*cmd, opts->timeout);
  cmd->footer("Example: cmdwire net echo 127.0.0.1:7 hello world");
  cmd->callback([opts] {
    const auto to = resolve_target(opts->target);
    const auto text = fmt::format("{}", fmt::join(opts->words, " "));
    const auto want = text.size();
    // TCP echo never ends by itself: stop once as many bytes came back as were sent.
    auto all_back = [want](std::string_view d) { return d.size() >= want; };
    auto probe =
        opts->udp ? async_udp_exchange(to, text) : async_tcp_exchange(to, text, all_back, want);
    const auto back = run_probe(std::move(probe), to, opts->timeout);
    fmt::print("{}\n", back);
    if (back != text) {
      throw failure(exit_error_reply,
                    fmt::format("echo mismatch: sent {} bytes, {} came back with different "
                                "content",
                                text.size(), back.size()));
    }
  });
}

}  // namespace

void add_probe_commands(CLI::App& net) {
  add_head_command(net);
  add_daytime_command(net);
  add_echo_command(net);
}

}  // namespace cmdwire::cli::net
