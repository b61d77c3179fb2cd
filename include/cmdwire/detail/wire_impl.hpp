// Template part of the wire parser (parse_request), kept out of wire.hpp for readability.
#pragma once

#include <type_traits>

namespace cmdwire::wire {

template <class RuleFor>
request_parse parse_request(std::string_view buf, const limits& lim, RuleFor&& rule_for) {
  request_parse out;
  // Skip blank lines; bounded by the buffer, each one is consumed for good.
  std::size_t skip = 0;
  while (skip < buf.size() && (buf[skip] == '\n' || buf[skip] == '\r')) {
    if (buf[skip] == '\r' && skip + 1 >= buf.size()) break;  // lone CR: wait for LF
    if (buf[skip] == '\r' && buf[skip + 1] != '\n') break;   // CR not before LF: let head fail
    skip += buf[skip] == '\r' ? 2 : 1;
  }
  out.size = skip;
  const std::string_view rest = buf.substr(skip);
  const head_parse head = parse_request_head(rest, lim);
  if (head.state != status::complete) {
    out.state = head.state;
    out.error = head.error;
    out.detail = head.detail;
    return out;
  }
  out.req.head = head.head;
  const std::string_view after = rest.substr(head.line_size);
  body_rule rule;
  if constexpr (std::is_same_v<decltype(rule_for(head.head.name)), bool>) {
    rule = rule_for(head.head.name) ? body_rule::line : body_rule::framed;
  } else {
    rule = rule_for(head.head.name);
  }
  if (rule == body_rule::head_only) {
    out.size += head.line_size;
    out.state = status::complete;
    return out;
  }
  if (head.head.length) {
    const std::size_t len = *head.head.length;  // already checked against lim.max_body
    if (after.size() < len) {
      out.state = status::need_more;
      return out;
    }
    out.req.body = after.substr(0, len);
    out.size += head.line_size + len;
    out.state = status::complete;
    return out;
  }
  if (rule == body_rule::line) {
    const line_parse line = parse_line(after, lim.max_line);
    if (line.state == status::error) {
      out.state = status::error;
      out.error = errc::too_large;
      out.detail = "line body longer than the line limit";
      return out;
    }
    if (line.state == status::need_more) {
      out.state = status::need_more;
      return out;
    }
    out.req.body = line.line;
    out.req.line_form = true;
    out.size += head.line_size + line.size;
    out.state = status::complete;
    return out;
  }
  out.size += head.line_size;
  out.state = status::complete;
  return out;
}

}  // namespace cmdwire::wire
