// The request half of the wire format: command lines, request bodies, lines, and formatting
// requests. Pure: no I/O, no allocation while parsing.
#include <algorithm>
#include <cstring>

#include "cmdwire/wire.hpp"
#include "wire_scan.hpp"

namespace cmdwire::wire {

using namespace scan;

namespace {

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

}  // namespace

std::string_view to_string(encoding e) noexcept { return e == encoding::json ? "json" : "bin"; }

bool valid_command_name(std::string_view name) noexcept {
  return !name.empty() && name.size() <= max_name_size &&
         std::all_of(name.begin(), name.end(), is_name_char);
}

bool has_feature(std::string_view features, std::string_view feature) noexcept {
  while (!features.empty()) {
    const std::size_t sp = features.find(' ');
    const std::string_view token = features.substr(0, sp);
    if (token == feature || (token.starts_with(feature) && token.size() > feature.size() &&
                             token[feature.size()] == '=')) {
      return true;
    }
    features = sp == std::string_view::npos ? std::string_view() : features.substr(sp + 1);
  }
  return false;
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

}  // namespace cmdwire::wire
