// cmdwire-bench: closed-loop load generator for cmdwire servers, and for any other server
// through raw request/reply bytes (--raw-echo, --raw/--expect); redis-benchmark style report.
#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <cereal/archives/json.hpp>
#include <cereal/types/string.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "cmdwire/address.hpp"
#include "load.hpp"
#include "workload.hpp"

namespace {

using namespace cmdwire;
using namespace cmdwire::bench;
using clock = std::chrono::steady_clock;

struct cli_options {
  std::string connect = "127.0.0.1:61000";
  std::string command = "ECHO";
  std::size_t payload_size = 16;
  unsigned conns = 1;
  unsigned depth = 1;
  unsigned threads = 1;
  double duration = 5;
  double warmup = 1;
  wire::encoding enc = wire::encoding::bin;
  bool raw_echo = false;
  std::string raw;
  std::string expect;
  bool json = false;
  bool idle = false;
  workload_options shape;
};

struct summary {
  std::uint64_t requests = 0;
  std::uint64_t replies = 0;  ///< warm-up included: what the server did while the tool ran
  std::uint64_t errors = 0;
  double seconds = 0;
  double rps = 0;
  double mb_per_s = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
  std::string first_error;
};

summary summarize(const load& l, double seconds, std::size_t payload_size) {
  summary s;
  s.seconds = seconds;
  auto merged = make_latency_histogram();
  for (const auto& t : l.stats()) {
    merged += t->latency;
    s.requests += t->completed;
    s.errors += t->errors;
    s.max = std::max(s.max, t->max_us);
    if (s.first_error.empty()) s.first_error = t->first_error;
  }
  s.replies = l.live_replies();
  s.rps = seconds > 0 ? static_cast<double>(s.requests) / seconds : 0;
  s.mb_per_s = s.rps * static_cast<double>(payload_size) / 1e6;
  s.p50 = quantile_us(merged, 0.50, s.max);
  s.p90 = quantile_us(merged, 0.90, s.max);
  s.p99 = quantile_us(merged, 0.99, s.max);
  s.p999 = quantile_us(merged, 0.999, s.max);
  return s;
}

std::string describe(const cli_options& o, const workload& w) {
  const std::string what =
      o.raw_echo       ? fmt::format("raw echo {} B", w.payload_size)
      : !o.raw.empty() ? fmt::format("raw '{}'", o.raw)
                       : fmt::format("{}{} {} B", o.command,
                                     o.enc == wire::encoding::json ? " json" : "", w.payload_size);
  return fmt::format("{} to {}, {} conns x depth {}, {} thread{}", what, o.connect, o.conns,
                     o.depth, o.threads, o.threads == 1 ? "" : "s");
}

void print_text(const cli_options& o, const workload& w, const summary& s) {
  fmt::print("{}\n", describe(o, w));
  fmt::print("  requests  {} in {:.2f} s: {:.0f} req/s, {:.2f} MB/s, {} errors\n", s.requests,
             s.seconds, s.rps, s.mb_per_s, s.errors);
  fmt::print(
      "  latency   p50 {:.1f} us  p90 {:.1f} us  p99 {:.1f} us  p99.9 {:.1f} us  max {:.1f} us\n",
      s.p50, s.p90, s.p99, s.p999, s.max);
  if (!s.first_error.empty()) fmt::print("  first error: {}\n", s.first_error);
}

void print_json(const cli_options& o, const workload& w, const summary& s) {
  {
    cereal::JSONOutputArchive ar(std::cout, cereal::JSONOutputArchive::Options::NoIndent());
    const std::string target = o.raw_echo ? "raw-echo" : !o.raw.empty() ? "raw" : o.command;
    ar(cereal::make_nvp("command", target), cereal::make_nvp("connect", o.connect),
       cereal::make_nvp("conns", o.conns), cereal::make_nvp("depth", o.depth),
       cereal::make_nvp("threads", o.threads),
       cereal::make_nvp("payload_size", static_cast<std::uint64_t>(w.payload_size)),
       cereal::make_nvp("seconds", s.seconds), cereal::make_nvp("requests", s.requests),
       cereal::make_nvp("replies", s.replies), cereal::make_nvp("errors", s.errors),
       cereal::make_nvp("rps", s.rps), cereal::make_nvp("mb_per_s", s.mb_per_s),
       cereal::make_nvp("p50_us", s.p50), cereal::make_nvp("p90_us", s.p90),
       cereal::make_nvp("p99_us", s.p99), cereal::make_nvp("p999_us", s.p999),
       cereal::make_nvp("max_us", s.max), cereal::make_nvp("first_error", s.first_error));
  }  // the archive closes the object when it goes
  std::cout << '\n';
}

result<asio::generic::stream_protocol::endpoint> resolve(const std::string& where) {
  // In place: a generic endpoint converts from anything, so a bare error would be ambiguous.
  using target = result<asio::generic::stream_protocol::endpoint>;
  auto addr = parse_address(where);
  if (!addr) return target(boost::system::in_place_error, addr.error());
  if (addr->is_unix()) return asio::local::stream_protocol::endpoint(addr->unix_path);
  const host_port* hp = &addr->tcp;
  asio::io_context ctx;
  asio::ip::tcp::resolver resolver(ctx);
  boost::system::error_code ec;
  auto results = resolver.resolve(hp->host, std::to_string(hp->port), ec);
  if (ec || results.empty()) {
    return target(boost::system::in_place_error, make_error_code(errc::bad_address),
                  fmt::format("cannot resolve {}: {}", where, ec ? ec.message() : "no address"));
  }
  return results.begin()->endpoint();
}

/// Sleeps until `until`, printing a progress line each second when stdout is a terminal.
void wait_with_progress(const load& l, clock::time_point from, clock::time_point until,
                        bool progress, std::string_view label) {
  std::uint64_t last = l.live_completed();
  auto last_at = clock::now();
  while (clock::now() < until) {
    std::this_thread::sleep_until(std::min(until, clock::now() + std::chrono::seconds(1)));
    if (!progress) continue;
    const auto now = clock::now();
    const std::uint64_t done = l.live_completed();
    const double dt = std::chrono::duration<double>(now - last_at).count();
    fmt::print("\r{} {:5.1f} s  {:>10.0f} req/s  {:>12} requests ", label,
               std::chrono::duration<double>(now - from).count(),
               dt > 0 ? static_cast<double>(done - last) / dt : 0.0, done);
    std::fflush(stdout);
    last = done;
    last_at = now;
  }
  if (progress) fmt::print("\r{:70}\r", "");
}

int run(const cli_options& o) {
  result<workload> work = o.raw_echo ? result<workload>(make_echo_workload(o.payload_size))
                          : !o.raw.empty()
                              ? make_raw_workload(o.raw, o.expect)
                              : make_command_workload(o.command, o.enc, o.payload_size, o.shape);
  if (!work) {
    fmt::print(stderr, "cmdwire-bench: {}\n", work.error().message);
    return 2;
  }
  auto target = resolve(o.connect);
  if (!target) {
    fmt::print(stderr, "cmdwire-bench: {}\n", target.error().message);
    return 2;
  }
  std::atomic<phase> current{phase::warmup};
  load_options lo{*target, o.conns, o.depth, o.threads, o.idle};
  load l(*work, lo, current);
  const bool progress = !o.json && ::isatty(STDOUT_FILENO) != 0;
  const auto start = clock::now();
  l.start();

  if (o.idle) {
    // Wait until every connection has had its one reply, then hold them open silently.
    const auto give_up = start + std::chrono::duration<double>(o.warmup + 30);
    while (l.live_replies() < o.conns && clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    fmt::print("idle: {} of {} connections answered\n", l.live_replies(), o.conns);
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::duration<double>(o.duration));
    current = phase::stop;
    l.stop_and_join();
    return l.live_replies() == o.conns ? 0 : 1;
  }

  const auto measure_from =
      start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(o.warmup));
  wait_with_progress(l, start, measure_from, progress, "warmup ");
  current = phase::measure;
  const auto t0 = clock::now();
  wait_with_progress(
      l, t0,
      t0 + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(o.duration)),
      progress, "running");
  current = phase::stop;
  const double seconds = std::chrono::duration<double>(clock::now() - t0).count();
  l.stop_and_join();

  const summary s = summarize(l, seconds, work->payload_size);
  if (o.json) {
    print_json(o, *work, s);
  } else {
    print_text(o, *work, s);
  }
  return s.errors == 0 && s.requests > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "cmdwire-bench: closed-loop load generator (pipelined, latency histogram, verified "
      "replies).\n"
      "Examples:\n"
      "  cmdwire-bench --connect 127.0.0.1:61000 --command ECHO --payload-size 16 --conns 16 "
      "--depth 32\n"
      "  cmdwire-bench --connect 127.0.0.1:7000 --raw-echo --payload-size 65536\n"
      "  cmdwire-bench --connect 127.0.0.1:6379 --raw 'PING\\r\\n' --expect '+PONG\\r\\n'"};
  cli_options o;
  app.add_option("--connect", o.connect, "HOST:PORT or unix:PATH of the server")
      ->capture_default_str();
  app.add_option("--command", o.command,
                 "ECHO, PING, STRUCT, PROTO, STRING (replies checked exactly) or any other "
                 "command (any OK reply counts)")
      ->capture_default_str();
  app.add_option("--payload-size", o.payload_size,
                 "body bytes (ECHO, raw echo, other commands); STRUCT/PROTO send the smallest "
                 "demo chain of at least this size")
      ->capture_default_str();
  app.add_option("--conns", o.conns, "connections")
      ->check(CLI::Range(1u, 1000000u))
      ->capture_default_str();
  app.add_option("--depth", o.depth, "requests in flight per connection (pipelined)")
      ->check(CLI::Range(1u, 65536u))
      ->capture_default_str();
  app.add_option("--threads", o.threads, "load threads, one io_context each")
      ->check(CLI::Range(1u, 1024u))
      ->capture_default_str();
  app.add_option("--duration", o.duration, "seconds measured (idle mode: seconds held open)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--warmup", o.warmup, "seconds of load before measuring")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  std::string enc_name = "bin";
  app.add_option("--encoding", enc_name, "bin or json")
      ->check(CLI::IsMember({"bin", "json"}))
      ->capture_default_str();
  auto* raw_echo = app.add_flag("--raw-echo", o.raw_echo,
                                "speak raw bytes to an echo server: payload-size bytes each way");
  auto* raw = app.add_option("--raw", o.raw, "raw request bytes, C escapes allowed ('PING\\r\\n')");
  auto* expect =
      app.add_option("--expect", o.expect, "the exact reply to --raw, C escapes allowed");
  raw->needs(expect)->excludes(raw_echo);
  expect->needs(raw);
  app.add_flag("--hello", o.shape.hello,
               "negotiate out-of-order replies (HELLO ooo) on every connection; requests carry id=")
      ->excludes(raw_echo)
      ->excludes(raw);
  app.add_option("--mix-sleep", o.shape.mix_sleep_ms,
                 "keep one 'SLEEP MS' in flight per connection among the --depth requests; "
                 "latency is the other requests'")
      ->check(CLI::Range(1u, 600000u))
      ->excludes(raw_echo)
      ->excludes(raw);
  app.add_flag("--json", o.json, "print one JSON object at the end instead of text");
  app.add_flag("--idle", o.idle,
               "open --conns connections, one request each, then hold them silent for "
               "--duration seconds (memory measurements)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // usage errors exit 2, as in every cmdwire binary
  }
  o.enc = enc_name == "json" ? wire::encoding::json : wire::encoding::bin;
  return run(o);
}
