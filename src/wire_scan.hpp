// Character classes, bounded number parsing and number formatting shared by the request and
// reply halves of the wire format (src/wire_request.cpp, src/wire_reply.cpp). Not installed.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "cmdwire/wire.hpp"

namespace cmdwire::wire::scan {

constexpr std::size_t npos = std::string_view::npos;
constexpr std::size_t max_name_size = 64;
// A 64-bit size never needs more than 20 digits. Capping the count also refuses zero-padded
// lengths ("000...05") that a peer could use to keep a small value going forever.
constexpr std::size_t max_length_digits = 20;
// Longest decimal rendering of a std::uint64_t.
constexpr std::size_t max_uint_chars = 20;

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool is_alpha(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
// A table, not a chain of compares: every byte of every command name passes through here.
inline constexpr std::array<bool, 256> name_char_table = [] {
  std::array<bool, 256> table{};
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    table[static_cast<std::size_t>(c)] = is_alpha(ch) || is_digit(ch) || ch == '_' || ch == '-' ||
                                         ch == '.' || ch == ':' || ch == '/';
  }
  return table;
}();
constexpr bool is_name_char(char c) noexcept {
  return name_char_table[static_cast<unsigned char>(c)];
}
constexpr bool is_key_char(char c) noexcept {
  return is_alpha(c) || is_digit(c) || c == '_' || c == '-';
}
// Visible ASCII: attribute values must survive being typed into nc and printed in a log.
constexpr bool is_value_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7f;
}

struct failure {
  errc code{};
  std::string_view detail;  // empty: no failure
  explicit operator bool() const noexcept { return !detail.empty(); }
};

constexpr failure bad_request(std::string_view detail) noexcept {
  return {errc::bad_request, detail};
}
constexpr failure protocol_error(std::string_view detail) noexcept {
  return {errc::protocol_error, detail};
}

// Index of the first LF among the first `max_line` bytes, or npos.
inline std::size_t find_lf(std::string_view buf, std::size_t max_line) noexcept {
  const std::size_t n = std::min(buf.size(), max_line);
  if (n == 0) return npos;
  const void* p = std::memchr(buf.data(), '\n', n);
  return p ? static_cast<std::size_t>(static_cast<const char*>(p) - buf.data()) : npos;
}

template <class Uint>
inline bool parse_uint(std::string_view s, Uint& out) noexcept {
  // from_chars takes no sign or blanks for unsigned types; we still need "all of s" and "not
  // empty".
  if (s.empty() || !is_digit(s.front())) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && end == s.data() + s.size();
}

// Accumulates one decimal length digit, refusing as soon as the value passes `max`. Written
// to never overflow, whatever `max` is.
inline failure push_length_digit(std::size_t& value, std::size_t digits_before, char c,
                                 std::size_t max, errc over) noexcept {
  if (digits_before >= max_length_digits) return {over, "length has more than 20 digits"};
  const auto d = static_cast<std::size_t>(c - '0');
  if (value > max / 10) return {over, "length exceeds max_body"};
  value *= 10;
  if (d > max - value) return {over, "length exceeds max_body"};
  value += d;
  return {};
}

// True when `buf` could still grow into something starting with `word`.
inline bool could_start_with(std::string_view buf, std::string_view word) noexcept {
  const std::size_t n = std::min(buf.size(), word.size());
  return buf.substr(0, n) == word.substr(0, n);
}

inline void append_uint(std::string& out, std::uint64_t v) {
  char digits[max_uint_chars];
  const auto res = std::to_chars(digits, digits + sizeof digits, v);
  out.append(digits, res.ptr);
}

inline void append_id(std::string& out, std::optional<std::uint64_t> id) {
  if (!id) return;
  out += " id=";
  append_uint(out, *id);
}

// Room for " id=" plus digits, so a frame grows the buffer at most once.
constexpr std::size_t attr_room = 16 + max_uint_chars;

}  // namespace cmdwire::wire::scan
