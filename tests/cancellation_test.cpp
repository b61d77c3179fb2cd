// Where cancellation meets handlers. Every cause (deadline, client closes, client half-closes,
// drain timeout, stop()) × every handler kind (sync, async, offloaded, stream command) × both
// reply modes (in order, HELLO ooo): the documented reply or none, the connection ends, the
// server still serves. And a stress test of connections that leave while their offloaded calls
// are queued on a one-thread pool (the use-after-free of issue 26), run under ASan and TSan by
// `make test`.
#include <fmt/format.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cmdwire/endpoint.hpp"
#include "demo/demo_commands.hpp"
#include "demo/demo_service.hpp"
#include "support/eventually.hpp"
#include "support/log_capture.hpp"
#include "support/test_server.hpp"

using cmdwire::errc;
using cmdwire::test::eventually;
using cmdwire::test::raw_socket;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

constexpr std::string_view hello_ooo = "HELLO 3\nooo";
constexpr std::string_view granted = "OK 21\nooo max-concurrent=64\n";

/// Holds every gated handler until the test opens it. A handler that can see its call
/// cancelled (async: its timer wait fails; offloaded: call_context::cancelled()) stops waiting
/// and counts it.
struct gate {
  std::mutex mutex;
  std::condition_variable opened;
  bool open = false;
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
  std::atomic<int> cancelled{0};

  void release() {
    {
      std::lock_guard lock(mutex);
      open = true;
    }
    opened.notify_all();
  }
  bool is_open() {
    std::lock_guard lock(mutex);
    return open;
  }
  /// Blocks until released (true) or `stop()` says so (false); gives up after 10 s, so a
  /// broken server fails the test instead of hanging it. Wakes every ms to look at `stop`.
  template <class Stop>
  bool wait(Stop stop) {
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    std::unique_lock lock(mutex);
    while (!open) {
      if (stop() || std::chrono::steady_clock::now() > give_up) return false;
      opened.wait_for(lock, 1ms);
    }
    return true;
  }
};

struct GateSync {
  static constexpr std::string_view name = "GATE_SYNC";
  using request = cmdwire::none;
  using response = std::string;
};
struct GateAsync {
  static constexpr std::string_view name = "GATE_ASYNC";
  using request = cmdwire::none;
  using response = std::string;
};
struct GatePool {
  static constexpr std::string_view name = "GATE_POOL";
  using request = cmdwire::none;
  using response = std::string;
};
constexpr std::string_view gate_stream = "GATE_STREAM";

enum class kind { sync, async, offloaded, stream };
enum class cause { deadline, close, half_close, drain_timeout, stop };

std::string_view command_of(kind k) {
  switch (k) {
    case kind::sync:
      return GateSync::name;
    case kind::async:
      return GateAsync::name;
    case kind::offloaded:
      return GatePool::name;
    case kind::stream:
      return gate_stream;
  }
  return {};
}
std::string_view name_of(kind k) {
  switch (k) {
    case kind::sync:
      return "sync";
    case kind::async:
      return "async";
    case kind::offloaded:
      return "offloaded";
    case kind::stream:
      return "stream";
  }
  return {};
}
std::string_view name_of(cause c) {
  switch (c) {
    case cause::deadline:
      return "deadline";
    case cause::close:
      return "client closes";
    case cause::half_close:
      return "client half-closes";
    case cause::drain_timeout:
      return "drain timeout";
    case cause::stop:
      return "stop()";
  }
  return {};
}

constexpr std::chrono::milliseconds deadline = 50ms;
constexpr std::chrono::milliseconds short_drain = 100ms;
const std::string done_reply = "OK 4 id=7\ndone\n";
const std::string deadline_reply = "ERR deadline 37 id=7\ndeadline passed while the request ran\n";

/// Whether the server itself ends the call, so the test never has to release it: awaiting
/// handlers on a connection that reads on (ooo) when the client leaves; on a deadline in
/// both modes. (In order, the server reads nothing while a call runs: it learns that the client
/// left only when it writes the reply.)
bool server_cancels(cause c, kind k, bool ooo) {
  const bool awaiting = k == kind::async || k == kind::offloaded;
  if (!awaiting) return false;
  return c == cause::deadline || ((c == cause::close || c == cause::half_close) && ooo);
}

/// What the client reads before EOF, as PROTOCOL.md §4, §8 and §10 promise; nullopt where it
/// cannot read at all (it closed).
std::optional<std::string> documented_reply(cause c, kind k, bool ooo) {
  switch (c) {
    case cause::deadline:
      // A synchronous handler runs to its end; a stream command's handler owns the connection
      // and gets the deadline in its call_context (§4).
      return k == kind::async || k == kind::offloaded ? deadline_reply : done_reply;
    case cause::close:
      return std::nullopt;
    case cause::half_close:
      return server_cancels(c, k, ooo) ? std::string() : done_reply;
    case cause::drain_timeout:
      // A synchronous handler holds its thread, so the drain's timer cannot cut it (§8).
      return k == kind::sync ? done_reply : std::string();
    case cause::stop:
      return done_reply;
  }
  return std::nullopt;
}

/// A fresh endpoint per cell: two I/O threads, a one-thread handler pool, the gated commands.
class gated_server {
 public:
  explicit gated_server(std::chrono::milliseconds drain_timeout) : ep_(options(drain_timeout)) {
    cmdwire::demo::register_demo_commands(ep_);
    ep_.handle<GateSync>([this](cmdwire::none) {
      ++gate_.started;
      gate_.wait([] { return false; });
      ++gate_.finished;
      return std::string("done");
    });
    ep_.handle<GateAsync>([this](cmdwire::none) -> asio::awaitable<cmdwire::result<std::string>> {
      ++gate_.started;
      asio::steady_timer timer(co_await asio::this_coro::executor);
      while (!gate_.is_open()) {
        timer.expires_after(1ms);
        auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec) {
          ++gate_.cancelled;
          co_return cmdwire::make_error(errc::internal, "cancelled");
        }
      }
      ++gate_.finished;
      co_return std::string("done");
    });
    ep_.handle<GatePool>(
        [this](cmdwire::none, const cmdwire::call_context& call) -> cmdwire::result<std::string> {
          ++gate_.started;
          if (!gate_.wait([&] { return call.cancelled(); })) {
            ++gate_.cancelled;
            return cmdwire::make_error(errc::internal, "cancelled");
          }
          ++gate_.finished;
          return std::string("done");
        },
        cmdwire::offload);
    ep_.handle_stream(
        gate_stream,
        [this](const cmdwire::request_context& rc, cmdwire::stream& s) -> asio::awaitable<void> {
          ++gate_.started;
          asio::steady_timer timer(co_await asio::this_coro::executor);
          while (!gate_.is_open()) {
            timer.expires_after(1ms);
            auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
          }
          ++gate_.finished;
          std::string frame;
          cmdwire::wire::append_ok(frame, "done", rc.id);
          (void)co_await s.async_write(frame);
        });
    auto bound = ep_.listen("127.0.0.1", 0);
    if (!bound) throw std::runtime_error(bound.error().message);
    port_ = *bound;
    ep_.start();
  }

  cmdwire::endpoint& ep() { return ep_; }
  gate& g() { return gate_; }
  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  static cmdwire::endpoint_options options(std::chrono::milliseconds drain_timeout) {
    cmdwire::endpoint_options o;
    o.threads = 2;
    o.handler_threads = 1;
    o.drain_timeout = drain_timeout;
    return o;
  }
  gate gate_;  // before the endpoint: its handlers use the gate until it is destroyed
  cmdwire::endpoint ep_;
  std::uint16_t port_ = 0;
};

/// Waits until the clock has passed `at`: the condition under test is time itself (a deadline
/// or a drain timeout that has passed while a handler still runs), not another thread's work.
void wait_until(std::chrono::steady_clock::time_point at) {
  while (std::chrono::steady_clock::now() <= at) std::this_thread::yield();
}

void run_cell(cause c, kind k, bool ooo) {
  const bool stopping = c == cause::drain_timeout || c == cause::stop;
  gated_server server(c == cause::drain_timeout ? short_drain : 10s);
  gate& g = server.g();
  std::optional<raw_socket> s(std::in_place, server.port());
  if (ooo) {
    s->send(hello_ooo);
    REQUIRE(s->read_exact(granted.size()) == granted);
  }
  std::string request = fmt::format("{} id=7", command_of(k));
  if (c == cause::deadline) request += fmt::format(" deadline-ms={}", deadline.count());
  request += '\n';
  const auto sent = std::chrono::steady_clock::now();
  s->send(request);
  REQUIRE(eventually([&] { return g.started.load() == 1; }));

  std::thread stopper;
  switch (c) {
    case cause::deadline:
      if (!server_cancels(c, k, ooo)) {
        wait_until(sent + deadline + 10ms);
        g.release();
      }
      break;
    case cause::close:
      s.reset();
      if (server_cancels(c, k, ooo)) {
        CHECK(eventually([&] { return g.cancelled.load() == 1; }));
      }
      g.release();
      break;
    case cause::half_close:
      s->shutdown_send();
      if (!server_cancels(c, k, ooo)) g.release();
      break;
    case cause::drain_timeout: {
      const auto stop_begun = std::chrono::steady_clock::now();
      stopper = std::thread([&] { server.ep().stop(); });
      // A synchronous handler holds its thread: release it once the timeout has passed, so the
      // drain's timer has had every chance to cut it. The others are abandoned by the drain.
      if (k == kind::sync) {
        wait_until(stop_begun + short_drain + 10ms);
        g.release();
      }
      break;
    }
    case cause::stop:
      stopper = std::thread([&] { server.ep().stop(); });
      REQUIRE(eventually([&] { return server.ep().draining(); }));
      g.release();
      break;
  }

  if (const auto expected = documented_reply(c, k, ooo)) {
    if (c == cause::deadline) {
      // The connection stays open after a deadline: read the reply, then leave.
      CHECK(s->read_exact(expected->size()) == *expected);
      s.reset();
    } else {
      CHECK(s->read_to_eof() == *expected);  // the server closes after the reply
    }
  }
  // For the drain, release what was abandoned: its thread (the pool's) must be free to join.
  g.release();
  if (stopper.joinable()) stopper.join();
  CHECK(eventually([&] { return server.ep().stats().connections == 0; }));
  CHECK(server.ep().stats().task_failures == 0);
  if (server_cancels(c, k, ooo)) {
    CHECK(g.cancelled.load() == 1);
    CHECK(g.finished.load() == 0);
  }
  if (!stopping) {
    raw_socket ping(server.port());
    ping.send("PING\n");
    CHECK(ping.read_exact(10) == "OK 4\nPONG\n");
  }
}

}  // namespace

TEST_CASE("every cancellation cause × handler kind × reply mode", "[cancel]") {
  for (const cause c :
       {cause::deadline, cause::close, cause::half_close, cause::drain_timeout, cause::stop}) {
    for (const kind k : {kind::sync, kind::async, kind::offloaded, kind::stream}) {
      for (const bool ooo : {false, true}) {
        INFO(fmt::format("{} × {} × {}", name_of(c), name_of(k), ooo ? "HELLO ooo" : "in order"));
        run_cell(c, k, ooo);
      }
    }
  }
}

TEST_CASE("a deadline that passes while HASH runs on the pool answers ERR deadline", "[cancel]") {
  // Issue 26: this one line aborted the server (an exception escaped a pool thread).
  for (const unsigned pool : {1u, 2u}) {
    cmdwire::endpoint_options o;
    o.handler_threads = pool;
    cmdwire::test::test_server server(o);
    for (int i = 0; i < 3; ++i) {
      raw_socket s(server.port());
      s.send("HASH deadline-ms=100\n30000000 b\n");
      CHECK(s.read_until("ran\n") == "ERR deadline 37\ndeadline passed while the request ran\n");
      s.send("PING\n");
      CHECK(s.read_exact(10) == "OK 4\nPONG\n");
    }
    CHECK(server.ep().stats().task_failures == 0);
  }
}

TEST_CASE("connections that leave while their offloaded calls are queued leave it serving",
          "[cancel][stress]") {
  // Issue 26's use-after-free: out-of-order connections with offloaded HASH calls queued on a
  // one-thread pool close, half-close or read a little and close, back to back, from several
  // threads, while earlier connections' calls are still queued.
  cmdwire::endpoint_options o;
  o.threads = 2;
  o.handler_threads = 1;
  cmdwire::test::log_capture log;
  o.log = log.sink();
  cmdwire::test::test_server server(o);
  constexpr int clients = 4;
  constexpr int connections_each = 40;
  std::atomic<int> replies_read{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      std::minstd_rand rng(static_cast<unsigned>(t) + 1);
      for (int i = 0; i < connections_each; ++i) {
        raw_socket s(server.port());
        const bool ooo = rng() % 4 != 0;
        if (ooo) {
          s.send(hello_ooo);
          (void)s.read_exact(granted.size());
        }
        std::string requests;
        const int calls = 1 + static_cast<int>(rng() % 4);
        for (int n = 0; n < calls; ++n) {
          const std::string text = fmt::format("{} x", 50000 + rng() % 100000);
          switch (rng() % 5) {
            case 0:  // HASH, line form (a barrier on ooo connections)
              requests += fmt::format("HASH\n{}\n", text);
              break;
            case 1:  // HASH framed with an id: concurrent on ooo connections
              requests += fmt::format("HASH {} id={}\n{}", text.size(), n + 1, text);
              break;
            case 2:  // ... and with a deadline that may pass while it is queued or running
              requests += fmt::format("HASH {} id={} deadline-ms={}\n{}", text.size(), n + 1,
                                      rng() % 50, text);
              break;
            case 3:
              requests += fmt::format("SLEEP 1 id={}\n{}", n + 1, rng() % 3);
              break;
            default:
              requests += fmt::format("ECHO 2 id={}\nhi", n + 1);
              break;
          }
        }
        const auto way_out = rng() % 5;
        if (way_out == 4) requests.resize(requests.size() / 2);  // leaves mid-request
        try {
          s.send(requests);
          switch (way_out) {
            case 0:
              break;  // closes at once
            case 1:   // half-closes, reads what comes
              s.shutdown_send();
              (void)s.read_to_eof();
              break;
            case 2:  // reads the first byte of a reply, then closes
              (void)s.read_exact(1);
              ++replies_read;
              break;
            case 3:  // half-closes and closes without reading
              s.shutdown_send();
              break;
            default:
              break;
          }
        } catch (const std::exception&) {
          // The server may close first (it cancelled the calls): that is allowed here; what
          // is checked is that it survives and serves.
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const bool all_closed = eventually([&] { return server.ep().stats().connections == 0; });
  INFO(fmt::format("{} connections still open; log:\n{}", server.ep().stats().connections,
                   log.text()));
  CHECK(all_closed);
  CHECK(server.ep().stats().task_failures == 0);
  raw_socket s(server.port());
  s.send("HASH\n3 ab\nPING\n");
  CHECK(s.read_exact(17) == cmdwire::demo::hash_rounds("3 ab").value() + "\n");
  CHECK(s.read_exact(10) == "OK 4\nPONG\n");
  CHECK(replies_read.load() > 0);
}
