// The JSON pre-scan: one forward pass over the body, no recursion, no allocation unless a
// number is rewritten. See include/cmdwire/detail/json_guard.hpp for the contract.
#include "cmdwire/detail/json_guard.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

namespace cmdwire::detail {

namespace {

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

/// What may continue a number token. Letters are included although only e/E belong to a number:
/// `0x10` or `1true` is then one (invalid) token with a clear error, not two.
constexpr bool is_number_char(char c) noexcept {
  return is_digit(c) || c == '-' || c == '+' || c == '.' || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z');
}

constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

error refuse(std::string what) { return error{make_error_code(errc::bad_body), std::move(what)}; }

/// A number or escape as it appears in an error message: whole if short, else its head and its
/// length, so a 5,000-digit number does not become a 5,000-byte error reply.
std::string quote(std::string_view token) {
  constexpr std::size_t shown = 40;
  // fmt, not `"'" + std::string(...)`: GCC 12 warns (-Wrestrict) on that operator+ in Release.
  if (token.size() <= shown) return fmt::format("'{}'", token);
  return fmt::format("'{}...' ({} characters)", token.substr(0, shown), token.size());
}

/// The parts of a number token that matched JSON's grammar:
/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
struct number_shape {
  std::string_view integer;   // digits before the point
  std::string_view fraction;  // digits after the point, empty if none
  std::string_view exponent;  // digits of the exponent, sign excluded
  bool negative = false;
  bool exponent_negative = false;
  bool has_fraction = false;
  bool has_exponent = false;
};

std::optional<number_shape> parse_shape(std::string_view t) {
  number_shape s;
  std::size_t i = 0;
  const auto digits = [&]() {
    const std::size_t from = i;
    while (i < t.size() && is_digit(t[i])) ++i;
    return t.substr(from, i - from);
  };
  if (i < t.size() && t[i] == '-') {
    s.negative = true;
    ++i;
  }
  s.integer = digits();
  if (s.integer.empty() || (s.integer.size() > 1 && s.integer[0] == '0')) return std::nullopt;
  if (i < t.size() && t[i] == '.') {
    ++i;
    s.has_fraction = true;
    s.fraction = digits();
    if (s.fraction.empty()) return std::nullopt;
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    s.has_exponent = true;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) s.exponent_negative = t[i++] == '-';
    s.exponent = digits();
    if (s.exponent.empty()) return std::nullopt;
  }
  if (i != t.size()) return std::nullopt;
  return s;
}

/// True if rapidjson reads `t` as an exact 64-bit integer (its Int64/Uint64 path, no strtod).
bool is_exact_integer(std::string_view t, const number_shape& s) {
  if (s.has_fraction || s.has_exponent) return false;
  const char* end = t.data() + t.size();
  if (s.negative) {
    std::int64_t v = 0;
    const auto r = std::from_chars(t.data(), end, v);
    return r.ec == std::errc{} && r.ptr == end;
  }
  std::uint64_t v = 0;
  const auto r = std::from_chars(t.data(), end, v);
  return r.ec == std::errc{} && r.ptr == end;
}

/// Decimal exponent of the leading non-zero digit (1234.5 → 3, 0.0012 → -3), saturating far
/// beyond the double range; only its sign matters, to tell overflow from underflow.
std::int64_t order_of_magnitude(const number_shape& s) {
  constexpr std::int64_t cap = std::int64_t{1} << 40;
  std::int64_t exponent = 0;
  for (const char c : s.exponent) {
    exponent = exponent * 10 + (c - '0');
    if (exponent > cap) break;  // the rest of the digits cannot bring it back into range
  }
  if (s.exponent_negative) exponent = -exponent;
  if (const auto lead = s.integer.find_first_not_of('0'); lead != std::string_view::npos) {
    return exponent + static_cast<std::int64_t>(s.integer.size() - lead) - 1;
  }
  const auto lead = s.fraction.find_first_not_of('0');
  return exponent - static_cast<std::int64_t>(lead) - 1;  // a zero value never gets here
}

/// Checks one number token; if rapidjson would take it through strtod, writes the canonical
/// spelling to `canonical` (sized for any double) and returns its length, else returns 0.
result<std::size_t> check_number(std::string_view token, char (&canonical)[32]) {
  const auto shape = parse_shape(token);
  if (!shape) return refuse("invalid JSON number " + quote(token));
  if (is_exact_integer(token, *shape)) return std::size_t{0};

  double value = 0;
  const char* end = token.data() + token.size();
  const auto parsed = std::from_chars(token.data(), end, value);
  if (parsed.ec == std::errc::result_out_of_range) {
    // from_chars leaves `value` untouched either way; a magnitude above 0 is an overflow.
    if (order_of_magnitude(*shape) >= 0) {
      return refuse("JSON number " + quote(token) + " is outside the range of a double");
    }
    value = shape->negative ? -0.0 : 0.0;
  } else if (parsed.ec != std::errc{} || parsed.ptr != end) {
    // The grammar above is a subset of what from_chars accepts; this is a bug, not bad input.
    return refuse("cannot read JSON number " + quote(token));
  }
  const auto written =
      std::to_chars(canonical, canonical + sizeof canonical, value, std::chars_format::scientific);
  return static_cast<std::size_t>(written.ptr - canonical);
}

/// Skips the string whose opening quote is at `open`; returns the index just past its closing
/// quote (or the end of `json` if it has none: the parser reports that).
result<std::size_t> skip_string(std::string_view json, std::size_t open) {
  const auto read_hex4 = [&](std::size_t at) -> int {
    if (at + 4 > json.size()) return -1;
    int v = 0;
    for (std::size_t k = at; k < at + 4; ++k) {
      const int h = hex_value(json[k]);
      if (h < 0) return -1;
      v = v * 16 + h;
    }
    return v;
  };
  std::size_t i = open + 1;
  while (i < json.size()) {
    const char c = json[i];
    if (c == '"') return i + 1;
    if (c != '\\') {
      ++i;
      continue;
    }
    if (i + 1 >= json.size()) return json.size();
    const char e = json[i + 1];
    if (e != 'u') {
      static constexpr std::string_view simple = "\"\\/bfnrt";
      if (simple.find(e) == std::string_view::npos) {
        return refuse("invalid JSON string escape " + quote(json.substr(i, 2)));
      }
      i += 2;
      continue;
    }
    const int unit = read_hex4(i + 2);
    if (unit < 0) return refuse("invalid JSON \\u escape " + quote(json.substr(i, 6)));
    if (unit >= 0xDC00 && unit <= 0xDFFF) {
      return refuse("JSON \\u escape " + quote(json.substr(i, 6)) +
                    " is a low surrogate without a high one before it");
    }
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      const bool pair = i + 7 < json.size() && json[i + 6] == '\\' && json[i + 7] == 'u';
      const int low = pair ? read_hex4(i + 8) : -1;
      if (low < 0xDC00 || low > 0xDFFF) {
        return refuse("JSON \\u escape " + quote(json.substr(i, 6)) +
                      " is a high surrogate not followed by a low one");
      }
      i += 12;
      continue;
    }
    i += 6;
  }
  return json.size();
}

}  // namespace

result<void> guard_json(std::string_view json, std::size_t max_depth, std::string* out) {
  std::size_t depth = 0;
  std::size_t copied = 0;  // json[0, copied) is already in *out
  std::size_t i = 0;
  while (i < json.size()) {
    const char c = json[i];
    switch (c) {
      case '"': {
        const auto end = skip_string(json, i);
        if (!end) return end.error();
        i = *end;
        continue;
      }
      case '{':
      case '[':
        if (++depth > max_depth) {
          return refuse("JSON nested deeper than the limit of " + std::to_string(max_depth));
        }
        break;
      case '}':
      case ']':
        if (depth == 0) return refuse("JSON body has an unbalanced closing bracket");
        --depth;
        break;
      case ',':
      case ':':
        if (depth == 0) return refuse("JSON body is not a single value");
        break;
      default:
        break;
    }
    // A number starts with '-' or a digit; '+' and '.' cannot start a JSON value, and taking
    // them as the start of a (then invalid) number gives the clearer error.
    const bool starts_number = is_digit(c) || c == '-' || c == '+' || c == '.';
    if (!starts_number || (c == '-' && i + 1 < json.size() && json[i + 1] == 'I')) {
      ++i;  // structure, whitespace, literals; `-Infinity` (cereal's NaN/Inf flag) included
      continue;
    }
    std::size_t end = i;
    while (end < json.size() && is_number_char(json[end])) ++end;
    char canonical[32];
    const auto length = check_number(json.substr(i, end - i), canonical);
    if (!length) return length.error();
    if (out && *length != 0) {
      out->append(json.substr(copied, i - copied)).append(canonical, *length);
      copied = end;
    }
    i = end;
  }
  if (out) out->append(json.substr(copied));
  return {};
}

}  // namespace cmdwire::detail
