// libFuzzer target: the JSON paths only (cereal JSON through rapidjson, protobuf JSON), each
// behind the JSON guard. Run with json.dict so that numbers, escapes and nesting are reached
// quickly. Checks the guard's contract as well as memory safety:
// - what the guard accepts and rewrites, it accepts again unchanged (the rewrite is canonical);
// - what decodes, encodes to JSON that decodes again to the same value.
#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cmdwire/codec.hpp"
#include "cmdwire/detail/json_guard.hpp"
#include "demo/demo_commands.hpp"

namespace {

using cmdwire::codec;
using cmdwire::wire::encoding;

void require(bool ok) {
  if (!ok) std::abort();
}

/// Floating-point and wide integer fields, which the demo types lack.
struct Numbers {
  double d = 0;
  float f = 0;
  std::int64_t i = 0;
  std::uint64_t u = 0;
  std::vector<double> list;
  std::map<std::string, double> named;
  template <class A>
  void serialize(A& ar) {
    ar(cereal::make_nvp("d", d), cereal::make_nvp("f", f), cereal::make_nvp("i", i),
       cereal::make_nvp("u", u), cereal::make_nvp("list", list), cereal::make_nvp("named", named));
  }
};

bool same(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0 || (a != a && b != b); }
bool same(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0 || (a != a && b != b); }

bool same(const Numbers& a, const Numbers& b) {
  if (!same(a.d, b.d) || !same(a.f, b.f) || a.i != b.i || a.u != b.u) return false;
  if (a.list.size() != b.list.size() || a.named.size() != b.named.size()) return false;
  for (std::size_t k = 0; k < a.list.size(); ++k) {
    if (!same(a.list[k], b.list[k])) return false;
  }
  for (auto x = a.named.begin(), y = b.named.begin(); x != a.named.end(); ++x, ++y) {
    if (x->first != y->first || !same(x->second, y->second)) return false;
  }
  return true;
}

template <class T, class Same>
void round_trip(std::string_view body, Same&& equal) {
  T value{};
  if (!codec<T>::decode(body, encoding::json, value, {})) return;
  std::string again;
  codec<T>::encode(value, encoding::json, again);
  T back{};
  require(codec<T>::decode(again, encoding::json, back, {}).has_value());
  require(equal(value, back));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

  std::string once;
  if (cmdwire::detail::guard_json(body, 64, &once)) {
    std::string twice;
    require(cmdwire::detail::guard_json(once, 64, &twice).has_value());
    require(twice == once);
  }

  switch (data[0] % 4) {
    case 0:
      round_trip<Numbers>(body, [](const Numbers& a, const Numbers& b) { return same(a, b); });
      break;
    case 1:
      round_trip<cmdwire::demo::ComplexData>(body, [](const auto& a, const auto& b) {
        return cmdwire::demo::summarize(a) == cmdwire::demo::summarize(b);
      });
      break;
    case 2:
      round_trip<std::vector<std::string>>(body,
                                           [](const auto& a, const auto& b) { return a == b; });
      break;
    default: {
      cmdwire::demo::pb::Complex message;
      if (codec<cmdwire::demo::pb::Complex>::decode(body, encoding::json, message, {})) {
        (void)cmdwire::demo::summarize(message);
      }
      break;
    }
  }
  return 0;
}
