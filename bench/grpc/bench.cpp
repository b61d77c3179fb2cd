// cmdwire-grpc-bench: closed-loop gRPC load on cmdwire.demo.pb.Demo/Summarize, shaped like
// cmdwire-bench --command PROTO: `--conns` channels, each its own TCP connection, with `--depth`
// unary calls in flight on each; the same ~200 B Complex chain (demo::make_sample_proto); every
// reply checked against demo::summarize of the request. Settings as ghz would be given them
// (--connections C --concurrency C*D, no per-call deadline), with cmdwire-bench's output.
// Two client APIs: `--api callback` (default) lets gRPC's own threads run the completions;
// `--api cq` drives every call from one thread polling one CompletionQueue, like cmdwire-bench's
// one load thread. Against the same server on one core, callback got 35-50 % more calls per
// second out of gRPC 1.51 here (with more client CPU), so it is the default: the kinder to gRPC.
// Exit status: 0 all replies right, 1 wrong replies or failed calls, 2 usage, 3 cannot connect.
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cereal/archives/json.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <latch>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "demo/demo_commands.hpp"
#include "proto/demo.grpc.pb.h"

namespace {

namespace pb = cmdwire::demo::pb;
using clock = std::chrono::steady_clock;

// cmdwire-bench's limit too (bench/workload.cpp): deep enough for any sensible payload size.
constexpr std::uint32_t max_sample_depth = 150;
// How long every channel gets to connect before the run gives up with exit status 3.
constexpr auto connect_timeout = std::chrono::seconds(5);
// Calls still out this long after the end mean a server that stopped answering.
constexpr auto drain_timeout = std::chrono::seconds(10);

struct cli_options {
  std::string connect = "127.0.0.1:50051";
  std::string api = "callback";
  std::size_t payload_size = 200;
  unsigned conns = 1;
  unsigned depth = 1;
  double duration = 5;
  double warmup = 1;
  bool json = false;
};

enum class phase : int { warmup, measure, stop };

/// The request cmdwire-bench sends for PROTO (bench/workload.cpp): the shallowest demo chain,
/// 8 bytes of p per level, whose encoding reaches `size` bytes.
pb::Complex make_request(std::size_t size) {
  pb::Complex sample;
  for (std::uint32_t depth = 1; depth <= max_sample_depth; ++depth) {
    sample = cmdwire::demo::make_sample_proto(depth, 8);
    if (sample.ByteSizeLong() >= size) break;
  }
  return sample;
}

bool same_summary(const pb::Summary& a, const pb::Summary& b) {
  return a.depth() == b.depth() && a.entries() == b.entries() && a.bytes() == b.bytes() &&
         a.names() == b.names();
}

/// One position in a channel's window: keeps one call in flight, the next issued when the last
/// completes. Its calls are sequential, so whichever thread handles a completion is the only one
/// touching the slot at that moment (gRPC orders a completion after its call's start), and its
/// counters need no lock.
class slot {
 public:
  slot(pb::Demo::Stub& stub, const pb::Complex& request, const pb::Summary& expected)
      : stub_(stub), request_(request), expected_(expected) {}

  /// Callback API: the completion callback checks the reply and issues the next call, until
  /// `current` is phase::stop; then, or on a failed call, counts `finished` down once.
  void start_callback(const std::atomic<phase>& current, std::latch& finished) {
    begin();
    stub_.async()->Summarize(&*context_, &request_, &reply_,
                             [this, &current, &finished](grpc::Status status) {
                               status_ = std::move(status);
                               if (complete(current.load(std::memory_order_relaxed))) {
                                 start_callback(current, finished);
                               } else {
                                 finished.count_down();
                               }
                             });
  }

  /// CompletionQueue API: starts a call whose completion `cq` delivers with this slot as tag.
  void start_cq(grpc::CompletionQueue& cq) {
    begin();
    reader_ = stub_.AsyncSummarize(&*context_, request_, &cq);
    reader_->Finish(&reply_, &status_, this);
  }

  /// Checks the reply of the call just completed and records it for phase `p`. True: issue the
  /// next call; false: this slot is done (stopping, or its call failed).
  bool complete(phase p) {
    const auto now = clock::now();
    if (!status_.ok()) {
      // A failed call means a broken channel or server: stop this slot rather than spin.
      fail(fmt::format("call failed: {} ({})", status_.error_message(),
                       static_cast<int>(status_.error_code())));
      return false;
    }
    ++replies;
    if (!same_summary(reply_, expected_)) {
      fail(fmt::format("wrong summary: {}", reply_.ShortDebugString()));
      return false;
    }
    if (p == phase::measure) {
      ++completed;
      latency_us.push_back(std::chrono::duration<float, std::micro>(now - sent_).count());
    }
    return p != phase::stop;
  }

  std::vector<float> latency_us;  ///< one sample per verified reply while measuring
  std::uint64_t completed = 0;    ///< verified replies while measuring
  std::uint64_t replies = 0;      ///< replies in any phase: server CPU per request spans them
  std::uint64_t errors = 0;
  std::string first_error;

 private:
  void begin() {
    reader_.reset();
    context_.emplace();  // a ClientContext serves one call only
    reply_.Clear();
    sent_ = clock::now();
  }

  void fail(std::string what) {
    if (errors++ == 0) first_error = std::move(what);
  }

  pb::Demo::Stub& stub_;
  const pb::Complex& request_;
  const pb::Summary& expected_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<pb::Summary>> reader_;
  std::optional<grpc::ClientContext> context_;
  pb::Summary reply_;
  grpc::Status status_;
  clock::time_point sent_;
};

struct summary {
  double seconds = 0;
  std::uint64_t requests = 0;
  std::uint64_t replies = 0;
  std::uint64_t errors = 0;
  double rps = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
  std::string first_error;
};

/// The value below which a fraction `q` of the sorted samples lie.
double quantile(const std::vector<float>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto i = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

summary summarize_run(const std::vector<std::unique_ptr<slot>>& slots, double seconds) {
  summary s;
  s.seconds = seconds;
  std::vector<float> all;
  for (const auto& c : slots) {
    all.insert(all.end(), c->latency_us.begin(), c->latency_us.end());
    s.requests += c->completed;
    s.replies += c->replies;
    s.errors += c->errors;
    if (s.first_error.empty()) s.first_error = c->first_error;
  }
  std::sort(all.begin(), all.end());
  s.rps = seconds > 0 ? static_cast<double>(s.requests) / seconds : 0;
  s.p50 = quantile(all, 0.50);
  s.p90 = quantile(all, 0.90);
  s.p99 = quantile(all, 0.99);
  s.p999 = quantile(all, 0.999);
  s.max = all.empty() ? 0 : all.back();
  return s;
}

void print_text(const cli_options& o, std::size_t payload, const summary& s) {
  fmt::print("gRPC Summarize {} B to {}, {} channels x depth {}, {} API\n", payload, o.connect,
             o.conns, o.depth, o.api);
  fmt::print("  requests  {} in {:.2f} s: {:.0f} req/s, {} errors\n", s.requests, s.seconds, s.rps,
             s.errors);
  fmt::print(
      "  latency   p50 {:.1f} us  p90 {:.1f} us  p99 {:.1f} us  p99.9 {:.1f} us  max {:.1f} us\n",
      s.p50, s.p90, s.p99, s.p999, s.max);
  if (!s.first_error.empty()) fmt::print("  first error: {}\n", s.first_error);
}

/// The field names of cmdwire-bench --json, so bench/run.sh reads both the same way: `replies`
/// in the measured window, `replies_with_warmup` in all.
void print_json(const cli_options& o, std::size_t payload, const summary& s) {
  {
    cereal::JSONOutputArchive ar(std::cout, cereal::JSONOutputArchive::Options::NoIndent());
    ar(cereal::make_nvp("command", std::string("grpc:Summarize")), cereal::make_nvp("api", o.api),
       cereal::make_nvp("connect", o.connect), cereal::make_nvp("conns", o.conns),
       cereal::make_nvp("depth", o.depth),
       cereal::make_nvp("payload_size", static_cast<std::uint64_t>(payload)),
       cereal::make_nvp("seconds", s.seconds), cereal::make_nvp("requests", s.requests),
       cereal::make_nvp("replies", s.requests), cereal::make_nvp("replies_with_warmup", s.replies),
       cereal::make_nvp("errors", s.errors), cereal::make_nvp("rps", s.rps),
       cereal::make_nvp("p50_us", s.p50), cereal::make_nvp("p90_us", s.p90),
       cereal::make_nvp("p99_us", s.p99), cereal::make_nvp("p999_us", s.p999),
       cereal::make_nvp("max_us", s.max), cereal::make_nvp("first_error", s.first_error));
  }  // the archive closes the object when it goes
  std::cout << '\n';
}

clock::duration seconds_to(double s) {
  return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s));
}

/// Moves `current` through the phases on the clock, then waits for `finished`; returns the
/// seconds measured. Calls still out `drain_timeout` after the end end the process.
double drive(const cli_options& o, std::atomic<phase>& current, std::latch& finished) {
  const auto start = clock::now();
  std::this_thread::sleep_until(start + seconds_to(o.warmup));
  current = phase::measure;
  const auto t0 = clock::now();
  std::this_thread::sleep_until(t0 + seconds_to(o.duration));
  current = phase::stop;
  const double seconds = std::chrono::duration<double>(clock::now() - t0).count();
  // Every slot stops at its next reply; their state is ours once the latch opens.
  const auto give_up = clock::now() + drain_timeout;
  while (!finished.try_wait()) {
    if (clock::now() > give_up) {
      // They own slots, channels and queues: exit without tearing anything down.
      fmt::print(stderr, "cmdwire-grpc-bench: calls still unanswered {} s after the end\n",
                 std::chrono::duration_cast<std::chrono::seconds>(drain_timeout).count());
      std::fflush(stderr);
      std::_Exit(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return seconds;
}

/// The load through the callback API: gRPC's threads run the completions.
double run_callback(const cli_options& o, const std::vector<std::unique_ptr<slot>>& slots) {
  std::atomic<phase> current{phase::warmup};
  std::latch finished(static_cast<std::ptrdiff_t>(slots.size()));
  for (const auto& s : slots) s->start_callback(current, finished);
  return drive(o, current, finished);
}

/// The load through one CompletionQueue, polled by one thread (blocking Next: no timer per
/// wake-up) while this one keeps the clock.
double run_cq(const cli_options& o, const std::vector<std::unique_ptr<slot>>& slots) {
  grpc::CompletionQueue cq;
  std::atomic<phase> current{phase::warmup};
  std::latch finished(1);
  for (const auto& s : slots) s->start_cq(cq);
  std::thread poller([&] {
    std::size_t out = slots.size();
    void* tag = nullptr;
    bool ok = false;
    // Finish's completion is always ok; a failed call shows in the slot's status.
    while (out > 0 && cq.Next(&tag, &ok)) {
      auto* s = static_cast<slot*>(tag);
      if (s->complete(current.load(std::memory_order_relaxed))) {
        s->start_cq(cq);
      } else {
        --out;
      }
    }
    finished.count_down();
  });
  const double seconds = drive(o, current, finished);
  poller.join();
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  return seconds;
}

int run(const cli_options& o) {
  const pb::Complex request = make_request(o.payload_size);
  const pb::Summary expected = cmdwire::demo::summarize(request);

  // One channel per connection. Channels with equal arguments share subchannels (and so one TCP
  // connection) through gRPC's global pool; a local pool per channel, plus an argument unique to
  // each, gives every channel its own connection, as cmdwire-bench's --conns does.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<pb::Demo::Stub>> stubs;
  for (unsigned i = 0; i < o.conns; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("cmdwire.bench.channel", static_cast<int>(i));
    channels.push_back(
        grpc::CreateCustomChannel(o.connect, grpc::InsecureChannelCredentials(), args));
    if (!channels.back()->WaitForConnected(std::chrono::system_clock::now() + connect_timeout)) {
      fmt::print(stderr, "cmdwire-grpc-bench: cannot connect to {}\n", o.connect);
      return 3;
    }
    stubs.push_back(pb::Demo::NewStub(channels.back()));
  }

  std::vector<std::unique_ptr<slot>> slots;
  for (unsigned i = 0; i < o.conns; ++i) {
    for (unsigned d = 0; d < o.depth; ++d) {
      slots.push_back(std::make_unique<slot>(*stubs[i], request, expected));
    }
  }
  const double seconds = o.api == "cq" ? run_cq(o, slots) : run_callback(o, slots);

  const summary s = summarize_run(slots, seconds);
  const std::size_t payload = request.ByteSizeLong();
  if (o.json) {
    print_json(o, payload, s);
  } else {
    print_text(o, payload, s);
  }
  return s.errors == 0 && s.requests > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "cmdwire-grpc-bench: closed-loop gRPC load on cmdwire.demo.pb.Demo/Summarize (the gRPC "
      "twin of cmdwire-bench --command PROTO): channels x unary calls in flight, verified "
      "replies.\n"
      "Example:\n"
      "  cmdwire-grpc-bench --connect 127.0.0.1:50051 --conns 16 --depth 32 --duration 2"};
  cli_options o;
  app.add_option("--connect", o.connect, "HOST:PORT of cmdwire-grpc-server (a gRPC target)")
      ->capture_default_str();
  app.add_option("--payload-size", o.payload_size,
                 "the request is the smallest demo chain of at least this many bytes, as "
                 "cmdwire-bench --command PROTO sends")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  app.add_option("--conns", o.conns, "channels, each its own TCP connection")
      ->capture_default_str()
      ->check(CLI::Range(1u, 10000u));
  app.add_option("--depth", o.depth, "unary calls in flight per channel")
      ->capture_default_str()
      ->check(CLI::Range(1u, 10000u));
  app.add_option("--duration", o.duration, "seconds measured")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 86400.0));
  app.add_option("--warmup", o.warmup, "seconds of load before measuring")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--api", o.api,
                 "cq: one thread polls a CompletionQueue; callback: gRPC's threads run completions")
      ->capture_default_str()
      ->check(CLI::IsMember({"cq", "callback"}));
  app.add_flag("--json", o.json, "print one JSON object at the end instead of text");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // usage errors exit 2, as in every cmdwire binary
  }
  return run(o);
}
