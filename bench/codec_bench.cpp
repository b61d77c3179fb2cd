// Codec micro-benchmarks: encode and decode of the demo payloads, cereal portable binary vs
// cereal JSON (demo::ComplexData) and protobuf binary vs protobuf JSON (demo::pb::Complex), and
// cmdwire's binary archives against cereal's own PortableBinary archives on the same value.
#include <benchmark/benchmark.h>
#include <cereal/types/vector.hpp>
#include <string>
#include <vector>

#include "cmdwire/codec.hpp"
#include "cmdwire/endpoint.hpp"
#include "demo/demo_commands.hpp"
#include "tests/support/cereal_reference.hpp"

namespace {

using cmdwire::codec;
using cmdwire::wire::encoding;
namespace demo = cmdwire::demo;

// The typed load of `make bench` (--payload-size 200): a chain this deep, ~220 B in cereal binary.
constexpr std::uint32_t sample_depth = 3;
constexpr std::size_t sample_bytes = 8;

template <class T>
T sample();
template <>
demo::ComplexData sample<demo::ComplexData>() {
  return demo::make_sample(sample_depth, sample_bytes);
}
template <>
demo::pb::Complex sample<demo::pb::Complex>() {
  return demo::make_sample_proto(sample_depth, sample_bytes);
}

template <class T, encoding Enc>
void encode(benchmark::State& state) {
  const T value = sample<T>();
  std::string out;
  for (auto _ : state) {
    out.clear();  // a reused buffer, as the endpoint's reply buffer is
    codec<T>::encode(value, Enc, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
  state.counters["bytes"] = static_cast<double>(out.size());
}

template <class T, encoding Enc>
void decode(benchmark::State& state) {
  std::string body;
  codec<T>::encode(sample<T>(), Enc, body);
  for (auto _ : state) {
    T value{};
    if (!codec<T>::decode(body, Enc, value, cmdwire::decode_limits{})) {
      state.SkipWithError("decode failed");
      break;
    }
    benchmark::DoNotOptimize(value);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
  state.counters["bytes"] = static_cast<double>(body.size());
}

/// cereal's own archives (std::ostream over a streambuf appending to the same reused string):
/// what `encode/cereal_bin` is measured against.
void encode_cereal_reference(benchmark::State& state) {
  const auto value = sample<demo::ComplexData>();
  std::string out;
  for (auto _ : state) {
    out.clear();
    cmdwire::test::cereal_encode(value, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["bytes"] = static_cast<double>(out.size());
}

/// cereal's PortableBinaryInputArchive with cmdwire's old depth and size guard: what
/// `decode/cereal_bin` is measured against.
void decode_cereal_reference(benchmark::State& state) {
  std::string body;
  codec<demo::ComplexData>::encode(sample<demo::ComplexData>(), encoding::bin, body);
  for (auto _ : state) {
    demo::ComplexData value{};
    cmdwire::test::cereal_decode(body, cmdwire::decode_limits{}.max_depth, value);
    benchmark::DoNotOptimize(value);
  }
}

/// Decoding into the same value again and again, as a server that reuses its request object
/// does: vectors and strings keep their capacity.
template <class T>
void decode_reused(benchmark::State& state) {
  std::string body;
  codec<T>::encode(sample<T>(), encoding::bin, body);
  T value{};
  for (auto _ : state) {
    if (!codec<T>::decode(body, encoding::bin, value, cmdwire::decode_limits{})) {
      state.SkipWithError("decode failed");
      break;
    }
    benchmark::DoNotOptimize(value);
  }
}

/// Decoding PROTO's request as the server does: on a per-thread arena with a kept first block,
/// reset after each request (endpoint.hpp, detail::request_arena).
void decode_protobuf_arena(benchmark::State& state) {
  std::string body;
  codec<demo::pb::Complex>::encode(sample<demo::pb::Complex>(), encoding::bin, body);
  cmdwire::detail::request_arena scratch;
  for (auto _ : state) {
    auto* value = google::protobuf::Arena::CreateMessage<demo::pb::Complex>(&scratch.arena);
    if (!codec<demo::pb::Complex>::decode(body, encoding::bin, *value, cmdwire::decode_limits{})) {
      state.SkipWithError("decode failed");
      break;
    }
    benchmark::DoNotOptimize(value);
    scratch.arena.Reset();
  }
}

/// A number-heavy body, where the JSON guard rewrites every value (issue 14): 64 doubles.
struct Readings {
  std::vector<double> values;
  template <class A>
  void serialize(A& ar) {
    ar(cereal::make_nvp("values", values));
  }
};

Readings sample_readings() {
  Readings r;
  for (int i = 0; i < 64; ++i) r.values.push_back(1.0 / (i + 3) * (i % 2 ? 1e-5 : 1e7));
  return r;
}

/// The cereal JSON decode as it would be without the guard: the same copy of the body and the
/// same archive (rapidjson parse), nothing else. The baseline that decode/cereal_json and
/// decode/readings_json are read against.
template <class T>
void decode_unguarded(benchmark::State& state, const std::string& body) {
  for (auto _ : state) {
    T value{};
    const std::string copy = body;
    cmdwire::detail::json_input_archive ar(copy);
    ar(value);
    benchmark::DoNotOptimize(value);
  }
}

void decode_cereal_json_unguarded(benchmark::State& state) {
  std::string body;
  codec<demo::ComplexData>::encode(sample<demo::ComplexData>(), encoding::json, body);
  decode_unguarded<demo::ComplexData>(state, body);
}

void decode_readings_json(benchmark::State& state) {
  std::string body;
  codec<Readings>::encode(sample_readings(), encoding::json, body);
  for (auto _ : state) {
    Readings value;
    if (!codec<Readings>::decode(body, encoding::json, value, cmdwire::decode_limits{})) {
      state.SkipWithError("decode failed");
      break;
    }
    benchmark::DoNotOptimize(value);
  }
}

void decode_readings_json_unguarded(benchmark::State& state) {
  std::string body;
  codec<Readings>::encode(sample_readings(), encoding::json, body);
  decode_unguarded<Readings>(state, body);
}

BENCHMARK(encode_cereal_reference)->Name("encode/cereal_portable_binary_reference");
BENCHMARK(encode<demo::ComplexData, encoding::bin>)->Name("encode/cereal_bin");
BENCHMARK(encode<demo::ComplexData, encoding::json>)->Name("encode/cereal_json");
BENCHMARK(encode<demo::pb::Complex, encoding::bin>)->Name("encode/protobuf_bin");
BENCHMARK(encode<demo::pb::Complex, encoding::json>)->Name("encode/protobuf_json");
BENCHMARK(decode_cereal_reference)->Name("decode/cereal_portable_binary_reference");
BENCHMARK(decode<demo::ComplexData, encoding::bin>)->Name("decode/cereal_bin");
BENCHMARK(decode_reused<demo::ComplexData>)->Name("decode/cereal_bin_reused");
BENCHMARK(decode<demo::ComplexData, encoding::json>)->Name("decode/cereal_json");
BENCHMARK(decode_cereal_json_unguarded)->Name("decode/cereal_json_unguarded");
BENCHMARK(decode_readings_json)->Name("decode/readings_json");
BENCHMARK(decode_readings_json_unguarded)->Name("decode/readings_json_unguarded");
BENCHMARK(decode<demo::pb::Complex, encoding::bin>)->Name("decode/protobuf_bin");
BENCHMARK(decode_reused<demo::pb::Complex>)->Name("decode/protobuf_bin_reused");
BENCHMARK(decode_protobuf_arena)->Name("decode/protobuf_bin_arena");
BENCHMARK(decode<demo::pb::Complex, encoding::json>)->Name("decode/protobuf_json");

}  // namespace

BENCHMARK_MAIN();
