// Publish/subscribe frames: formatting and incremental parsing of `MSG topic length`, pure.
#include "cmdwire/pubsub.hpp"

#include <charconv>

namespace cmdwire::pubsub {

namespace {
constexpr std::string_view msg_word = "MSG ";
}  // namespace

bool valid_topic(std::string_view topic) noexcept { return wire::valid_command_name(topic); }

void append_message(std::string& out, std::string_view topic, std::string_view body) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, body.size());
  out.reserve(out.size() + msg_word.size() + topic.size() + 1 + (end - digits) + 1 + body.size() +
              1);
  out.append(msg_word).append(topic).append(1, ' ').append(digits, end).append(1, '\n');
  out.append(body).append(1, '\n');
}

message_parse parse_message(std::string_view buf, const wire::limits& lim) {
  message_parse out;
  const wire::line_parse line = wire::parse_line(buf, lim.max_line);
  if (line.state == wire::status::error) {
    out.state = wire::status::error;
    out.error = errc::too_large;
    out.detail = "MSG head longer than the line limit";
    return out;
  }
  if (line.state == wire::status::need_more) {
    // Fail early on bytes that can never become a MSG head, as an unterminated line would
    // otherwise be waited on until the line limit.
    const std::size_t n = std::min(buf.size(), msg_word.size());
    if (buf.substr(0, n) != msg_word.substr(0, n)) {
      out.state = wire::status::error;
      out.error = errc::protocol_error;
      out.detail = "expected a MSG frame";
    }
    out.need = line.need;
    return out;
  }
  const std::string_view head = line.value;
  const std::size_t sp = head.find(' ', msg_word.size());
  std::size_t length = 0;
  const char* digits_end = head.data() + head.size();
  if (!head.starts_with(msg_word) || sp == std::string_view::npos ||
      !valid_topic(head.substr(msg_word.size(), sp - msg_word.size())) || sp + 1 == head.size() ||
      std::from_chars(head.data() + sp + 1, digits_end, length).ptr != digits_end) {
    out.state = wire::status::error;
    out.error = errc::protocol_error;
    out.detail = "malformed MSG head";
    return out;
  }
  if (length > lim.max_body) {
    out.state = wire::status::error;
    out.error = errc::too_large;
    out.detail = "MSG body larger than the body limit";
    return out;
  }
  const std::size_t total = line.size + length + 1;
  if (buf.size() < total) {
    out.need = total;
    return out;
  }
  if (buf[total - 1] != '\n') {
    out.state = wire::status::error;
    out.error = errc::protocol_error;
    out.detail = "MSG body not followed by LF";
    return out;
  }
  out.state = wire::status::complete;
  out.value.topic = head.substr(msg_word.size(), sp - msg_word.size());
  out.value.body = buf.substr(line.size, length);
  out.size = total;
  return out;
}

bool split_publish_body(std::string_view body, std::string_view& topic,
                        std::string_view& message) noexcept {
  const std::size_t sp = body.find(' ');
  topic = body.substr(0, sp);
  message = sp == std::string_view::npos ? std::string_view{} : body.substr(sp + 1);
  return valid_topic(topic);
}

}  // namespace cmdwire::pubsub
