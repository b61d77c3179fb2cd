// Test fixtures: an in-process endpoint on 127.0.0.1 port 0 with the demo commands plus a few
// test-only ones, and a blocking raw socket for byte-exact checks.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "cmdwire/endpoint.hpp"
#include "demo/demo_service.hpp"

namespace cmdwire::test {

/// Test-only commands.
struct Throw {  ///< always throws std::runtime_error("boom: " + body)
  static constexpr std::string_view name = "THROW";
  using request = std::string;
  using response = std::string;
};
struct Nap {  ///< async: waits `body` milliseconds on a timer, then answers "slept"
  static constexpr std::string_view name = "NAP";
  using request = std::string;
  using response = std::string;
};

struct Tally {  ///< idempotent: counts its runs (tallies()), answers the body
  static constexpr std::string_view name = "TALLY";
  static constexpr bool idempotent = true;
  using request = std::string;
  using response = std::string;
};
struct Incr {  ///< not idempotent: counts its runs (incrs()), then waits `body` ms
  static constexpr std::string_view name = "INCR";
  using request = std::string;
  using response = std::string;
};

/// An endpoint serving the demo commands and the test commands above, started on `port`
/// (0: a free one).
class test_server {
 public:
  explicit test_server(endpoint_options options = {}, std::uint16_t port = 0)
      : ep_(with_defaults(std::move(options))) {
    demo::register_demo_commands(ep_);
    ep_.enable_pubsub();  // as cmdwire-server does
    ep_.handle<Throw>(
        [](const std::string& body) -> std::string { throw std::runtime_error("boom: " + body); });
    ep_.handle<Nap>([this](const std::string& ms) -> asio::awaitable<std::string> {
      ++naps_started_;
      // Counts the naps running at once, and the highest count seen.
      const int running = ++naps_running_;
      for (int peak = naps_peak_.load(); running > peak;) {
        if (naps_peak_.compare_exchange_weak(peak, running)) break;
      }
      struct leave {
        std::atomic<int>& n;
        ~leave() { --n; }
      } on_exit{naps_running_};
      asio::steady_timer timer(co_await asio::this_coro::executor);
      timer.expires_after(std::chrono::milliseconds(std::stoi(ms)));
      auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted) {
        ++naps_cancelled_;  // the call was cancelled: deadline, peer gone or shutdown
        throw boost::system::system_error(ec);
      }
      co_return std::string("slept");
    });
    // A stream handler: reads LENGTH bytes itself and answers with them reversed, framed.
    ep_.handle_stream("REVERSE", [](const request_context& rc, stream& s) -> asio::awaitable<void> {
      auto body = co_await s.async_read_exact(rc.length.value_or(0));
      if (!body) co_return;
      std::string reply(body->rbegin(), body->rend());
      std::string frame;
      wire::append_ok(frame, reply);
      (void)co_await s.async_write(frame);
    });
    ep_.handle<Tally>([this](const std::string& body) {
      ++tallies_;
      return body;
    });
    ep_.handle<Incr>([this](const std::string& ms) -> asio::awaitable<std::string> {
      const int n = ++incrs_;
      asio::steady_timer timer(co_await asio::this_coro::executor);
      timer.expires_after(std::chrono::milliseconds(std::stoi(ms)));
      co_await timer.async_wait(asio::use_awaitable);
      co_return std::to_string(n);
    });
    auto bound = ep_.listen("127.0.0.1", port);
    if (!bound) throw std::runtime_error(bound.error().message);
    port_ = *bound;
    ep_.start();
  }

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  endpoint& ep() { return ep_; }
  /// NAP requests that have started running, that are running, the most that ran at once,
  /// and those whose wait was cancelled.
  [[nodiscard]] int naps_started() const { return naps_started_.load(); }
  [[nodiscard]] int naps_running() const { return naps_running_.load(); }
  [[nodiscard]] int naps_peak() const { return naps_peak_.load(); }
  [[nodiscard]] int naps_cancelled() const { return naps_cancelled_.load(); }
  [[nodiscard]] int tallies() const { return tallies_.load(); }
  [[nodiscard]] int incrs() const { return incrs_.load(); }

 private:
  static endpoint_options with_defaults(endpoint_options o) {
    if (o.threads == 0) o.threads = 2;
    return o;
  }
  std::atomic<int> naps_started_{0};
  std::atomic<int> naps_running_{0};
  std::atomic<int> naps_peak_{0};
  std::atomic<int> naps_cancelled_{0};
  std::atomic<int> tallies_{0};
  std::atomic<int> incrs_{0};
  endpoint ep_;
  std::uint16_t port_ = 0;
};

/// A blocking TCP socket whose reads give up after 10 s, so a broken server fails the test
/// instead of hanging it.
class raw_socket {
 public:
  explicit raw_socket(std::uint16_t port) : socket_(context_) {
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
  }
  void send(std::string_view bytes) {
    // MSG_NOSIGNAL: a server that closes on us must fail the test, not kill it with SIGPIPE.
    while (!bytes.empty()) {
      const ssize_t n = ::send(socket_.native_handle(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error("raw_socket: send failed");
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  /// Reads exactly n bytes; throws on EOF or after 10 s without data.
  std::string read_exact(std::size_t n) {
    std::string out;
    while (out.size() < n) {
      const std::string chunk = read_some(n - out.size());
      if (chunk.empty()) throw std::runtime_error("raw_socket: EOF before the expected bytes");
      out += chunk;
    }
    return out;
  }
  /// Reads until the peer closes (or resets); returns everything received.
  std::string read_to_eof() {
    std::string out;
    for (;;) {
      const std::string chunk = read_some(64 * 1024);
      if (chunk.empty()) return out;
      out += chunk;
    }
  }
  /// Reads until `marker` has arrived (returns everything up to and including it), or until
  /// EOF (returns what came). Throws after 10 s without data.
  std::string read_until(std::string_view marker) {
    std::string out;
    while (out.find(marker) == std::string::npos) {
      const std::string chunk = read_some(64 * 1024);
      if (chunk.empty()) break;
      out += chunk;
    }
    return out;
  }
  void shutdown_send() { socket_.shutdown(asio::ip::tcp::socket::shutdown_send); }
  void set_nonblocking() { socket_.non_blocking(true); }
  /// Sends what the socket takes without blocking; 0 when it would block.
  std::size_t try_send(std::string_view bytes) {
    const ssize_t n = ::send(socket_.native_handle(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  asio::ip::tcp::socket& socket() { return socket_; }

 private:
  /// Up to `max` bytes; empty at EOF or reset. Polls first: asio's blocking read would
  /// ignore SO_RCVTIMEO and wait forever.
  std::string read_some(std::size_t max) {
    pollfd p{socket_.native_handle(), POLLIN, 0};
    const int ready = ::poll(&p, 1, 10000);
    if (ready == 0) throw std::runtime_error("raw_socket: no data within 10 s");
    std::string chunk(max, '\0');
    const ssize_t n = ::recv(socket_.native_handle(), chunk.data(), max, 0);
    chunk.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return chunk;
  }

  asio::io_context context_;
  asio::ip::tcp::socket socket_;
};

/// A TCP port on 127.0.0.1 that nothing listens on: bound (so the kernel picked a free one)
/// and closed again.
inline std::uint16_t closed_port() {
  boost::asio::io_context ctx;
  boost::asio::ip::tcp::acceptor acceptor(
      ctx, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

/// One framed reply, "OK n\n<body>" or "ERR code n\n<message>", without the LF that ends every
/// frame (checked). Throws on EOF, like raw_socket's reads.
inline std::string read_framed_reply(raw_socket& s) {
  std::string head;
  while (head.empty() || head.back() != '\n') head += s.read_exact(1);
  // "OK LENGTH ..." or "ERR CODE LENGTH ...": LENGTH is the second or third token.
  std::size_t at = head.find(' ') + 1;
  if (head.starts_with("ERR ")) at = head.find(' ', at) + 1;
  const std::size_t n = std::stoul(head.substr(at, head.find_first_of(" \n", at) - at));
  std::string body = s.read_exact(n + 1);
  if (body.back() != '\n') throw std::runtime_error("read_framed_reply: frame not ended by LF");
  body.pop_back();
  return head + body;
}

}  // namespace cmdwire::test
