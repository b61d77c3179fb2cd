// The C++ half of tests/scaleout/scaleout_test.sh: load through HAProxy with a channel, a
// subscriber, publishers, STATS probes and a PROXY-header client. The script starts and stops
// the processes; this tool does what needs the cmdwire client.
//
//   scaleout_tool free-port
//   scaleout_tool stat ADDR PATH                   e.g. backplane.state, commands.ECHO.calls
//   scaleout_tool wait-stat ADDR PATH VALUE        until PATH equals VALUE (20 s at most)
//   scaleout_tool wait-stat-ge ADDR PATH N         until PATH (a number) is at least N
//   scaleout_tool load ADDR CALLERS CONNECTIONS    ECHO calls until stdin closes; 0 failures
//   scaleout_tool subscribe ADDR TOPIC N           prints "ready", then N message bodies
//   scaleout_tool publish ADDR TOPIC PREFIX FIRST LAST         through HAProxy
//   scaleout_tool publish-direct ADDR TOPIC PREFIX FIRST LAST  to a server
// ADDR of stat, wait-stat*, subscribe and publish-direct is a server started with
// --proxy-protocol: the tool sends a LOCAL PROXY header first, as HAProxy's health checks do.
//   scaleout_tool proxy-ping ADDR CLAIMED_IP:PORT  PROXY v2 header, then PING
#include <fmt/format.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cmdwire/address.hpp"
#include "cmdwire/channel.hpp"
#include "cmdwire/client.hpp"
#include "cmdwire/detail/rapidjson.hpp"
#include "cmdwire/pubsub.hpp"
#include "cmdwire/wire.hpp"
#include "src/proxy_protocol.hpp"

namespace {

namespace rj = cmdwire::detail::rj;
namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr auto wait_limit = 20s;   // for a condition the script waits on
constexpr auto poll_every = 20ms;  // polling STATS: a wait on a condition, not a timed guess

/// A blocking connection straight to a server that wants a PROXY header first: it sends a
/// LOCAL one, as HAProxy's health checks do, then speaks the protocol by hand.
class proxied_conn {
 public:
  explicit proxied_conn(const std::string& address) : socket_(io_) {
    const auto a = cmdwire::parse_address(address);
    if (!a || a->is_unix()) throw std::runtime_error("not HOST:PORT: " + address);
    socket_.connect({asio::ip::make_address(a->tcp.host), a->tcp.port});
    asio::write(socket_, asio::buffer(cmdwire::detail::proxy_v2::format_local()));
  }

  /// A framed request; the reply body, or throws with the server's error.
  std::string call(std::string_view name, std::string_view body) {
    const std::string request = fmt::format("{} {}\n{}", name, body.size(), body);
    asio::write(socket_, asio::buffer(request));
    for (;;) {
      const auto r = cmdwire::wire::parse_reply(buffer_, limits_);
      if (r.state == cmdwire::wire::status::complete) {
        std::string out(r.value.body);
        const bool ok = r.value.ok;
        const std::string code(r.value.code);
        buffer_.erase(0, r.size);
        if (!ok) throw std::runtime_error(fmt::format("{} -> ERR {} {}", name, code, out));
        return out;
      }
      if (r.state == cmdwire::wire::status::error) throw std::runtime_error("bad reply");
      read_more();
    }
  }

  /// After SUBSCRIBE: the next pushed message's body.
  std::string next_message() {
    for (;;) {
      const auto m = cmdwire::pubsub::parse_message(buffer_, limits_);
      if (m.state == cmdwire::wire::status::complete) {
        std::string out(m.value.body);
        buffer_.erase(0, m.size);
        return out;
      }
      if (m.state == cmdwire::wire::status::error) throw std::runtime_error("bad MSG frame");
      read_more();
    }
  }

 private:
  void read_more() {
    char chunk[4096];
    const std::size_t n = socket_.read_some(asio::buffer(chunk));
    buffer_.append(chunk, n);
  }

  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  std::string buffer_;
  cmdwire::wire::limits limits_;
};

int fail(const std::string& what) {
  fmt::print(stderr, "scaleout_tool: {}\n", what);
  return 1;
}

/// The value at a dotted PATH of the server's STATS, as text; empty if absent or unreachable.
std::string stat(const std::string& address, const std::string& path) {
  std::string body;
  try {
    proxied_conn c(address);
    body = c.call("STATS", "");
  } catch (const std::exception&) {
    return {};
  }
  rj::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError()) return {};
  const rj::Value* v = &doc;
  std::size_t from = 0;
  while (from <= path.size()) {
    const std::size_t dot = std::min(path.find('.', from), path.size());
    const std::string key = path.substr(from, dot - from);
    if (!v->IsObject() || !v->HasMember(key.c_str())) return {};
    v = &(*v)[key.c_str()];
    from = dot + 1;
  }
  if (v->IsString()) return v->GetString();
  if (v->IsUint64()) return std::to_string(v->GetUint64());
  if (v->IsBool()) return v->GetBool() ? "true" : "false";
  return {};
}

template <class Pred>
int wait_for_stat(const std::string& address, const std::string& path, Pred ok) {
  const auto until = std::chrono::steady_clock::now() + wait_limit;
  std::string last;
  while (std::chrono::steady_clock::now() < until) {
    last = stat(address, path);
    if (ok(last)) return 0;
    std::this_thread::sleep_for(poll_every);
  }
  return fail(fmt::format("{}: STATS {} is still '{}' after {} s", address, path, last,
                          wait_limit.count()));
}

int load(const std::string& address, unsigned callers, std::size_t connections) {
  cmdwire::channel_options opt;
  opt.connections_per_address = connections;
  opt.default_deadline = 10s;
  opt.max_attempts = 5;
  auto ch = cmdwire::channel::create(address, opt);
  if (!ch) return fail(ch.error().message);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> calls{0};
  std::atomic<std::uint64_t> failed{0};
  std::mutex m;
  std::string first_error;
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < callers; ++i) {
    threads.emplace_back([&, i] {
      const std::string body = fmt::format("caller {}", i);
      while (!stop.load()) {
        // ECHO is idempotent, so a call caught by a server's drain is sent again.
        auto r = ch->call_raw("ECHO", body, {.idempotent = true});
        ++calls;
        if (!r || *r != body) {
          ++failed;
          std::lock_guard lock(m);
          if (first_error.empty()) first_error = r ? "wrong body: " + *r : r.error().to_string();
        }
      }
    });
  }
  // The script says when to stop by closing our stdin.
  for (std::string line; std::getline(std::cin, line);) {
  }
  stop = true;
  for (auto& t : threads) t.join();
  const auto s = ch->stats();
  fmt::print("calls={} failed={} retries={}\n", calls.load(), failed.load(), s.retries);
  if (failed.load() != 0) return fail("first failure: " + first_error);
  return calls.load() > 0 ? 0 : fail("no call was made");
}

int subscribe(const std::string& address, const std::string& topic, std::size_t n) {
  proxied_conn c(address);
  c.call("SUBSCRIBE", topic);  // the ack: every publish from now on reaches us
  fmt::print("ready\n");
  std::fflush(stdout);
  for (std::size_t i = 0; i < n; ++i) {
    fmt::print("{}\n", c.next_message());
    std::fflush(stdout);
  }
  return 0;
}

/// Through HAProxy (`via-proxy` true: a cmdwire client, HAProxy adds the header) or straight
/// to a server (a LOCAL header of our own).
int publish(const std::string& address, bool via_proxy, const std::string& topic,
            const std::string& prefix, int first, int last) {
  std::optional<cmdwire::client> c;
  std::optional<proxied_conn> direct;
  if (via_proxy) {
    auto made = cmdwire::client::connect(address);
    if (!made) return fail(made.error().message);
    c.emplace(std::move(*made));
  } else {
    direct.emplace(address);
  }
  for (int i = first; i <= last; ++i) {
    const std::string message = fmt::format("{}-{}", prefix, i);
    if (c) {
      auto r = c->publish(topic, message, {.deadline = 5s});
      if (!r) return fail(fmt::format("publish {}: {}", message, r.error().to_string()));
    } else {
      direct->call("PUBLISH", topic + " " + message);
    }
  }
  return 0;
}

int proxy_ping(const std::string& address, const std::string& claimed) {
  const auto to = cmdwire::parse_address(address);
  const auto from = cmdwire::parse_address(claimed);
  if (!to || !from) return fail("addresses are HOST:PORT");
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  const asio::ip::tcp::endpoint server(asio::ip::make_address(to->tcp.host), to->tcp.port);
  s.connect(server);
  const asio::ip::tcp::endpoint client(asio::ip::make_address(from->tcp.host), from->tcp.port);
  asio::write(s, asio::buffer(cmdwire::detail::proxy_v2::format(client, server) + "PING\n"));
  std::string reply;
  asio::read_until(s, asio::dynamic_buffer(reply), "PONG\n");
  if (reply != "OK 4\nPONG\n") return fail("after a PROXY header, PING got: " + reply);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  try {
    if (a.size() == 1 && a[0] == "free-port") {
      asio::io_context io;
      asio::ip::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
      fmt::print("{}\n", acc.local_endpoint().port());
      return 0;
    }
    if (a.size() == 3 && a[0] == "stat") {
      const std::string v = stat(a[1], a[2]);
      fmt::print("{}\n", v);
      return v.empty() ? 1 : 0;
    }
    if (a.size() == 4 && a[0] == "wait-stat") {
      return wait_for_stat(a[1], a[2], [&](const std::string& v) { return v == a[3]; });
    }
    if (a.size() == 4 && a[0] == "wait-stat-ge") {
      const std::uint64_t n = std::stoull(a[3]);
      return wait_for_stat(a[1], a[2],
                           [&](const std::string& v) { return !v.empty() && std::stoull(v) >= n; });
    }
    if (a.size() == 4 && a[0] == "load") {
      return load(a[1], static_cast<unsigned>(std::stoul(a[2])), std::stoul(a[3]));
    }
    if (a.size() == 4 && a[0] == "subscribe") return subscribe(a[1], a[2], std::stoul(a[3]));
    if (a.size() == 6 && (a[0] == "publish" || a[0] == "publish-direct")) {
      return publish(a[1], a[0] == "publish", a[2], a[3], std::stoi(a[4]), std::stoi(a[5]));
    }
    if (a.size() == 3 && a[0] == "proxy-ping") return proxy_ping(a[1], a[2]);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  fmt::print(stderr, "usage: see the top of tests/scaleout/scaleout_tool.cpp\n");
  return 2;
}
