// Merging per-worker counters into a report, and rendering a report as STATS's JSON and as
// Prometheus's text exposition format.
#include "metrics.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "cmdwire/detail/rapidjson.hpp"
namespace rj = cmdwire::detail::rj;

namespace cmdwire {

double latency_bucket_upper_seconds(std::size_t i) noexcept {
  if (i >= static_cast<std::size_t>(detail::latency_buckets::count)) {
    return std::numeric_limits<double>::infinity();
  }
  return static_cast<double>(detail::latency_buckets::upper_ns(static_cast<int>(i))) * 1e-9;
}

namespace detail {

void add_counters(const command_counters& from, command_report& into) {
  into.calls += from.calls.get();
  for (std::size_t code = 0; code < from.errors.size(); ++code) {
    if (const auto n = from.errors[code].get(); n > 0) {
      const auto name = wire_name(static_cast<errc>(code));
      into.errors[std::string(name.empty() ? "internal" : name)] += n;
    }
  }
  into.latency_buckets.resize(latency_buckets::count + 1);
  for (auto&& cell : boost::histogram::indexed(from.latency)) {
    const int i = cell.index();
    if (i < 0) continue;  // underflow: no latency is negative
    into.latency_buckets[static_cast<std::size_t>(std::min(i, latency_buckets::count))] +=
        cell->get();
  }
  into.latency_sum_seconds += static_cast<double>(from.latency_sum_ns.get()) * 1e-9;
  into.latency_max_seconds =
      std::max(into.latency_max_seconds, static_cast<double>(from.latency_max_ns.get()) * 1e-9);
}

double latency_quantile(const std::vector<std::uint64_t>& buckets, double p) {
  std::uint64_t total = 0;
  for (const auto n : buckets) total += n;
  if (total == 0) return 0;
  // The rank of the p-quantile, 1-based: p50 of 4 calls is the 2nd, p99 of 100 the 99th.
  const auto rank = static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(total)));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    seen += buckets[i];
    if (seen >= std::max<std::uint64_t>(rank, 1)) return latency_bucket_upper_seconds(i);
  }
  return latency_bucket_upper_seconds(buckets.size() - 1);
}

}  // namespace detail

namespace {

void key_uint(rj::Writer<rj::StringBuffer>& w, const char* key, std::uint64_t v) {
  w.Key(key);
  w.Uint64(v);
}

double micros(double seconds) { return std::round(seconds * 1e7) / 10; }  // 0.1 µs steps

}  // namespace

std::string to_json(const endpoint_report& r) {
  rj::StringBuffer out;
  rj::Writer<rj::StringBuffer> w(out);
  w.StartObject();
  w.Key("version");
  w.String(r.version.c_str(), static_cast<rj::SizeType>(r.version.size()));
  w.Key("uptime_seconds");
  w.Double(std::round(r.uptime_seconds * 1000) / 1000);
  w.Key("draining");
  w.Bool(r.draining);
  key_uint(w, "connections", r.connections);
  key_uint(w, "accepted", r.accepted);
  key_uint(w, "rejected", r.rejected);
  key_uint(w, "timed_out", r.timed_out);
  key_uint(w, "bytes_in", r.bytes_in);
  key_uint(w, "bytes_out", r.bytes_out);
  key_uint(w, "unknown_commands", r.unknown_commands);
  key_uint(w, "protocol_errors", r.protocol_errors);
  if (r.backplane) {
    const auto& b = *r.backplane;
    w.Key("backplane");
    w.StartObject();
    w.Key("state");
    w.String(b.state.c_str(), static_cast<rj::SizeType>(b.state.size()));
    key_uint(w, "connects", b.connects);
    key_uint(w, "published", b.published);
    key_uint(w, "publish_errors", b.publish_errors);
    key_uint(w, "received", b.received);
    w.EndObject();
  }
  if (r.limits) {
    const auto& l = *r.limits;
    w.Key("limits");
    w.StartObject();
    key_uint(w, "max_line", l.max_line);
    key_uint(w, "max_body", l.max_body);
    key_uint(w, "max_depth", l.max_depth);
    key_uint(w, "max_pipelined", l.max_pipelined);
    key_uint(w, "max_concurrent", l.max_concurrent);
    key_uint(w, "idle_timeout_ms", l.idle_timeout_ms);
    key_uint(w, "request_timeout_ms", l.request_timeout_ms);
    w.EndObject();
  }
  w.Key("commands");
  w.StartObject();
  for (const command_report& c : r.commands) {
    w.Key(c.name.c_str(), static_cast<rj::SizeType>(c.name.size()));
    w.StartObject();
    key_uint(w, "calls", c.calls);
    w.Key("errors");
    w.StartObject();
    for (const auto& [code, n] : c.errors) {
      w.Key(code.c_str(), static_cast<rj::SizeType>(code.size()));
      w.Uint64(n);
    }
    w.EndObject();
    w.Key("latency_us");
    w.StartObject();
    w.Key("p50");
    w.Double(micros(c.p50_seconds));
    w.Key("p90");
    w.Double(micros(c.p90_seconds));
    w.Key("p99");
    w.Double(micros(c.p99_seconds));
    w.Key("max");
    w.Double(micros(c.latency_max_seconds));
    w.EndObject();
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return {out.GetString(), out.GetSize()};
}

namespace {

/// A label value, escaped as the exposition format wants: backslash, quote and newline.
std::string label(std::string_view v) {
  std::string s;
  s.reserve(v.size());
  for (const char ch : v) {
    if (ch == '\\' || ch == '"') {
      s += '\\';
      s += ch;
    } else if (ch == '\n') {
      s += "\\n";
    } else {
      s += ch;
    }
  }
  return s;
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string to_prometheus(const endpoint_report& r) {
  std::string out;
  auto line = [&out](std::string_view name, auto value) {
    fmt::format_to(std::back_inserter(out), "{} {}\n", name, value);
  };
  family(out, "cmdwire_build_info", "gauge", "The library version, as a label.");
  fmt::format_to(std::back_inserter(out), "cmdwire_build_info{{version=\"{}\"}} 1\n",
                 label(r.version));
  family(out, "cmdwire_uptime_seconds", "gauge", "Seconds since the endpoint started.");
  line("cmdwire_uptime_seconds", r.uptime_seconds);
  family(out, "cmdwire_draining", "gauge", "1 once stop has begun (HEALTH says DRAINING).");
  line("cmdwire_draining", r.draining ? 1 : 0);
  family(out, "cmdwire_connections", "gauge", "Open connections.");
  line("cmdwire_connections", r.connections);
  const std::pair<const char*, std::uint64_t> counters[] = {
      {"cmdwire_connections_accepted_total", r.accepted},
      {"cmdwire_connections_rejected_total", r.rejected},
      {"cmdwire_connections_timed_out_total", r.timed_out},
      {"cmdwire_received_bytes_total", r.bytes_in},
      {"cmdwire_sent_bytes_total", r.bytes_out},
      {"cmdwire_unknown_commands_total", r.unknown_commands},
      {"cmdwire_protocol_errors_total", r.protocol_errors},
  };
  const char* helps[] = {
      "Connections accepted.",
      "Connections refused with ERR busy at the connection limit.",
      "Connections closed by an idle, request or write timeout.",
      "Bytes read from clients.",
      "Bytes written to clients.",
      "Requests for a command with no handler.",
      "Requests refused as malformed or over a limit.",
  };
  for (std::size_t i = 0; i < std::size(counters); ++i) {
    family(out, counters[i].first, "counter", helps[i]);
    line(counters[i].first, counters[i].second);
  }

  if (r.backplane) {
    const auto& b = *r.backplane;
    family(out, "cmdwire_backplane_ready", "gauge",
           "1 when the Redis pub/sub backplane is connected with every local topic subscribed.");
    line("cmdwire_backplane_ready", b.state == "ready" ? 1 : 0);
    const std::pair<const char*, std::uint64_t> bp[] = {
        {"cmdwire_backplane_connects_total", b.connects},
        {"cmdwire_backplane_published_total", b.published},
        {"cmdwire_backplane_publish_errors_total", b.publish_errors},
        {"cmdwire_backplane_received_total", b.received},
    };
    const char* bp_helps[] = {
        "Connections (and reconnections) to the Redis backplane.",
        "Publishes Redis accepted for the other instances.",
        "Publishes that reached this instance's subscribers only.",
        "Messages from other instances delivered here.",
    };
    for (std::size_t i = 0; i < std::size(bp); ++i) {
      family(out, bp[i].first, "counter", bp_helps[i]);
      line(bp[i].first, bp[i].second);
    }
  }
  family(out, "cmdwire_calls_total", "counter", "Requests answered, by command.");
  for (const auto& c : r.commands) {
    fmt::format_to(std::back_inserter(out), "cmdwire_calls_total{{command=\"{}\"}} {}\n",
                   label(c.name), c.calls);
  }
  family(out, "cmdwire_errors_total", "counter", "Error replies, by command and code.");
  for (const auto& c : r.commands) {
    for (const auto& [code, n] : c.errors) {
      fmt::format_to(std::back_inserter(out),
                     "cmdwire_errors_total{{command=\"{}\",code=\"{}\"}} {}\n", label(c.name),
                     label(code), n);
    }
  }
  family(out, "cmdwire_call_duration_seconds", "histogram",
         "From a request's parse to its reply being queued, by command.");
  for (const auto& c : r.commands) {
    const std::string name = label(c.name);
    // Every fourth bucket edge (the powers of two of nanoseconds) from about 1 µs: the text
    // format repeats each edge per command, and finer edges stay in STATS.
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < c.latency_buckets.size(); ++i) {
      cumulative += c.latency_buckets[i];
      const bool last = i + 1 == c.latency_buckets.size();
      if (!last && (i % 4 != 3 || i < 4 * 8)) continue;
      if (last) {
        fmt::format_to(std::back_inserter(out),
                       "cmdwire_call_duration_seconds_bucket{{command=\"{}\",le=\"+Inf\"}} {}\n",
                       name, cumulative);
      } else {
        fmt::format_to(std::back_inserter(out),
                       "cmdwire_call_duration_seconds_bucket{{command=\"{}\",le=\"{}\"}} {}\n",
                       name, latency_bucket_upper_seconds(i), cumulative);
      }
    }
    fmt::format_to(std::back_inserter(out),
                   "cmdwire_call_duration_seconds_sum{{command=\"{}\"}} {}\n"
                   "cmdwire_call_duration_seconds_count{{command=\"{}\"}} {}\n",
                   name, c.latency_sum_seconds, name, c.calls);
  }
  return out;
}

}  // namespace cmdwire
