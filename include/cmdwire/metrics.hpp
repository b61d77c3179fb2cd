// What an endpoint has counted since it started (connections, bytes, and per command: calls,
// errors and latency), and its two renderings: STATS's JSON and Prometheus's text format.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cmdwire {

/// One command's totals over all workers.
struct command_report {
  std::string name;
  std::uint64_t calls = 0;
  /// Error replies by wire code ("bad-body"); codes with none are left out.
  std::map<std::string, std::uint64_t, std::less<>> errors;
  /// Latency, from the request's parse to its reply being queued: how many calls fell into
  /// each bucket, bucket `i` ending at `latency_bucket_upper_seconds(i)`; the last is the
  /// overflow.
  std::vector<std::uint64_t> latency_buckets;
  double latency_sum_seconds = 0;
  double latency_max_seconds = 0;
  /// Upper edges of the buckets that p50, p90 and p99 fall into, but at most the maximum (0
  /// without calls): at most 25% above the true quantile.
  double p50_seconds = 0;
  double p90_seconds = 0;
  double p99_seconds = 0;
};

struct endpoint_report {
  std::string version;  ///< the library's, e.g. "0.1.0"
  double uptime_seconds = 0;
  bool draining = false;
  std::uint64_t connections = 0;  ///< open now
  std::uint64_t accepted = 0;
  std::uint64_t rejected = 0;   ///< refused with `ERR busy` at the connection limit
  std::uint64_t timed_out = 0;  ///< closed by an idle, request or write timeout
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t unknown_commands = 0;
  std::uint64_t protocol_errors = 0;     ///< malformed or oversized requests
  std::vector<command_report> commands;  ///< sorted by name; built-ins included
  /// The Redis pub/sub backplane, when the endpoint has one (endpoint_options::pubsub_redis).
  struct backplane_report {
    /// "connecting", "ready" (connected, every local topic subscribed in Redis) or "down".
    std::string state;
    std::uint64_t connects = 0;        ///< successful (re)connections of either link
    std::uint64_t published = 0;       ///< publishes Redis accepted
    std::uint64_t publish_errors = 0;  ///< publishes that did not reach Redis
    std::uint64_t received = 0;        ///< messages from other instances delivered here
  };
  std::optional<backplane_report> backplane;
  /// The limits a client must respect (endpoint_options), as STATS reports them; empty in
  /// endpoint::report(), filled by the STATS command.
  struct limits_report {
    std::uint64_t max_line = 0;         ///< limits.max_line: request line or line body, LF included
    std::uint64_t max_body = 0;         ///< limits.max_body: largest LENGTH
    std::uint64_t max_depth = 0;        ///< decode.max_depth: nesting of a typed body
    std::uint64_t max_pipelined = 0;    ///< requests answered per read before writing
    std::uint64_t max_concurrent = 0;   ///< calls running at once on an out-of-order connection
    std::uint64_t idle_timeout_ms = 0;  ///< a connection idle this long is closed
    std::uint64_t request_timeout_ms = 0;  ///< a request must arrive whole within this
  };
  std::optional<limits_report> limits;
};

/// Where latency bucket `i` of command_report::latency_buckets ends, in seconds; +inf for the
/// last (overflow) bucket.
[[nodiscard]] double latency_bucket_upper_seconds(std::size_t i) noexcept;

/// STATS's body (PROTOCOL.md §11): one JSON object, latencies in microseconds.
[[nodiscard]] std::string to_json(const endpoint_report& report);
/// The Prometheus text exposition format (version 0.0.4) of the same figures.
[[nodiscard]] std::string to_prometheus(const endpoint_report& report);

}  // namespace cmdwire
