// cmdwire-bench: load generator for cmdwire servers, and for any other server through raw
// request/reply bytes (--raw-echo, --raw/--expect). Closed loop by default (conns x depth, as
// redis-benchmark and memtier_benchmark); open loop with --rate / --rate-steps (a fixed
// schedule, latency from the intended send time, as wrk2 and ghz --rps); a weighted --mix of
// commands; text, CSV or JSON reports with per-command rows and errors by ERR code.
#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "cmdwire/address.hpp"
#include "load.hpp"
#include "workload.hpp"

namespace {

using namespace cmdwire;
using namespace cmdwire::bench;

// A server that does not answer a connect within this long is as good as absent: exit 3
// instead of measuring nothing. Generous, because --idle opens thousands of connections at once
// and the kernel retries a SYN dropped from a full accept queue after 1 s, then 3 s.
constexpr std::chrono::seconds connect_timeout{15};
// The live progress line is redrawn this often (on a terminal only).
constexpr std::chrono::milliseconds progress_period{250};
// --rate-steps START:STOP:STEP: a ramp longer than this is a typo, not a benchmark.
constexpr std::size_t max_rate_steps = 1000;

struct cli_options {
  std::string connect = "127.0.0.1:61000";
  std::string command = "ECHO";
  std::string mix;
  std::size_t payload_size = 16;
  unsigned conns = 1;
  unsigned depth = 1;
  unsigned threads = 1;
  double duration = 5;
  double warmup = 1;
  double rate = 0;
  std::string rate_steps;
  wire::encoding enc = wire::encoding::bin;
  bool raw_echo = false;
  std::string raw;
  std::string expect;
  bool json = false;
  bool csv = false;
  bool idle = false;
  workload_options shape;
};

/// `A,B,C` or `START:STOP:STEP` (STOP included), in requests/s.
result<std::vector<double>> parse_rate_steps(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return result<std::vector<double>>(
        boost::system::in_place_error, make_error_code(errc::bad_request),
        fmt::format("--rate-steps '{}': {} (A,B,C or START:STOP:STEP, in req/s)", text, why));
  };
  const auto number = [](std::string_view s, double& out) {
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size() && out > 0;
  };
  std::vector<double> rates;
  if (text.find(':') != std::string_view::npos) {
    const std::size_t a = text.find(':');
    const std::size_t b = text.find(':', a + 1);
    if (b == std::string_view::npos) return bad("START:STOP:STEP needs three numbers");
    double start = 0, stop = 0, step = 0;
    if (!number(text.substr(0, a), start) || !number(text.substr(a + 1, b - a - 1), stop) ||
        !number(text.substr(b + 1), step)) {
      return bad("each must be a number above 0");
    }
    if (stop < start) return bad("STOP is below START");
    if ((stop - start) / step >= max_rate_steps) return bad("too many steps");
    // Counted, not accumulated: 0.1 added ten times is not 1.0.
    const auto n = static_cast<std::size_t>((stop - start) / step + 1e-9) + 1;
    for (std::size_t i = 0; i < n; ++i) rates.push_back(start + static_cast<double>(i) * step);
    return rates;
  }
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    double r = 0;
    if (!number(text.substr(0, comma), r)) return bad("each rate must be a number above 0");
    rates.push_back(r);
    if (comma == std::string_view::npos) break;
    text = text.substr(comma + 1);
    if (text.empty()) return bad("a rate is missing after the last comma");
  }
  if (rates.empty()) return bad("no rate");
  if (rates.size() > max_rate_steps) return bad("too many steps");
  return rates;
}

// ---- the numbers of a report

/// Adds one thread's (or one window's) counts of a command to another's.
void add(command_stats& into, const command_stats& from) {
  into.latency += from.latency;
  into.ok += from.ok;
  into.wrong += from.wrong;
  into.max_us = std::max(into.max_us, from.max_us);
  for (const auto& [code, n] : from.codes) into.codes[code] += n;
}

/// One line of a report: a command, or the total of all commands.
struct row {
  std::string command;
  std::uint64_t requests = 0;  ///< answered in the window, rightly or not
  std::uint64_t ok = 0;
  std::uint64_t wrong = 0;
  std::uint64_t connection_errors = 0;
  std::uint64_t errors = 0;  ///< ERR replies + wrong replies + lost connections
  error_counts codes;
  double seconds = 0;
  double rps = 0;
  double mb_per_s = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, p9999 = 0, max = 0;
};

row make_row(std::string name, const command_stats& s, std::uint64_t connection_errors,
             double seconds, double payload_bytes) {
  row r;
  r.command = std::move(name);
  r.ok = s.ok;
  r.wrong = s.wrong;
  r.codes = s.codes;
  r.connection_errors = connection_errors;
  std::uint64_t coded = 0;
  for (const auto& [code, n] : s.codes) coded += n;
  r.requests = s.ok + s.wrong + coded;
  r.errors = s.wrong + coded + connection_errors;
  r.seconds = seconds;
  r.rps = seconds > 0 ? static_cast<double>(r.requests) / seconds : 0;
  r.mb_per_s = seconds > 0 ? payload_bytes / seconds / 1e6 : 0;
  r.max = s.max_us;
  r.p50 = quantile_us(s.latency, 0.50, s.max_us);
  r.p90 = quantile_us(s.latency, 0.90, s.max_us);
  r.p99 = quantile_us(s.latency, 0.99, s.max_us);
  r.p999 = quantile_us(s.latency, 0.999, s.max_us);
  r.p9999 = quantile_us(s.latency, 0.9999, s.max_us);
  return r;
}

/// The rows of one measured window (a rate step), or of the whole run.
struct window_report {
  double target_rps = 0;  ///< 0: closed loop
  std::vector<row> commands;
  row total;
};

/// Sums `windows` of every thread; `outside` adds the connections lost while warming up.
window_report summarize(const load& l, const std::vector<workload>& work,
                        const std::vector<std::size_t>& windows, double seconds, double target,
                        bool outside) {
  std::vector<command_stats> per_command(work.size());
  std::uint64_t lost = 0;
  for (const auto& t : l.stats()) {
    for (std::size_t w : windows) {
      for (std::size_t c = 0; c < work.size(); ++c) add(per_command[c], t->windows[w].commands[c]);
      lost += t->windows[w].connection_errors;
    }
    if (outside) lost += t->connection_errors_outside;
  }
  window_report report;
  report.target_rps = target;
  command_stats all;
  double all_bytes = 0;
  for (std::size_t c = 0; c < work.size(); ++c) {
    const command_stats& s = per_command[c];
    const std::uint64_t answered =
        report.commands.emplace_back(make_row(work[c].name, s, 0, seconds, 0)).requests;
    const double bytes = static_cast<double>(answered) * static_cast<double>(work[c].payload_size);
    report.commands.back().mb_per_s = seconds > 0 ? bytes / seconds / 1e6 : 0;
    add(all, s);
    all_bytes += bytes;
  }
  report.total = make_row("total", all, lost, seconds, all_bytes);
  return report;
}

std::string first_error(const load& l) {
  for (const auto& t : l.stats()) {
    if (!t->first_error.empty()) return t->first_error;
  }
  return {};
}

// ---- output

std::string describe_load(const cli_options& o, const std::vector<workload>& work) {
  std::string what;
  if (o.raw_echo) {
    what = fmt::format("raw echo {} B", work.front().payload_size);
  } else if (!o.raw.empty()) {
    what = fmt::format("raw '{}'", o.raw);
  } else if (!o.mix.empty()) {
    what = fmt::format("mix {}", o.mix);
  } else {
    what = fmt::format("{}{} {} B", o.command, o.enc == wire::encoding::json ? " json" : "",
                       work.front().payload_size);
  }
  std::string mode = "closed loop";
  if (o.rate > 0) mode = fmt::format("open loop at {:.0f} req/s", o.rate);
  if (!o.rate_steps.empty()) mode = fmt::format("open loop, rate steps {}", o.rate_steps);
  return fmt::format("{} to {}, {} conns x depth {}, {} thread{}, {}", what, o.connect, o.conns,
                     o.depth, o.threads, o.threads == 1 ? "" : "s", mode);
}

std::string codes_text(const row& r, std::string_view sep) {
  std::string out;
  for (const auto& [code, n] : r.codes) {
    out += fmt::format("{}{}={}", out.empty() ? "" : sep, code, n);
  }
  return out;
}

/// Text: redis-benchmark-like lines for one command and one window, else a table.
class text_report {
 public:
  text_report(const cli_options& o, bool table) : steps_(!o.rate_steps.empty()), table_(table) {}

  void header(const std::string& what) {
    fmt::print("{}\n", what);
    if (!table_) return;
    fmt::print("  {}{:<12} {:>10} {:>7} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  (us)\n",
               steps_ ? fmt::format("{:>12} ", "target req/s") : "", "command", "requests",
               "errors", "req/s", "p50", "p90", "p99", "p99.9", "p99.99", "max");
  }

  void window(const window_report& w, bool per_command) {
    if (!table_) return;
    if (per_command) {
      for (const auto& r : w.commands) line(w, r);
    }
    line(w, w.total);
    std::fflush(stdout);
  }

  void end(const window_report& all, const std::string& first) {
    const row& t = all.total;
    if (!table_) {
      fmt::print("  requests  {} in {:.2f} s: {:.0f} req/s, {:.2f} MB/s, {} errors\n", t.requests,
                 t.seconds, t.rps, t.mb_per_s, t.errors);
      fmt::print(
          "  latency   p50 {:.1f} us  p90 {:.1f} us  p99 {:.1f} us  p99.9 {:.1f} us  p99.99 "
          "{:.1f} us  max {:.1f} us\n",
          t.p50, t.p90, t.p99, t.p999, t.p9999, t.max);
    } else if (steps_) {
      fmt::print("  all steps {} requests in {:.2f} s, {} errors\n", t.requests, t.seconds,
                 t.errors);
    }
    if (t.errors > 0) {
      std::string codes = codes_text(t, "  ");
      fmt::print("  errors    {}{}wrong reply {}  connection {}\n", codes,
                 codes.empty() ? "" : "  ", t.wrong, t.connection_errors);
    }
    if (!first.empty()) fmt::print("  first error: {}\n", first);
  }

 private:
  void line(const window_report& w, const row& r) {
    fmt::print(
        "  {}{:<12} {:>10} {:>7} {:>10.0f} {:>8.1f} {:>8.1f} {:>8.1f} {:>8.1f} {:>8.1f} "
        "{:>8.1f}\n",
        steps_ ? fmt::format("{:>12.0f} ", w.target_rps) : "", r.command, r.requests, r.errors,
        r.rps, r.p50, r.p90, r.p99, r.p999, r.p9999, r.max);
  }

  bool steps_;
  bool table_;
};

/// CSV: one header line, then one row per command and a `total` row per window (step).
void print_csv_header() {
  fmt::print(
      "step,target_rps,command,requests,ok,errors,wrong_replies,connection_errors,error_codes,"
      "seconds,rps,mb_per_s,p50_us,p90_us,p99_us,p999_us,p9999_us,max_us\n");
}

void print_csv_window(std::size_t step, const window_report& w) {
  const auto line = [&](const row& r) {
    std::string codes = codes_text(r, " ");
    for (char& c : codes) {
      if (c == ',' || c == '"' || c == '\n') c = '_';  // a code is one token; keep the CSV plain
    }
    fmt::print(
        "{},{:.0f},{},{},{},{},{},{},{},{:.3f},{:.1f},{:.3f},{:.1f},{:.1f},{:.1f},{:.1f},"
        "{:.1f},{:.1f}\n",
        step, w.target_rps, r.command, r.requests, r.ok, r.errors, r.wrong, r.connection_errors,
        codes, r.seconds, r.rps, r.mb_per_s, r.p50, r.p90, r.p99, r.p999, r.p9999, r.max);
  };
  for (const auto& r : w.commands) line(r);
  line(w.total);
  std::fflush(stdout);
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out += c;
        }
    }
  }
  return out + '"';
}

/// `"key": value` members of a row (no braces); `"key": value` with a space, one object per
/// line, as bench/run.sh greps them.
std::string json_row(const row& r) {
  std::string codes;
  for (const auto& [code, n] : r.codes) {
    codes += fmt::format("{}{}: {}", codes.empty() ? "" : ", ", json_string(code), n);
  }
  return fmt::format(
      "\"requests\": {}, \"replies\": {}, \"ok\": {}, \"errors\": {}, \"wrong_replies\": {}, "
      "\"connection_errors\": {}, \"error_codes\": {{{}}}, \"seconds\": {:.3f}, \"rps\": {:.1f}, "
      "\"mb_per_s\": {:.3f}, \"p50_us\": {:.1f}, \"p90_us\": {:.1f}, \"p99_us\": {:.1f}, "
      "\"p999_us\": {:.1f}, \"p9999_us\": {:.1f}, \"max_us\": {:.1f}",
      r.requests, r.requests, r.ok, r.errors, r.wrong, r.connection_errors, codes, r.seconds, r.rps,
      r.mb_per_s, r.p50, r.p90, r.p99, r.p999, r.p9999, r.max);
}

std::string json_commands(const window_report& w) {
  std::string out;
  for (const auto& r : w.commands) {
    out += fmt::format("{}{{\"command\": {}, {}}}", out.empty() ? "" : ", ", json_string(r.command),
                       json_row(r));
  }
  return "[" + out + "]";
}

void print_json(const cli_options& o, const std::vector<workload>& work, const window_report& all,
                const std::vector<window_report>& steps, std::uint64_t replies_with_warmup,
                const std::string& first) {
  const std::string target = o.raw_echo       ? "raw-echo"
                             : !o.raw.empty() ? "raw"
                             : !o.mix.empty() ? o.mix
                                              : o.command;
  std::string out = fmt::format(
      "{{\"command\": {}, \"mode\": \"{}\", \"connect\": {}, \"conns\": {}, \"depth\": {}, "
      "\"threads\": {}, \"payload_size\": {}, \"rate\": {:.1f}, {}, \"replies_with_warmup\": {}, "
      "\"first_error\": {}, \"commands\": {}",
      json_string(target), o.rate > 0 || !o.rate_steps.empty() ? "open" : "closed",
      json_string(o.connect), o.conns, o.depth, o.threads, work.front().payload_size, o.rate,
      json_row(all.total), replies_with_warmup, json_string(first), json_commands(all));
  if (!o.rate_steps.empty()) {
    std::string list;
    for (std::size_t i = 0; i < steps.size(); ++i) {
      list += fmt::format("{}{{\"step\": {}, \"target_rps\": {:.1f}, {}, \"commands\": {}}}",
                          i == 0 ? "" : ", ", i + 1, steps[i].target_rps, json_row(steps[i].total),
                          json_commands(steps[i]));
    }
    out += fmt::format(", \"steps\": [{}]", list);
  }
  fmt::print("{}}}\n", out);
}

/// The `\r` line on stderr while the load runs: elapsed time, req/s in the window so far,
/// replies and errors. Only on a terminal; `clear()` erases it before a report line.
class progress_line {
 public:
  explicit progress_line(const load& l) : load_(l), on_(::isatty(STDERR_FILENO) != 0) {}

  /// Sleeps until `until`, redrawing the line every progress_period with `label` in front.
  void wait(clock::time_point until, const std::string& label) {
    if (!on_) {
      std::this_thread::sleep_until(until);
      return;
    }
    const auto from = clock::now();
    const std::uint64_t base = load_.live_replies();
    while (clock::now() < until) {
      std::this_thread::sleep_until(std::min(until, clock::now() + progress_period));
      const double elapsed = std::chrono::duration<double>(clock::now() - from).count();
      const std::uint64_t replies = load_.live_replies();
      fmt::print(stderr, "\r{}  {:6.2f} s  {:>10.0f} req/s  {:>11} replies  {} errors   ", label,
                 elapsed, elapsed > 0 ? static_cast<double>(replies - base) / elapsed : 0.0,
                 replies, load_.live_errors());
      std::fflush(stderr);
      drawn_ = true;
    }
  }

  void clear() {
    if (!drawn_) return;
    fmt::print(stderr, "\r{:100}\r", "");
    std::fflush(stderr);
    drawn_ = false;
  }

 private:
  const load& load_;
  const bool on_;
  bool drawn_ = false;
};

// ---- the run

result<asio::generic::stream_protocol::endpoint> resolve(const std::string& where, bool& usage) {
  // In place: a generic endpoint converts from anything, so a bare error would be ambiguous.
  using target = result<asio::generic::stream_protocol::endpoint>;
  auto addr = parse_address(where);
  usage = !addr;
  if (!addr) return target(boost::system::in_place_error, addr.error());
  if (addr->is_unix()) return asio::local::stream_protocol::endpoint(addr->unix_path);
  const host_port* hp = &addr->tcp;
  asio::io_context ctx;
  asio::ip::tcp::resolver resolver(ctx);
  boost::system::error_code ec;
  auto results = resolver.resolve(hp->host, std::to_string(hp->port), ec);
  if (ec || results.empty()) {
    return target(boost::system::in_place_error, make_error_code(errc::bad_address),
                  fmt::format("cannot connect to {}: {}", where, ec ? ec.message() : "no address"));
  }
  return results.begin()->endpoint();
}

/// The workloads and the weights of the mix (one workload, weight 1, without --mix).
result<std::vector<workload>> make_workloads(const cli_options& o, std::vector<unsigned>& weights) {
  std::vector<workload> work;
  if (o.raw_echo) {
    work.push_back(make_echo_workload(o.payload_size));
  } else if (!o.raw.empty()) {
    auto w = make_raw_workload(o.raw, o.expect);
    if (!w) return w.error();
    work.push_back(std::move(*w));
  } else {
    std::vector<mix_entry> mix{{o.command, 1}};
    if (!o.mix.empty()) {
      auto parsed = parse_mix(o.mix);
      if (!parsed) return parsed.error();
      mix = std::move(*parsed);
    }
    for (const auto& m : mix) {
      auto w = make_command_workload(m.command, o.enc, o.payload_size, o.shape);
      if (!w) return w.error();
      work.push_back(std::move(*w));
    }
    for (const auto& m : mix) weights.push_back(m.weight);
  }
  if (weights.empty()) weights.push_back(1);
  return work;
}

clock::duration seconds(double s) {
  return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s));
}

int run(const cli_options& o) {
  std::vector<unsigned> weights;
  auto work = make_workloads(o, weights);
  if (!work) {
    fmt::print(stderr, "cmdwire-bench: {}\n", work.error().message);
    return 2;
  }
  std::vector<double> rates;
  if (o.rate > 0) rates.push_back(o.rate);
  if (!o.rate_steps.empty()) {
    auto steps = parse_rate_steps(o.rate_steps);
    if (!steps) {
      fmt::print(stderr, "cmdwire-bench: {}\n", steps.error().message);
      return 2;
    }
    rates = std::move(*steps);
  }
  bool usage = false;
  auto target = resolve(o.connect, usage);
  if (!target) {
    fmt::print(stderr, "cmdwire-bench: {}\n", target.error().message);
    return usage ? 2 : 3;
  }
  const std::vector<std::uint16_t> cycle = weighted_cycle(weights);
  std::atomic<int> window{warmup_window};
  load_options lo{*target, o.conns, o.depth, o.threads, o.idle, rates};
  load l(*work, cycle, lo, window);
  l.start();
  if (auto failed = l.wait_ready(clock::now() + connect_timeout)) {
    window = stop_window;
    l.stop_and_join();
    if (failed->what == start_error::kind::hello) {
      fmt::print(stderr, "cmdwire-bench: {}: {} (HELLO ooo)\n", o.connect, failed->detail);
      return 1;
    }
    fmt::print(stderr, "cmdwire-bench: cannot connect to {}: {}\n", o.connect, failed->detail);
    return 3;
  }
  const auto start = clock::now();
  l.begin(start);

  if (o.idle) {
    // Wait until every connection has had its one reply, then hold them open silently.
    const auto give_up = start + seconds(o.warmup + 30);
    while (l.live_replies() < o.conns && clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    fmt::print("idle: {} of {} connections answered\n", l.live_replies(), o.conns);
    std::fflush(stdout);
    std::this_thread::sleep_for(seconds(o.duration));
    window = stop_window;
    l.stop_and_join();
    return l.live_replies() == o.conns ? 0 : 1;
  }

  const std::size_t windows = std::max<std::size_t>(1, rates.size());
  const bool per_command = work->size() > 1;
  text_report text(o, per_command || windows > 1);
  if (o.csv) {
    print_csv_header();
  } else if (!o.json) {
    text.header(describe_load(o, *work));
  }
  progress_line progress(l);
  progress.wait(start + seconds(o.warmup), "warm-up");
  std::vector<window_report> steps;
  std::vector<std::size_t> all;
  double total_seconds = 0;
  for (std::size_t i = 0; i < windows; ++i) {
    window = static_cast<int>(i);
    const auto from = clock::now();
    const double target_rps = rates.empty() ? 0 : rates[i];
    progress.wait(from + seconds(o.duration),
                  windows > 1
                      ? fmt::format("step {}/{} at {:.0f} req/s", i + 1, windows, target_rps)
                      : std::string("running"));
    const bool last = i + 1 == windows;
    window = last ? stop_window : static_cast<int>(i + 1);
    const double secs = std::chrono::duration<double>(clock::now() - from).count();
    total_seconds += secs;
    if (last) {
      l.stop_and_join();
    } else {
      l.sync();  // window i is finished on every thread: read it while the next one runs
    }
    all.push_back(i);
    steps.push_back(summarize(l, *work, {i}, secs, target_rps, false));
    progress.clear();
    if (o.csv) {
      print_csv_window(i + 1, steps.back());
    } else if (!o.json) {
      text.window(steps.back(), per_command);
    }
  }
  progress.clear();

  const window_report total =
      summarize(l, *work, all, total_seconds, rates.size() == 1 ? rates.front() : 0, true);
  const std::string first = first_error(l);
  if (o.json) {
    print_json(o, *work, total, steps, l.live_replies(), first);
  } else if (o.csv) {
    if (!first.empty()) fmt::print(stderr, "cmdwire-bench: first error: {}\n", first);
  } else {
    text.end(total, first);
  }
  return total.total.errors == 0 && total.total.requests > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "cmdwire-bench: load generator for cmdwire (and raw-byte) servers: closed loop (conns x "
      "depth) by default, open loop with --rate (latency from the intended send time, so a "
      "slow server cannot hide its queueing), weighted command mixes, verified replies, errors "
      "by ERR code, text/CSV/JSON reports.\n"
      "Exit: 0 all replies verified, 1 errors (or nothing measured), 2 usage, 3 cannot connect.\n"
      "Examples:\n"
      "  cmdwire-bench --connect 127.0.0.1:61000 --command ECHO --payload-size 16 --conns 16 "
      "--depth 32\n"
      "  cmdwire-bench --command PING --conns 16 --depth 32 --rate 200000\n"
      "  cmdwire-bench --mix PING:8,STRUCT:2 --rate-steps 50000:250000:50000 --duration 2 --csv\n"
      "  cmdwire-bench --connect 127.0.0.1:7000 --raw-echo --payload-size 65536\n"
      "  cmdwire-bench --connect 127.0.0.1:6379 --raw 'PING\\r\\n' --expect '+PONG\\r\\n'"};
  cli_options o;
  app.add_option("--connect", o.connect, "HOST:PORT or unix:PATH of the server")
      ->capture_default_str();
  auto* command = app.add_option("--command", o.command,
                                 "ECHO, PING, STRUCT, PROTO, STRING (replies checked exactly) or "
                                 "any other command (any OK reply counts)")
                      ->capture_default_str();
  auto* mix = app.add_option(
      "--mix", o.mix,
      "several commands, COMMAND[:WEIGHT],... e.g. PING:8,STRUCT:2: each connection sends them "
      "in a fixed weighted round-robin order; reports get a row per command and a total");
  mix->excludes(command);
  app.add_option("--payload-size", o.payload_size,
                 "body bytes (ECHO, raw echo, other commands); STRUCT/PROTO send the smallest "
                 "demo chain of at least this size")
      ->capture_default_str();
  app.add_option("--conns", o.conns, "connections")
      ->check(CLI::Range(1u, 1000000u))
      ->capture_default_str();
  app.add_option("--depth", o.depth,
                 "requests in flight per connection (pipelined); with --rate, the most in "
                 "flight: requests due beyond it wait, their latency counted from when they were "
                 "due")
      ->check(CLI::Range(1u, 65536u))
      ->capture_default_str();
  app.add_option("--threads", o.threads, "load threads, one io_context each")
      ->check(CLI::Range(1u, 1024u))
      ->capture_default_str();
  auto* rate = app.add_option(
      "--rate", o.rate,
      "open loop: total requests/s, spread evenly over the connections, each on a fixed "
      "schedule; latency is measured from each request's intended send time (coordinated "
      "omission corrected, as wrk2)");
  rate->check(CLI::PositiveNumber);
  auto* rate_steps = app.add_option(
      "--rate-steps", o.rate_steps,
      "open loop at several rates, each for --duration, one report row per step: A,B,C or "
      "START:STOP:STEP (req/s, STOP included, e.g. 10000:100000:10000); the warm-up runs at "
      "the first");
  rate_steps->excludes(rate);
  app.add_option("--duration", o.duration,
                 "seconds measured (per step with --rate-steps; idle mode: seconds held open)")
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
  mix->excludes(raw)->excludes(raw_echo);
  auto* hello = app.add_flag(
      "--hello", o.shape.hello,
      "negotiate out-of-order replies (HELLO ooo) on every connection; requests carry id=");
  hello->excludes(raw_echo)->excludes(raw)->excludes(mix);
  app.add_option("--mix-sleep", o.shape.mix_sleep_ms,
                 "keep one 'SLEEP MS' in flight per connection among the --depth requests; "
                 "latency is the other requests'")
      ->check(CLI::Range(1u, 600000u))
      ->excludes(raw_echo)
      ->excludes(raw)
      ->excludes(mix);
  auto* json = app.add_flag("--json", o.json,
                            "print one JSON object at the end: totals of the measured window(s), "
                            "\"commands\" and, with --rate-steps, \"steps\"");
  auto* csv =
      app.add_flag("--csv", o.csv,
                   "print CSV: a header line, then per step one row per command and a 'total' row");
  csv->excludes(json);
  app.add_flag("--idle", o.idle,
               "open --conns connections, one request each, then hold them silent for "
               "--duration seconds (memory measurements)")
      ->excludes(rate)
      ->excludes(rate_steps)
      ->excludes(mix);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // usage errors exit 2, as in every cmdwire binary
  }
  o.enc = enc_name == "json" ? wire::encoding::json : wire::encoding::bin;
  return run(o);
}
