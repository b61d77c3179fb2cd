// Publish/subscribe frames: topics and the pushed `MSG topic length LF bytes LF` frame, parsed
// and formatted without I/O (the endpoint pushes them, the client reads them).
//
//   C: SUBSCRIBE 4\nnews          S: OK 4\nnews\n   (then, for every publish to "news")
//                                  S: MSG news 9\nhello all\n
//   C: PUBLISH 14\nnews hello all  S: OK 1\n1\n     (one subscriber received it)
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "cmdwire/wire.hpp"

namespace cmdwire::pubsub {

/// True if `topic` is a valid topic: the syntax of a command name (1-64 bytes of ASCII
/// letters, digits, `_ - . : /`), so it fits in a frame head and needs no escaping.
[[nodiscard]] bool valid_topic(std::string_view topic) noexcept;

/// Appends `MSG TOPIC LENGTH LF BODY LF` to `out`.
void append_message(std::string& out, std::string_view topic, std::string_view body);

/// A pushed message as it sits in the receive buffer; views point into that buffer.
struct message {
  std::string_view topic;
  std::string_view body;
};

using message_parse = wire::parsed<message>;

/// Parses one MSG frame at the start of `buf`; the head must fit `lim.max_line` and the body
/// `lim.max_body`. Pure: the same bytes give the same answer whatever the split.
[[nodiscard]] message_parse parse_message(std::string_view buf, const wire::limits& lim);

/// Splits a PUBLISH body, `TOPIC [SP MESSAGE]`, into topic and message (possibly empty).
/// Returns false when the topic part is not a valid topic.
[[nodiscard]] bool split_publish_body(std::string_view body, std::string_view& topic,
                                      std::string_view& message) noexcept;

}  // namespace cmdwire::pubsub
