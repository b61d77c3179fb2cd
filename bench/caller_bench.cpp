// cmdwire-caller-bench: N threads making blocking typed ECHO calls through the library, over
// one `client` and over a `channel` with K connections, in alternating rounds against the same
// server; prints each side's calls/s and the median of the per-round ratios channel ÷ client.
// Usage: cmdwire-caller-bench --connect ADDR [--callers 16] [--connections 4] [--rounds 3]
//        [--duration 1] [--payload 16]
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "cmdwire/channel.hpp"
#include "cmdwire/client.hpp"
#include "demo/demo_commands.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

/// Calls per second that `callers` threads reach through `c` in `seconds`; -1 on any error.
double measure(cmdwire::caller& c, unsigned callers, double seconds, const std::string& payload) {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> done{0};
  std::atomic<std::uint64_t> errors{0};
  std::vector<std::thread> threads;
  const auto start = clock_type::now();
  for (unsigned i = 0; i < callers; ++i) {
    threads.emplace_back([&] {
      std::uint64_t mine = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        auto r = c.call<cmdwire::demo::Echo>(payload);
        if (!r || *r != payload) {
          ++errors;
          break;
        }
        ++mine;
      }
      done += mine;
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));  // the measured period
  stop = true;
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
  return errors.load() > 0 ? -1 : static_cast<double>(done.load()) / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cmdwire-caller-bench: blocking ECHO calls through one client vs a channel"};
  std::string address = "127.0.0.1:61000";
  unsigned callers = 16;
  std::size_t connections = 4;
  unsigned rounds = 3;
  double seconds = 1;
  std::size_t payload_size = 16;
  app.add_option("--connect", address, "HOST:PORT or unix:PATH of the server");
  app.add_option("--callers", callers, "threads calling at once")->check(CLI::Range(1u, 1024u));
  app.add_option("--connections", connections, "the channel's connections")
      ->check(CLI::Range(std::size_t{1}, std::size_t{64}));
  app.add_option("--rounds", rounds, "alternating rounds")->check(CLI::Range(1u, 100u));
  app.add_option("--duration", seconds, "seconds per side per round")->check(CLI::PositiveNumber);
  app.add_option("--payload", payload_size, "ECHO body bytes");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // usage errors exit 2, as in every cmdwire binary
  }

  auto client = cmdwire::client::connect(address);
  if (!client) {
    fmt::print(stderr, "cmdwire-caller-bench: {}\n", client.error().message);
    return 3;
  }
  cmdwire::channel_options options;
  options.connections_per_address = connections;
  options.default_deadline = std::chrono::seconds(10);
  auto channel = cmdwire::channel::create(address, options);
  if (!channel) {
    fmt::print(stderr, "cmdwire-caller-bench: {}\n", channel.error().message);
    return 2;
  }
  const std::string payload(payload_size, 'x');
  std::vector<double> ratios;
  for (unsigned r = 0; r < rounds; ++r) {
    const double one = measure(*client, callers, seconds, payload);
    const double many = measure(*channel, callers, seconds, payload);
    if (one <= 0 || many <= 0) {
      fmt::print(stderr, "cmdwire-caller-bench: a call failed\n");
      return 1;
    }
    ratios.push_back(many / one);
    fmt::print("round {}: client {:.0f} calls/s, channel×{} {:.0f} calls/s, ratio {:.2f}\n", r + 1,
               one, connections, many, many / one);
  }
  std::sort(ratios.begin(), ratios.end());
  fmt::print(
      "ECHO {} B, {} callers: channel ({} connections) ÷ client, median of {} rounds: {:.2f}\n",
      payload_size, callers, connections, rounds, ratios[ratios.size() / 2]);
  return 0;
}
