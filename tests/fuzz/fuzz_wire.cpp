// libFuzzer target: the wire parsers (requests, framed replies, line replies) on any bytes.
// Checks the parser's own contract as well as memory safety.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cmdwire/wire.hpp"

namespace wire = cmdwire::wire;

namespace {
void require(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // First byte picks small limits, so limit paths are reached with short inputs.
  const wire::limits lim{16u + (data[0] & 0x3f), 1u + (data[0] >> 4) * 64u};
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto rule = [&](std::string_view name) {
    return name.size() % 3 == 0   ? wire::body_rule::framed
           : name.size() % 3 == 1 ? wire::body_rule::line
                                  : wire::body_rule::head_only;
  };
  std::string_view buf = rest;
  for (;;) {
    // The session's order: blank lines, the head, the handler's rule, the body.
    buf.remove_prefix(wire::skip_blank_lines(buf));
    const wire::head_parse h = wire::parse_request_head(buf, lim);
    if (h.state == wire::status::need_more) require(h.need > buf.size());
    if (h.state != wire::status::complete) break;
    require(h.size > 0 && h.size <= buf.size());
    require(wire::valid_command_name(h.value.name));
    const wire::request_parse p = wire::parse_request_body(buf, h, rule(h.value.name), lim);
    if (p.state == wire::status::need_more) require(p.need > buf.size());
    if (p.state != wire::status::complete) break;
    require(p.size >= h.size && p.size <= buf.size());
    require(p.value.body.size() <= lim.max_body || p.value.line_form);
    buf.remove_prefix(p.size);
  }
  for (std::string_view replies = rest;;) {
    const wire::reply_parse r = wire::parse_reply(replies, lim);
    if (r.state == wire::status::need_more) require(r.need > replies.size());
    if (r.state != wire::status::complete) break;
    require(r.size > 0 && r.size <= replies.size());
    replies.remove_prefix(r.size);
  }
  (void)wire::parse_line_reply(rest, lim);
  return 0;
}
