// The channel under failure: servers killed (SIGKILL), stopped, restarted and frozen (SIGSTOP)
// while callers keep calling; what may be retried is, what may not never runs twice. Also
// client and channel on a test's own io_context with no thread of their own.
#include <dirent.h>
#include <signal.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cmdwire/channel.hpp"
#include "cmdwire/client.hpp"
#include "demo/demo_commands.hpp"
#include "support/process.hpp"
#include "support/test_server.hpp"

using cmdwire::errc;
using cmdwire::test::test_server;
using namespace std::chrono_literals;
namespace demo = cmdwire::demo;

namespace {

/// `n` threads calling `one_call` in a loop until stopped, counting outcomes.
class callers {
 public:
  callers(int n, std::function<cmdwire::result<std::string>()> one_call)
      : one_call_(std::move(one_call)) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this] {
        while (!stop_.load()) {
          auto r = one_call_();
          if (r) {
            ++ok_;
            continue;
          }
          std::lock_guard lock(mutex_);
          errors_.push_back(r.error());
        }
      });
    }
  }
  ~callers() { stop(); }

  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  [[nodiscard]] int ok() const { return ok_.load(); }
  /// Waits until `more` further calls have succeeded; false after `limit`.
  bool wait_for_more(int more, std::chrono::seconds limit = 30s) const {
    const int target = ok_.load() + more;
    const auto give_up = std::chrono::steady_clock::now() + limit;
    while (ok_.load() < target) {
      if (std::chrono::steady_clock::now() > give_up) return false;
      std::this_thread::yield();
    }
    return true;
  }
  [[nodiscard]] std::vector<cmdwire::error> errors() const {
    std::lock_guard lock(mutex_);
    return errors_;
  }
  [[nodiscard]] int errors_with(errc code) const {
    int n = 0;
    for (const auto& e : errors()) n += e.code == code ? 1 : 0;
    return n;
  }

 private:
  std::function<cmdwire::result<std::string>()> one_call_;
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0};
  mutable std::mutex mutex_;
  std::vector<cmdwire::error> errors_;
  std::vector<std::thread> threads_;
};

std::string describe(const std::vector<cmdwire::error>& errors) {
  std::string out;
  for (std::size_t i = 0; i < errors.size() && i < 5; ++i) {
    out += errors[i].code.message() + ": " + errors[i].message + "\n";
  }
  return out;
}

/// Starts cmdwire-server on `listen` and returns it with the address it printed.
std::pair<std::unique_ptr<cmdwire::test::child_process>, std::string> start_server(
    const std::string& listen) {
  auto p = std::make_unique<cmdwire::test::child_process>(std::vector<std::string>{
      cmdwire::test::bin_path("cmdwire-server"), "--listen", listen, "--log-level", "warn"});
  const auto line = p->read_line();
  const std::string prefix = "cmdwire-server listening on ";
  if (!line || !line->starts_with(prefix)) throw std::runtime_error("server did not start");
  return {std::move(p), line->substr(prefix.size())};
}

cmdwire::channel make_channel(const std::vector<std::string>& addresses,
                              cmdwire::channel_options options) {
  auto ch = cmdwire::channel::create(addresses, options);
  REQUIRE(ch.has_value());
  return std::move(*ch);
}

std::size_t thread_count() {
  std::size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (const dirent* e = ::readdir(d)) n += e->d_name[0] != '.' ? 1 : 0;
    ::closedir(d);
  }
  return n;
}

cmdwire::channel_options fast_reconnect() {
  cmdwire::channel_options o;
  o.backoff.initial = 10ms;
  o.backoff.max = 200ms;
  o.default_deadline = 10s;
  o.keepalive_interval = 0ms;
  return o;
}

}  // namespace

TEST_CASE("channel: a server killed with SIGKILL and restarted on its port", "[channel]") {
  auto [server, address] = start_server("127.0.0.1:0");
  auto ch = make_channel({address}, fast_reconnect());
  SECTION("idempotent ECHO: every call succeeds, none fails with connection_lost") {
    callers load(16, [&] { return ch.call<demo::Echo>("ping"); });
    REQUIRE(load.wait_for_more(500));
    server->signal(SIGKILL);
    (void)server->wait();
    auto [again, same] = start_server(address);
    CHECK(same == address);
    REQUIRE(load.wait_for_more(500));
    load.stop();
    INFO(describe(load.errors()));
    CHECK(load.errors_with(errc::connection_lost) == 0);
    CHECK(load.errors().empty());  // no deadline (10 s) was reached either
    const auto st = ch.stats();
    CHECK(st.addresses.at(0).disconnects >= 1);
    CHECK(st.addresses.at(0).connects >= 2);
    CHECK(st.failures == 0);
  }
}

TEST_CASE("channel: a call that is not idempotent never runs twice", "[channel]") {
  cmdwire::endpoint_options abrupt;
  abrupt.drain_timeout = 1ms;  // stop() abandons the calls in flight, as a crash would
  auto first = std::make_unique<test_server>(abrupt);
  const std::uint16_t port = first->port();
  auto ch = make_channel({first->address()}, fast_reconnect());
  callers load(8, [&] { return ch.call<cmdwire::test::Incr>("5"); });
  REQUIRE(load.wait_for_more(100));
  first->ep().stop();  // replies to the calls in flight are lost
  const int ran_on_first = first->incrs();
  first.reset();
  test_server second(abrupt, port);
  REQUIRE(load.wait_for_more(100));
  load.stop();
  const int lost = load.errors_with(errc::connection_lost);
  INFO(describe(load.errors()));
  // Every failure is connection_lost: the calls not yet written waited and went to `second`.
  CHECK(static_cast<std::size_t>(lost) == load.errors().size());
  CHECK(lost >= 1);
  CHECK(ch.stats().retries == 0);
  // What ran on the servers is at most what the callers saw succeed plus what they were told
  // may have run: no call ran twice.
  const int executed = ran_on_first + second.incrs();
  INFO("INCR ran " << executed << " times; " << load.ok() << " successes, " << lost
                   << " connection_lost");
  CHECK(executed <= load.ok() + lost);
}

TEST_CASE("channel: three servers, one stopped and restarted", "[channel]") {
  cmdwire::endpoint_options abrupt;
  abrupt.drain_timeout = 1ms;
  std::vector<std::unique_ptr<test_server>> servers;
  for (int i = 0; i < 3; ++i) servers.push_back(std::make_unique<test_server>(abrupt));
  std::vector<std::string> addresses;
  for (auto& s : servers) addresses.push_back(s->address());
  auto options = fast_reconnect();
  auto ch = make_channel(addresses, options);
  callers load(8, [&] { return ch.call<cmdwire::test::Tally>("x"); });
  REQUIRE(load.wait_for_more(300));
  for (auto& s : servers) CHECK(s->tallies() > 0);  // least outstanding spreads the calls

  const std::uint16_t port = servers[1]->port();
  servers[1].reset();
  const int before0 = servers[0]->tallies();
  const int before2 = servers[2]->tallies();
  REQUIRE(load.wait_for_more(600));
  CHECK(servers[0]->tallies() > before0);
  CHECK(servers[2]->tallies() > before2);

  const auto restarted_at = std::chrono::steady_clock::now();
  servers[1] = std::make_unique<test_server>(abrupt, port);
  while (servers[1]->tallies() == 0 && std::chrono::steady_clock::now() - restarted_at < 20s) {
    std::this_thread::yield();
  }
  const auto took = std::chrono::steady_clock::now() - restarted_at;
  load.stop();
  INFO(describe(load.errors()));
  CHECK(load.errors().empty());
  REQUIRE(servers[1]->tallies() > 0);
  // Back within the backoff maximum (200 ms, +20% jitter), with room for a loaded machine.
  CHECK(took < options.backoff.max * 5);
  const auto st = ch.stats();
  CHECK(st.addresses.at(1).disconnects >= 1);
  CHECK(st.addresses.at(1).ready == 1);
}

TEST_CASE("channel: keepalive finds a frozen server (SIGSTOP) and calls move on", "[channel]") {
  auto [frozen, frozen_address] = start_server("127.0.0.1:0");
  test_server healthy;
  auto options = fast_reconnect();
  options.keepalive_interval = 100ms;
  options.keepalive_timeout = 300ms;
  options.connect_timeout = 500ms;
  auto ch = make_channel({frozen_address, healthy.address()}, options);
  callers load(4, [&] { return ch.call<demo::Echo>("hi"); });
  REQUIRE(load.wait_for_more(200));
  frozen->signal(SIGSTOP);
  REQUIRE(load.wait_for_more(2000));
  load.stop();
  // Read before SIGCONT: once resumed, the server answers a pending redial's HELLO.
  const auto st = ch.stats();
  frozen->signal(SIGCONT);
  INFO(describe(load.errors()));
  CHECK(load.errors().empty());
  // The frozen server's connection was found dead (by keepalive: nothing else ends it while
  // the process is stopped) and none to it is ready.
  CHECK(st.addresses.at(0).disconnects >= 1);
  CHECK(st.addresses.at(0).ready == 0);
}

TEST_CASE("channel: fail-fast or wait for ready during an outage", "[channel]") {
  std::uint16_t port = 0;
  {
    test_server gone;
    port = gone.port();
  }
  auto options = fast_reconnect();
  options.wait_for_ready = false;
  auto ch = make_channel({"127.0.0.1:" + std::to_string(port)}, options);
  // The first attempt is refused; a fail-fast call fails then instead of waiting.
  const auto r = ch.call<demo::Echo>("x");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::not_connected);
  // ...while a call that waits for ready is answered once a server comes up.
  std::optional<test_server> late;
  cmdwire::call_options wait;
  wait.wait_for_ready = true;
  wait.deadline = 20s;
  std::thread starter([&] {
    while (ch.stats().waiting == 0) std::this_thread::yield();
    late.emplace(cmdwire::endpoint_options{}, port);
  });
  auto waited = ch.call<demo::Echo>("x", wait);
  starter.join();
  REQUIRE(waited.has_value());
  CHECK(*waited == "x");
  // A call that waits fails by its deadline when nothing comes up.
  late.reset();
  wait.deadline = 300ms;
  auto timed_out = ch.call<demo::Echo>("x", wait);
  REQUIRE_FALSE(timed_out.has_value());
  CHECK(timed_out.error().code == errc::timeout);
}

TEST_CASE("client and channel run on the caller's io_context with no thread of their own",
          "[channel]") {
  test_server server;
  boost::asio::io_context ctx(1);
  const std::size_t threads_before = thread_count();
  std::size_t threads_during = 0;
  std::string from_client;
  std::string from_channel;
  boost::asio::co_spawn(
      ctx,
      [&]() -> boost::asio::awaitable<void> {
        // Named arguments: GCC 12 destroys temporaries in a co_await expression twice.
        std::string address = server.address();
        cmdwire::client_options client_options;
        auto c = co_await cmdwire::client::async_connect(address, client_options);
        REQUIRE(c.has_value());
        cmdwire::channel_options options;
        options.executor = ctx.get_executor();
        options.connections_per_address = 2;
        auto ch = cmdwire::channel::create(server.address(), options);
        REQUIRE(ch.has_value());
        const std::string_view body = "on your context";
        auto a = co_await c->async_call<demo::Echo>(body);
        auto b = co_await ch->async_call<demo::Echo>(body);
        threads_during = thread_count();
        if (a) from_client = *a;
        if (b) from_channel = *b;
        c->close();
        ch->close();
      },
      boost::asio::detached);
  ctx.run();  // returns once the calls are done and both have closed
  CHECK(from_client == "on your context");
  CHECK(from_channel == "on your context");
  CHECK(threads_during == threads_before);
}
