// What cmdwire-bench sends and what it must get back: one request frame and the reply that
// proves the server did its job, built once before the load starts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cmdwire/error.hpp"
#include "cmdwire/wire.hpp"

namespace cmdwire::bench {

/// How replies are delimited and checked.
enum class framing {
  cmdwire,       ///< `OK LENGTH\nBODY\n` frames, parsed with wire::parse_reply.
  cmdwire_line,  ///< line commands (STRING): one bare line back, parsed with parse_line_reply.
  raw,           ///< any protocol: the reply is exactly `expected`, byte for byte.
};

struct workload {
  std::string name;  ///< the command, or "raw" / "raw-echo": how reports name this workload
  framing kind = framing::cmdwire;
  std::string request;     ///< one whole request frame, sent as is.
  std::string expected;    ///< cmdwire: the reply body; raw: the whole reply.
  bool check_body = true;  ///< false: any OK reply counts (commands we know nothing about).
  /// The whole reply frame when it is known in advance (check_body): matching it byte for
  /// byte verifies a reply without parsing it; anything else goes through the parser.
  std::string expected_frame;
  std::size_t payload_size = 0;  ///< body bytes of one request (for MB/s).
  wire::limits limits;           ///< reply limits; max_body covers what the command can answer.
  /// Sent first on every connection, whose reply must grant out-of-order replies (--hello).
  std::string hello;
  /// --mix-sleep: one request in each connection's window is this SLEEP, whose reply (this
  /// frame) may come out of order; only the other requests' latency is recorded.
  std::string sleep_request;
  std::string sleep_reply_frame;
};

struct workload_options {
  /// Negotiate out-of-order replies (HELLO ooo); framed requests then carry `id=`.
  bool hello = false;
  /// Keep one `SLEEP ms` in flight per connection among the other requests (0: none).
  unsigned mix_sleep_ms = 0;
};

/// Builds the frame for a cmdwire command. ECHO, PING, STRUCT, PROTO and STRING replies are
/// verified exactly; any other command sends `payload_size` bytes and accepts any OK reply.
/// STRUCT and PROTO send a demo chain just deep enough to reach `payload_size` bytes.
[[nodiscard]] result<workload> make_command_workload(std::string_view command, wire::encoding enc,
                                                     std::size_t payload_size,
                                                     const workload_options& options = {});

/// `--raw-echo`: `payload_size` bytes that must come back unchanged.
[[nodiscard]] workload make_echo_workload(std::size_t payload_size);

/// `--raw REQUEST --expect REPLY`, both with C escapes (\r \n \t \0 \\ \" \xHH).
[[nodiscard]] result<workload> make_raw_workload(std::string_view request, std::string_view expect);

/// One command of `--mix` and its share of the requests.
struct mix_entry {
  std::string command;
  unsigned weight = 1;
};

/// Parses `--mix PING:8,STRUCT:2`: comma-separated `COMMAND[:WEIGHT]`, weight 1..1000 (1 when
/// absent), each command once.
[[nodiscard]] result<std::vector<mix_entry>> parse_mix(std::string_view text);

/// The order in which a mix's commands are sent: one cycle of sum(weights) indices into
/// `weights`, index i appearing weights[i] times and spread evenly (smooth weighted round
/// robin, as nginx balances upstreams). Deterministic: the same weights give the same cycle.
[[nodiscard]] std::vector<std::uint16_t> weighted_cycle(const std::vector<unsigned>& weights);

/// Decodes C escapes; fails on a dangling backslash or a bad \x sequence.
[[nodiscard]] result<std::string> unescape(std::string_view text);

}  // namespace cmdwire::bench
