// The reply half of the wire format: framed and line replies, parsed and formatted.
// Pure: no I/O, no allocation while parsing.
#include <cstdint>

#include "cmdwire/wire.hpp"
#include "wire_scan.hpp"

namespace cmdwire::wire {

using namespace scan;

namespace {

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

}  // namespace

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
