// The cmdwire wire format: incremental parsing and appending of request and reply frames.
#include "cmdwire/wire.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>

namespace cmdwire::wire {
namespace {

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
constexpr bool is_name_char(char c) noexcept {
  return is_alpha(c) || is_digit(c) || c == '_' || c == '-' || c == '.' || c == ':' || c == '/';
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
std::size_t find_lf(std::string_view buf, std::size_t max_line) noexcept {
  const std::size_t n = std::min(buf.size(), max_line);
  if (n == 0) return npos;
  const void* p = std::memchr(buf.data(), '\n', n);
  return p ? static_cast<std::size_t>(static_cast<const char*>(p) - buf.data()) : npos;
}

template <class Uint>
bool parse_uint(std::string_view s, Uint& out) noexcept {
  // from_chars takes no sign or blanks for unsigned types; we still need "all of s" and "not
  // empty".
  if (s.empty() || !is_digit(s.front())) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && end == s.data() + s.size();
}

// Accumulates one decimal length digit, refusing as soon as the value passes `max`. Written
// to never overflow, whatever `max` is.
failure push_length_digit(std::size_t& value, std::size_t digits_before, char c, std::size_t max,
                          errc over) noexcept {
  if (digits_before >= max_length_digits) return {over, "length has more than 20 digits"};
  const auto d = static_cast<std::size_t>(c - '0');
  if (value > max / 10) return {over, "length exceeds max_body"};
  value *= 10;
  if (d > max - value) return {over, "length exceeds max_body"};
  value += d;
  return {};
}

// Checks a command line left to right. `line` holds no LF and no CR right before it;
// `terminated` says whether that LF has arrived. Unterminated, only what the bytes so far
// already rule out is reported, and checks run in byte order, so a prefix never fails
// differently from the whole line: the result does not depend on how the bytes were split.
failure scan_head(std::string_view line, bool terminated, const limits& lim,
                  request_head& head) noexcept {
  const std::size_t n = line.size();
  std::size_t i = 0;
  for (; i < n && line[i] != ' '; ++i) {
    if (!is_name_char(line[i])) return bad_request("invalid byte in command name");
  }
  if (i == n && !terminated) return {};
  if (i == 0) return bad_request("empty command name");
  // Checked only once the name ends so that an endless name is reported as an over-long line.
  if (i > max_name_size) return bad_request("command name longer than 64 bytes");
  head.name = line.substr(0, i);

  bool have_encoding = false;
  while (i < n) {
    const std::size_t start = ++i;  // skip the SP
    if (i == n) {
      if (!terminated) return {};
      return bad_request("trailing space after the last token");
    }
    if (line[i] == ' ') return bad_request("two spaces between tokens");

    if (is_digit(line[i])) {
      if (head.length) return bad_request("duplicate length");
      std::size_t value = 0;
      for (; i < n && line[i] != ' '; ++i) {
        if (!is_digit(line[i])) return bad_request("length is not a decimal number");
        if (failure f = push_length_digit(value, i - start, line[i], lim.max_body, errc::too_large))
          return f;
      }
      if (i == n && !terminated) return {};
      head.length = value;
      continue;
    }

    if (!is_alpha(line[i])) return bad_request("token is not an encoding, a length or key=value");
    std::size_t eq = npos;
    for (; i < n && line[i] != ' '; ++i) {
      if (eq == npos) {
        if (line[i] == '=') {
          eq = i;
        } else if (!is_key_char(line[i])) {
          return bad_request("invalid byte in token");
        }
      } else if (!is_value_char(line[i])) {
        return bad_request("invalid byte in attribute value");
      }
    }
    if (i == n && !terminated) return {};

    if (eq == npos) {
      const std::string_view token = line.substr(start, i - start);
      encoding enc{};
      if (token == "bin") {
        enc = encoding::bin;
      } else if (token == "json") {
        enc = encoding::json;
      } else {
        return bad_request("token is not an encoding, a length or key=value");
      }
      if (have_encoding) return bad_request("duplicate encoding");
      // Fixed order keeps "NAME 5 json" from meaning a 5-byte body in some peers and not others.
      if (head.length) return bad_request("encoding after length");
      have_encoding = true;
      head.enc = enc;
      continue;
    }

    const std::string_view key = line.substr(start, eq - start);
    const std::string_view value = line.substr(eq + 1, i - eq - 1);
    if (key == "id") {
      if (head.id) return bad_request("duplicate id");
      std::uint64_t v = 0;
      if (!parse_uint(value, v)) return bad_request("id is not a 64-bit unsigned number");
      head.id = v;
    } else if (key == "deadline-ms") {
      if (head.deadline_ms) return bad_request("duplicate deadline-ms");
      std::uint32_t v = 0;
      if (!parse_uint(value, v)) return bad_request("deadline-ms is not a 32-bit unsigned number");
      head.deadline_ms = v;
    }
    // Unknown keys are skipped: that is what lets newer clients talk to older servers.
  }
  return {};
}

// Parses a whole reply head (LF already found, CR dropped). Sets `length`.
failure scan_reply_head(std::string_view line, const limits& lim, reply& rep,
                        std::size_t& length) noexcept {
  std::size_t pos = 0;
  // Next SP-delimited token; empty when two SPs meet or the line ends in SP.
  const auto next = [&]() noexcept -> std::string_view {
    const std::size_t sp = line.find(' ', pos);
    const std::size_t end = sp == npos ? line.size() : sp;
    const std::string_view token = line.substr(pos, end - pos);
    pos = sp == npos ? line.size() + 1 : sp + 1;
    return token;
  };
  const auto more = [&]() noexcept { return pos <= line.size(); };

  const std::string_view kind = next();
  if (kind == "OK") {
    rep.ok = true;
  } else if (kind == "ERR") {
    rep.ok = false;
    if (!more()) return protocol_error("ERR reply without a code");
    rep.code = next();
    if (rep.code.empty()) return protocol_error("empty error code");
    for (const char c : rep.code) {
      if (!is_key_char(c)) return protocol_error("invalid byte in error code");
    }
  } else {
    return protocol_error("reply does not start with OK or ERR");
  }

  if (!more()) return protocol_error("reply without a length");
  const std::string_view digits = next();
  if (digits.empty()) return protocol_error("reply without a length");
  length = 0;
  for (std::size_t k = 0; k < digits.size(); ++k) {
    if (!is_digit(digits[k])) return protocol_error("reply length is not a decimal number");
    if (failure f = push_length_digit(length, k, digits[k], lim.max_body, errc::too_large))
      return f;
  }

  while (more()) {
    const std::string_view attr = next();
    const std::size_t eq = attr.find('=');
    if (attr.empty() || eq == 0 || eq == npos) return protocol_error("malformed reply attribute");
    for (const char c : attr) {
      if (!is_value_char(c)) return protocol_error("invalid byte in reply attribute");
    }
    if (attr.substr(0, eq) == "id") {
      if (rep.id) return protocol_error("duplicate id in reply");
      std::uint64_t v = 0;
      if (!parse_uint(attr.substr(eq + 1), v)) return protocol_error("reply id is not a number");
      rep.id = v;
    }
  }
  return {};
}

// True when `buf` could still grow into something starting with `word`.
bool could_start_with(std::string_view buf, std::string_view word) noexcept {
  const std::size_t n = std::min(buf.size(), word.size());
  return buf.substr(0, n) == word.substr(0, n);
}

void append_uint(std::string& out, std::uint64_t v) {
  char digits[max_uint_chars];
  const auto res = std::to_chars(digits, digits + sizeof digits, v);
  out.append(digits, res.ptr);
}

void append_id(std::string& out, std::optional<std::uint64_t> id) {
  if (!id) return;
  out += " id=";
  append_uint(out, *id);
}

// Room for " id=" plus digits, so a frame grows the buffer at most once.
constexpr std::size_t attr_room = 16 + max_uint_chars;

}  // namespace

std::string_view to_string(encoding e) noexcept { return e == encoding::json ? "json" : "bin"; }

bool valid_command_name(std::string_view name) noexcept {
  return !name.empty() && name.size() <= max_name_size &&
         std::all_of(name.begin(), name.end(), is_name_char);
}

line_parse parse_line(std::string_view buf, std::size_t max_line) {
  line_parse out;
  const std::size_t lf = find_lf(buf, max_line);
  if (lf == npos) {
    if (buf.size() >= max_line) {
      out.state = status::error;
      out.error = errc::too_large;
      out.detail = "line longer than max_line";
    }
    out.need = buf.size() + 1;
    return out;
  }
  std::string_view line = buf.substr(0, lf);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  out.state = status::complete;
  out.value = line;
  out.size = lf + 1;
  return out;
}

std::size_t skip_blank_lines(std::string_view buf) noexcept {
  std::size_t skip = 0;
  while (skip < buf.size()) {
    if (buf[skip] == '\n') {
      ++skip;
    } else if (buf[skip] == '\r' && skip + 1 < buf.size() && buf[skip + 1] == '\n') {
      skip += 2;
    } else {
      break;  // a lone CR waits for its LF; a CR before anything else fails as a head
    }
  }
  return skip;
}

head_parse parse_request_head(std::string_view buf, const limits& lim) {
  head_parse out;
  const std::size_t lf = find_lf(buf, lim.max_line);
  const bool terminated = lf != npos;
  std::string_view line = buf.substr(0, terminated ? lf : std::min(buf.size(), lim.max_line));
  // A CR may only precede LF. Unterminated, a final CR is still waiting for its LF.
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (const failure f = scan_head(line, terminated, lim, out.value)) {
    out.state = status::error;
    out.error = f.code;
    out.detail = f.detail;
    return out;
  }
  if (!terminated) {
    if (buf.size() >= lim.max_line) {
      out.state = status::error;
      out.error = errc::too_large;
      out.detail = "command line longer than max_line";
    }
    out.need = buf.size() + 1;
    return out;
  }
  out.state = status::complete;
  out.size = lf + 1;
  return out;
}

request_parse parse_request_body(std::string_view buf, const head_parse& head, body_rule rule,
                                 const limits& lim) {
  request_parse out;
  out.value.head = head.value;
  const std::string_view after = buf.substr(head.size);
  if (rule != body_rule::head_only && head.value.length) {
    const std::size_t len = *head.value.length;  // already checked against lim.max_body
    if (after.size() < len) {
      out.need = head.size + len;
      return out;
    }
    out.value.body = after.substr(0, len);
    out.size = head.size + len;
  } else if (rule == body_rule::line) {
    const line_parse line = parse_line(after, lim.max_line);
    if (line.state == status::error) {
      out.state = status::error;
      out.error = errc::too_large;
      out.detail = "line body longer than the line limit";
      return out;
    }
    if (line.state == status::need_more) {
      out.need = head.size + line.need;
      return out;
    }
    out.value.body = line.value;
    out.value.line_form = true;
    out.size = head.size + line.size;
  } else {
    out.size = head.size;
  }
  out.state = status::complete;
  return out;
}

reply_parse parse_reply(std::string_view buf, const limits& lim) {
  reply_parse out;
  const auto fail = [&out](failure f) {
    out.state = status::error;
    out.error = f.code;
    out.detail = f.detail;
    return out;
  };
  // Refuse a stray peer (an HTTP server, say) now rather than after max_line bytes.
  if (!could_start_with(buf, "OK ") && !could_start_with(buf, "ERR "))
    return fail(protocol_error("reply does not start with OK or ERR"));

  const std::size_t lf = find_lf(buf, lim.max_line);
  if (lf == npos) {
    if (buf.size() >= lim.max_line)
      return fail({errc::too_large, "reply head longer than max_line"});
    out.need = buf.size() + 1;
    return out;
  }
  std::string_view line = buf.substr(0, lf);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::size_t length = 0;
  if (const failure f = scan_reply_head(line, lim, out.value, length)) return fail(f);

  const std::size_t body_at = lf + 1;
  // `length` may be near SIZE_MAX when max_body is; compare without adding to it.
  if (buf.size() - body_at <= length) {
    // Saturates rather than wraps when max_body is near SIZE_MAX; the caller's limits cap it.
    out.need = length > SIZE_MAX - body_at - 1 ? SIZE_MAX : body_at + length + 1;
    return out;
  }
  if (buf[body_at + length] != '\n') return fail(protocol_error("reply body not followed by LF"));
  out.value.body = buf.substr(body_at, length);
  out.size = body_at + length + 1;
  out.state = status::complete;
  return out;
}

reply_parse parse_line_reply(std::string_view buf, const limits& lim) {
  constexpr std::string_view err_prefix = "ERR ";
  if (buf.size() < err_prefix.size() && could_start_with(buf, err_prefix)) {
    reply_parse wait;
    wait.need = buf.size() + 1;
    return wait;
  }
  if (buf.starts_with(err_prefix)) return parse_reply(buf, lim);
  reply_parse out;
  const line_parse line = parse_line(buf, lim.max_line);
  if (line.state == status::error) {
    out.state = status::error;
    out.error = errc::too_large;
    out.detail = "reply line longer than max_line";
    return out;
  }
  if (line.state == status::need_more) {
    out.need = line.need;
    return out;
  }
  out.state = status::complete;
  out.value.ok = true;
  out.value.body = line.value;
  out.size = line.size;
  return out;
}

void append_request(std::string& out, std::string_view name, encoding enc, std::string_view body,
                    std::optional<std::uint64_t> id, std::optional<std::uint32_t> deadline_ms) {
  out.reserve(out.size() + name.size() + 6 + max_uint_chars + 2 * attr_room + body.size());
  out += name;
  if (enc == encoding::json) out += " json";
  out += ' ';
  append_uint(out, body.size());
  append_id(out, id);
  if (deadline_ms) {
    out += " deadline-ms=";
    append_uint(out, *deadline_ms);
  }
  out += '\n';
  out += body;
}

void append_line_request(std::string& out, std::string_view name, std::string_view line) {
  out.reserve(out.size() + name.size() + line.size() + 2);
  out += name;
  out += '\n';
  out += line;
  out += '\n';
}

void append_ok(std::string& out, std::string_view body, std::optional<std::uint64_t> id) {
  out.reserve(out.size() + 5 + max_uint_chars + attr_room + body.size());
  out += "OK ";
  append_uint(out, body.size());
  append_id(out, id);
  out += '\n';
  out += body;
  out += '\n';
}

void append_error(std::string& out, errc code, std::string_view message,
                  std::optional<std::uint64_t> id) {
  std::string_view name = wire_name(code);
  // Client-local codes have no wire name; a server that passes one on has a bug, and
  // "internal" is the code that says so without breaking the frame.
  if (name.empty()) name = wire_name(errc::internal);
  out.reserve(out.size() + 7 + name.size() + max_uint_chars + attr_room + message.size());
  out += "ERR ";
  out += name;
  out += ' ';
  append_uint(out, message.size());
  append_id(out, id);
  out += '\n';
  out += message;
  out += '\n';
}

void append_line(std::string& out, std::string_view line) {
  out.reserve(out.size() + line.size() + 1);
  out += line;
  out += '\n';
}

}  // namespace cmdwire::wire
