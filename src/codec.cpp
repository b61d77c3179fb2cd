// The non-template half of the codecs: protobuf (compiled once here rather than in every user of
// codec.hpp), `none`, and the failure helper the codec templates call.
#include "cmdwire/codec.hpp"

#include "cmdwire/detail/json_guard.hpp"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/json_util.h>
#include <algorithm>
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace cmdwire {

namespace {

constexpr bool is_json_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trim_json_space(std::string_view s) noexcept {
  while (!s.empty() && is_json_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_json_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

result<void> codec<none>::decode(std::string_view body, wire::encoding enc, none&,
                                 const decode_limits&) {
  if (body.empty()) return {};
  if (enc == wire::encoding::json) {
    const std::string_view v = trim_json_space(body);
    if (v == "null") return {};
    // "{}" and "{ }" alike: an object with no members is the JSON spelling of "nothing".
    if (v.size() >= 2 && v.front() == '{' && v.back() == '}' &&
        trim_json_space(v.substr(1, v.size() - 2)).empty()) {
      return {};
    }
    return detail::decode_failure("this command takes no body (JSON: {} or null)");
  }
  return detail::decode_failure("this command takes no body");
}

namespace detail {

result<void> decode_failure(std::string_view what) {
  return error{make_error_code(errc::bad_body), std::string(what)};
}

void encode_protobuf(const google::protobuf::Message& m, wire::encoding enc, std::string& out) {
  if (enc == wire::encoding::bin) {
    // AppendPartialToString serializes straight into `out`'s tail: no temporary string. The
    // only failure is a message over 2 GiB, which no body limit lets through anyway.
    if (!m.AppendPartialToString(&out)) {
      throw std::length_error("protobuf " + m.GetTypeName() + " too large to serialize (> 2 GiB)");
    }
    return;
  }
  // MessageToJsonString happens to append in protobuf 3.21, but that is not documented, so a
  // non-empty `out` gets the JSON through a temporary. On failure `out` is left as it was.
  std::string tmp;
  std::string& target = out.empty() ? out : tmp;
  const google::protobuf::LogSilencer quiet;         // a failed print also logs a warning; we throw
  google::protobuf::util::JsonPrintOptions options;  // compact: add_whitespace = false
  // Every field, defaults included: a reader sees `"depth":0`, not a missing key it must know
  // the default of (proto3 JSON leaves such fields out otherwise).
  options.always_print_primitive_fields = true;
  if (const auto status = google::protobuf::util::MessageToJsonString(m, &target, options);
      !status.ok()) {
    // protobuf 3.21's JSON printer refuses messages nested deeper than ~65 levels (its own
    // stack guard, not configurable through the public API); binary has no such limit.
    target.clear();
    throw std::runtime_error("cannot encode protobuf " + m.GetTypeName() +
                             " as JSON: " + std::string(status.message()));
  }
  if (&target == &tmp) out += tmp;
}

result<void> decode_protobuf(std::string_view body, wire::encoding enc,
                             google::protobuf::Message& m, const decode_limits& lim) {
  // protobuf logs an ERROR line for some bad input (e.g. invalid UTF-8 in a string field) on
  // top of failing the parse. The failure already reaches the peer as bad_body; letting every
  // hostile body also write to the server's log would hand peers a log-flooding lever.
  const google::protobuf::LogSilencer quiet;
  if (enc == wire::encoding::bin) {
    // CodedInputStream counts in int; bodies that big are refused by the wire limits anyway.
    if (body.size() > static_cast<std::size_t>(INT_MAX)) {
      return decode_failure("protobuf body larger than 2 GiB");
    }
    google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(body.data()),
                                              static_cast<int>(body.size()));
    // protobuf parses nested messages recursively; this bounds the recursion (the default is
    // 100, which a 100-level chain with map entries at the bottom already exceeds).
    in.SetRecursionLimit(static_cast<int>(std::min<std::size_t>(lim.max_depth, INT_MAX)));
    if (!m.ParseFromCodedStream(&in)) {
      // protobuf does not say why; these are the only ways a bounded parse can fail.
      return decode_failure("invalid protobuf " + m.GetTypeName() +
                            ": truncated, malformed, or nested deeper than the limit of " +
                            std::to_string(lim.max_depth));
    }
    // A parse stops early at a zero tag or a stray end-group; whatever follows is not ours.
    if (!in.ConsumedEntireMessage() ||
        static_cast<std::size_t>(in.CurrentPosition()) != body.size()) {
      return decode_failure("trailing bytes after the protobuf " + m.GetTypeName());
    }
    return {};
  }
  if (auto guard = guard_json(body, lim.max_depth); !guard) return guard;
  google::protobuf::util::JsonParseOptions options;  // unknown fields are an error
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(body.data(), body.size()), &m, options);
  if (!status.ok()) {
    // protobuf appends a snippet of the input and a caret on further lines; the first line
    // says what was wrong, and error messages stay one line on the wire and in logs.
    std::string_view what(status.message().data(), status.message().size());
    what = what.substr(0, what.find('\n'));
    return decode_failure("invalid JSON for protobuf " + m.GetTypeName() + ": " +
                          std::string(what));
  }
  return {};
}

}  // namespace detail
}  // namespace cmdwire
