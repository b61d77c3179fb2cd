// The demo commands of cmdwire-server, shared by the server and the cmdwire CLI: the one
// definition of each command's name, request and response types.
#pragma once

#include <cereal/types/map.hpp>
#include <cereal/types/memory.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cmdwire/call_context.hpp"
#include "cmdwire/codec.hpp"
#include "proto/demo.pb.h"

namespace cmdwire::demo {

/// The original Go program's `complexData`: a recursive struct with a map, bytes and a child.
struct ComplexData {
  std::int64_t n = 0;
  std::string s;
  std::map<std::string, std::int32_t> m;
  std::vector<std::uint8_t> p;
  std::unique_ptr<ComplexData> c;  ///< child; null ends the chain.

  template <class Archive>
  void serialize(Archive& ar) {
    ar(cereal::make_nvp("n", n), cereal::make_nvp("s", s), cereal::make_nvp("m", m),
       cereal::make_nvp("p", p), cereal::make_nvp("c", c));
  }
};

/// What STRUCT and PROTO answer: the shape of the data that arrived.
struct Summary {
  std::uint32_t depth = 0;    ///< levels, the root included.
  std::uint64_t entries = 0;  ///< map entries over all levels.
  std::uint64_t bytes = 0;    ///< bytes of `p` over all levels.
  std::string names;          ///< every level's `s`, joined with '/'.

  template <class Archive>
  void serialize(Archive& ar) {
    ar(cereal::make_nvp("depth", depth), cereal::make_nvp("entries", entries),
       cereal::make_nvp("bytes", bytes), cereal::make_nvp("names", names));
  }
  friend bool operator==(const Summary&, const Summary&) = default;
};

/// Line command: `STRING\nAdditional data.\n` answers `Thank you.\n`.
struct String {
  static constexpr std::string_view name = "STRING";
  static constexpr std::string_view doc =
      "Line command: any one line; answers the line \"Thank you.\"";
  static constexpr bool line = true;
  using request = std::string;
  using response = std::string;
};

struct Struct {
  static constexpr std::string_view name = "STRUCT";
  static constexpr std::string_view doc =
      "A recursive ComplexData (cereal); answers its Summary: depth, map entries, bytes of p, and "
      "the s of each level joined with /";
  using request = ComplexData;
  using response = Summary;
  // ComplexData::serialize names every member, so a decoded request overwrites all of it.
  static constexpr bool reuse_request = true;
};

struct Proto {
  static constexpr std::string_view name = "PROTO";
  static constexpr std::string_view doc =
      "The same as STRUCT for the protobuf message cmdwire.demo.pb.Complex";
  using request = pb::Complex;
  using response = pb::Summary;
};

/// Body back unchanged. Views on the server side: no copy, no allocation.
struct Echo {
  static constexpr std::string_view name = "ECHO";
  static constexpr std::string_view doc = "Answers the body unchanged";
  static constexpr bool idempotent = true;
  using request = std::string_view;
  using response = std::string_view;
};

struct Ping {
  static constexpr std::string_view name = "PING";
  static constexpr std::string_view doc = "Answers PONG";
  static constexpr bool idempotent = true;
  using request = none;
  using response = std::string;  ///< "PONG"
};

/// RFC 867 style: the current time as one human-readable line.
struct Daytime {
  static constexpr std::string_view name = "DAYTIME";
  static constexpr std::string_view doc = "The time in UTC as one line, RFC 867 style";
  using request = none;
  using response = std::string;
};

/// The registered command names, one per line.
struct Commands {
  static constexpr std::string_view name = "COMMANDS";
  static constexpr std::string_view doc = "The registered command names, sorted, one per line";
  using request = none;
  using response = std::string;
};

/// Waits the given number of milliseconds (the line, in decimal, at most 600000) on a timer and
/// answers "slept N ms". Async: on an out-of-order connection it holds up nothing else, and it
/// stops early when its call is cancelled (deadline passed, client gone).
struct Sleep {
  static constexpr std::string_view name = "SLEEP";
  static constexpr std::string_view doc =
      "Line command: milliseconds (0 to 600000) to wait on a timer before answering";
  static constexpr bool line = true;
  using request = std::string;
  using response = std::string;
};

/// CPU-bound work, offloaded to the handler pool: "ROUNDS TEXT" → ROUNDS rounds of 64-bit
/// FNV-1a over the previous digest and TEXT, as 16 hex digits. ROUNDS is at most 10^9.
struct Hash {
  static constexpr std::string_view name = "HASH";
  static constexpr std::string_view doc =
      "Line command: ROUNDS TEXT; answers 16 hex digits of ROUNDS rounds of 64-bit FNV-1a, on the "
      "handler pool";
  static constexpr bool line = true;
  using request = std::string;
  using response = std::string;
};

/// What SLEEP and HASH accept, or why not.
[[nodiscard]] cmdwire::result<std::uint32_t> parse_sleep(std::string_view line);
/// `call`, when given, is polled between rounds: a cancelled call (deadline passed, client
/// gone) stops hashing early and frees the pool thread; the endpoint chooses the reply.
[[nodiscard]] cmdwire::result<std::string> hash_rounds(std::string_view line,
                                                       const cmdwire::call_context* call = nullptr);

/// Summaries, computed without recursion (depth is bounded by the decoder anyway).
[[nodiscard]] Summary summarize(const ComplexData& root);
[[nodiscard]] pb::Summary summarize(const pb::Complex& root);

/// Builds a chain `depth` levels deep, each level with a small map and `bytes_per_level` bytes:
/// the sample the CLI demo, tests and benchmarks send.
[[nodiscard]] ComplexData make_sample(std::uint32_t depth, std::size_t bytes_per_level = 4);
[[nodiscard]] pb::Complex make_sample_proto(std::uint32_t depth, std::size_t bytes_per_level = 4);

/// Time as DAYTIME sends it: "Saturday, November 28, 2026 18:04:05-UTC".
[[nodiscard]] std::string daytime_now();

}  // namespace cmdwire::demo
