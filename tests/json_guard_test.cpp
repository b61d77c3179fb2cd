// Tests for detail/json_guard.hpp: the numbers that crashed rapidjson 1.1.0's strtod (issue 14)
// and a sweep around them, compared with the C library's strtod; escapes and surrogates.
#include "cmdwire/detail/json_guard.hpp"

#include <catch2/catch.hpp>
#include <cereal/types/vector.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "cmdwire/codec.hpp"
#include "demo/demo_commands.hpp"

namespace {

using cmdwire::codec;
using cmdwire::errc;
using cmdwire::detail::guard_json;
using cmdwire::wire::encoding;

struct Reading {
  double v = 0;
  std::int64_t i = 0;
  std::uint64_t u = 0;
  template <class A>
  void serialize(A& ar) {
    ar(cereal::make_nvp("v", v), cereal::make_nvp("i", i), cereal::make_nvp("u", u));
  }
};

void require_ok(const cmdwire::result<void>& r) {
  INFO((r ? std::string() : r.error().message));
  REQUIRE(r.has_value());
}

void check_ok(const cmdwire::result<void>& r) {
  INFO((r ? std::string() : r.error().message));
  CHECK(r.has_value());
}

template <class T>
cmdwire::result<void> decode_json(std::string_view body, T& value) {
  return codec<T>::decode(body, encoding::json, value, {});
}

// The three single-number crashers from the fuzz run, the reproduction and the 26-char one.
const std::vector<std::string> crashers = {
    "5521.4555555555555554e-343",
    "555010766721.4555555555555554e-349",
    "5555500.10762166721316515555555550555555555555554e-355",
    "0." + std::string(445, '0'),
};

}  // namespace

TEST_CASE("the crashing numbers decode to what strtod says, anywhere in a body", "[json][number]") {
  for (const auto& number : crashers) {
    CAPTURE(number);
    const double expected = std::strtod(number.c_str(), nullptr);
    Reading r;
    r.v = 42;
    require_ok(decode_json(R"({"v":)" + number + R"(,"i":1,"u":2})", r));
    CHECK(r.v == expected);  // every crasher is below the smallest double, or zero
    CHECK(r.i == 1);
    CHECK(r.u == 2);
    // Inside an unknown field, nested in arrays and objects: rapidjson parses the whole text
    // before the archive looks at a field, so position does not matter to the crash, nor to us.
    cmdwire::demo::ComplexData d;
    const auto nested = R"({"n":1,"s":"","m":{},"p":[],"c":null,"zz":[[{"a":)" + number + "}]]}";
    const auto got = decode_json(nested, d);
    // Parsed, not crashed; then refused for the unknown member.
    REQUIRE_FALSE(got.has_value());
    CHECK(got.error().code == errc::bad_body);
    CHECK(got.error().message == R"(unknown field "zz" in object at $)");
    cmdwire::demo::pb::Complex pbv;
    const auto pb_got = decode_json(R"({"n":)" + number + "}", pbv);
    if (!pb_got) CHECK(pb_got.error().code == errc::bad_body);
  }
}

TEST_CASE("the issue's variants are decoded correctly or refused with bad_body", "[json][number]") {
  Reading r;
  SECTION("5,000 zeros") {
    require_ok(decode_json(R"({"v":0.)" + std::string(5000, '0') + R"(,"i":0,"u":0})", r));
    CHECK(r.v == 0.0);
  }
  SECTION("a huge exponent is refused, naming the number") {
    const auto got = decode_json(R"({"v":1e99999999,"i":0,"u":0})", r);
    REQUIRE_FALSE(got.has_value());
    CHECK(got.error().code == errc::bad_body);
    CHECK(got.error().message == "JSON number '1e99999999' is outside the range of a double");
  }
  SECTION("a huge negative exponent is zero, as strtod says") {
    require_ok(decode_json(R"({"v":-1e-99999999999999999999,"i":0,"u":0})", r));
    CHECK(r.v == 0.0);
    CHECK(std::signbit(r.v));
  }
  SECTION("-0.000...1") {
    const std::string n = "-0." + std::string(400, '0') + "1";
    require_ok(decode_json(R"({"v":)" + n + R"(,"i":0,"u":0})", r));
    CHECK(r.v == std::strtod(n.c_str(), nullptr));
    CHECK(std::signbit(r.v));
  }
  SECTION("integers at the edges of int64 and uint64 stay exact") {
    require_ok(decode_json(R"({"v":1,"i":-9223372036854775808,"u":18446744073709551615})", r));
    CHECK(r.i == std::numeric_limits<std::int64_t>::min());
    CHECK(r.u == std::numeric_limits<std::uint64_t>::max());
    require_ok(decode_json(R"({"v":1,"i":9223372036854775807,"u":0})", r));
    CHECK(r.i == std::numeric_limits<std::int64_t>::max());
  }
  SECTION("a long integer is a double: fine for a double field, refused for an integer one") {
    const std::string n(300, '9');
    require_ok(decode_json(R"({"v":)" + n + R"(,"i":0,"u":0})", r));
    CHECK(r.v == std::strtod(n.c_str(), nullptr));
    const auto got = decode_json(R"({"v":0,"i":)" + n + R"(,"u":0})", r);
    REQUIRE_FALSE(got.has_value());
    CHECK(got.error().code == errc::bad_body);
    const auto too_big = decode_json(R"({"v":)" + std::string(400, '9') + R"(,"i":0,"u":0})", r);
    REQUIRE_FALSE(too_big.has_value());
    CHECK(too_big.error().message.find("outside the range of a double") != std::string::npos);
    CHECK(too_big.error().message.find("(400 characters)") != std::string::npos);
  }
}

TEST_CASE("sweep: 1 to 40 digits times exponents -400 to +400 match strtod", "[json][number]") {
  // Each mantissa has its point after the fourth digit when it has more than four, like the
  // crashers; digits cycle 5,5,2,1,4,... so that none is all zeros.
  const std::string digits = "5521455555555555555455501076216672131651";
  std::size_t decoded = 0, refused = 0;
  for (std::size_t n = 1; n <= 40; ++n) {
    std::string mantissa = digits.substr(0, n);
    if (n > 4) mantissa.insert(4, ".");
    for (int exp = -400; exp <= 400; ++exp) {
      for (const char* sign : {"", "-"}) {
        const std::string number = sign + mantissa + "e" + std::to_string(exp);
        errno = 0;
        const double expected = std::strtod(number.c_str(), nullptr);
        const bool overflow = std::isinf(expected);
        Reading r;
        const auto got = decode_json(R"({"v":)" + number + R"(,"i":0,"u":0})", r);
        if (overflow) {
          if (got)
            FAIL_CHECK(number << " decoded to " << r.v << ", expected a refusal");
          else if (got.error().code != errc::bad_body)
            FAIL_CHECK(number << ": not bad_body");
          ++refused;
        } else if (!got) {
          FAIL_CHECK(number << " refused: " << got.error().message);
        } else if (r.v != expected) {
          FAIL_CHECK(number << " decoded to " << r.v << ", strtod says " << expected);
        } else {
          ++decoded;
        }
      }
    }
  }
  CHECK(decoded + refused == 40 * 801 * 2);
  CHECK(refused > 0);
}

TEST_CASE("guard_json rewrites only what rapidjson would give to strtod", "[json][number]") {
  const auto rewrite = [](std::string_view in) {
    std::string out;
    const auto r = guard_json(in, 8, &out);
    require_ok(r);
    return out;
  };
  CHECK(rewrite(R"([1,-2,18446744073709551615,-9223372036854775808,"1.5e3"])") ==
        R"([1,-2,18446744073709551615,-9223372036854775808,"1.5e3"])");
  CHECK(rewrite("[1.5,2e3,-0.0,18446744073709551616]") ==
        "[1.5e+00,2e+03,-0e+00,1.8446744073709552e+19]");
  CHECK(rewrite("5521.4555555555555554e-343") == "0e+00");
  CHECK(rewrite("[NaN,Infinity,-Infinity]") == "[NaN,Infinity,-Infinity]");
  // Checking without rewriting leaves no trace.
  check_ok(guard_json("[1.5]", 8));
}

TEST_CASE("guard_json refuses numbers outside JSON's grammar", "[json][number]") {
  for (const char* bad :
       {"01", "-", "1.", ".5", "1e", "1e+", "+1", "1.2.3", "1-2", "--1", "0x10", "1E5e"}) {
    CAPTURE(bad);
    const auto r = guard_json(std::string("[") + bad + "]", 8);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::bad_body);
    CHECK(r.error().message.find("invalid JSON number") != std::string::npos);
  }
  for (const char* good : {"0", "-0", "0.5", "1e5", "1E+5", "1e-5", "-12.5e007"}) {
    CAPTURE(good);
    check_ok(guard_json(std::string("[") + good + "]", 8));
  }
}

TEST_CASE("guard_json checks string escapes and surrogate pairs", "[json][string]") {
  const auto refused = [](std::string_view json, std::string_view why) {
    const auto r = guard_json(json, 8);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::bad_body);
    CHECK(r.error().message.find(why) != std::string::npos);
  };
  refused(R"(["\x41"])", "invalid JSON string escape");
  refused(R"(["\u12G4"])", "invalid JSON \\u escape");
  refused(R"(["\u12"])", "invalid JSON \\u escape");
  refused(R"(["\uDC00"])", "low surrogate");
  refused(R"(["\uD83D"])", "high surrogate");
  refused(R"(["\uD83Dx"])", "high surrogate");
  refused(R"(["\uD83D\u0041"])", "high surrogate");
  refused(R"(["\uD83D\uD83D"])", "high surrogate");
  check_ok(guard_json(R"(["\uD83D\uDE00 \u00e9 \"\\\/\b\f\n\r\t"])", 8));
  check_ok(guard_json(R"(["1e99999999 is text, not a number"])", 8));

  // What passes the guard decodes to the UTF-8 it spells.
  std::vector<std::string> v;
  require_ok(decode_json(R"(["\uD83D\uDE00\u00e9"])", v));
  REQUIRE(v.size() == 1);
  CHECK(v[0] == "\xF0\x9F\x98\x80\xC3\xA9");
}
