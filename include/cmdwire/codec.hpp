// Codecs turn a command's request/response type into body bytes and back, picked by type at
// compile time: protobuf messages, cereal-serializable types, strings, and `none`.
#pragma once

#include <google/protobuf/message.h>
#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "cmdwire/detail/binary_archive.hpp"
#include "cmdwire/detail/json_archive.hpp"
#include "cmdwire/detail/json_guard.hpp"
#include "cmdwire/error.hpp"
#include "cmdwire/wire.hpp"

namespace cmdwire {

/// The type of an empty request or response (e.g. PING's request). Encodes to no bytes; decodes
/// from an empty body (or `{}` / `null` in JSON).
struct none {
  friend bool operator==(none, none) = default;
};

/// Bounds on the work a decoder may do for one body, beyond the body size itself.
struct decode_limits {
  /// Deepest nesting of values (cereal binary: every value, name-value wrappers included;
  /// JSON: objects and arrays; protobuf binary: messages). One link of a recursive chain like
  /// demo::ComplexData costs 6 levels in cereal binary (the struct, the field's name-value
  /// pair, the unique_ptr, its ptr_wrapper, that wrapper's pair and "data"), 1 in JSON (the
  /// child's object) and 1 in protobuf, so the default admits 170 ComplexData links in binary,
  /// 1024 in JSON, or 1024 nested protobuf messages.
  /// Measured stack at the limit, Debug + ASan: under 0.7 MiB (about 2 KiB per ComplexData
  /// link, 0.35 KiB per protobuf level), a tenth of a default 8 MiB thread stack. JSON at the
  /// limit (1,024 ComplexData links): between 1 and 1.25 MiB with -O1 + ASan, under 128 KiB
  /// at -O2 (json_archive_test's depth case run under `ulimit -s`).
  std::size_t max_depth = 1024;
};

template <class T>
concept protobuf_message = std::derived_from<T, google::protobuf::Message>;

template <class T>
concept cereal_serializable =
    !protobuf_message<T> &&
    cereal::traits::is_output_serializable<T, detail::binary_output_archive>::value &&
    cereal::traits::is_input_serializable<T, detail::binary_input_archive>::value &&
    std::is_default_constructible_v<T>;

/// Codec<T>: `encode(value, enc, out)` appends the body to `out`; `decode(body, enc, value,
/// limits)` fills `value` or returns an error whose message says what was wrong.
template <class T>
struct codec;

/// Raw bytes, both encodings alike (a JSON-encoded string body is the text itself).
template <>
struct codec<std::string> {
  static void encode(const std::string& v, wire::encoding, std::string& out) { out += v; }
  static result<void> decode(std::string_view body, wire::encoding, std::string& v,
                             const decode_limits&) {
    v.assign(body);
    return {};
  }
};

/// Zero-copy view of the request body: valid until the handler returns (or its awaitable
/// completes). The fastest request type for byte-oriented commands such as ECHO.
template <>
struct codec<std::string_view> {
  static void encode(std::string_view v, wire::encoding, std::string& out) { out += v; }
  static result<void> decode(std::string_view body, wire::encoding, std::string_view& v,
                             const decode_limits&) {
    v = body;
    return {};
  }
};

template <>
struct codec<none> {
  static void encode(none, wire::encoding, std::string&) {}
  static result<void> decode(std::string_view body, wire::encoding enc, none&,
                             const decode_limits&);
};

namespace detail {
/// Protobuf codec, compiled once in src/codec.cpp.
void encode_protobuf(const google::protobuf::Message& m, wire::encoding enc, std::string& out);
result<void> decode_protobuf(std::string_view body, wire::encoding enc,
                             google::protobuf::Message& m, const decode_limits& lim);

result<void> decode_failure(std::string_view what);
}  // namespace detail

/// Protobuf messages: binary is the message's wire format, JSON its canonical JSON mapping
/// (compact). Beyond `decode_limits`, protobuf 3.21's JSON converter has fixed limits of its
/// own: it cannot print messages nested deeper than 65 levels (encode throws
/// std::runtime_error, leaving `out` as it was) and refuses JSON nested deeper than 100
/// objects (decode: bad_body). Binary has neither limit.
template <protobuf_message T>
struct codec<T> {
  static void encode(const T& v, wire::encoding enc, std::string& out) {
    detail::encode_protobuf(v, enc, out);
  }
  static result<void> decode(std::string_view body, wire::encoding enc, T& v,
                             const decode_limits& lim) {
    return detail::decode_protobuf(body, enc, v, lim);
  }
};

/// cereal types: binary is the bytes of cereal's portable binary archive (written and read by
/// cmdwire's own archives, detail/binary_archive.hpp); JSON is cmdwire's own mapping
/// (detail/json_archive.hpp, PROTOCOL.md §6): maps with string keys as objects, null for an
/// empty pointer, absent fields left at the value they have in `v` (callers decode into a
/// default-constructed value), unknown fields and mistyped values refused by their path.
template <cereal_serializable T>
struct codec<T> {
  static void encode(const T& v, wire::encoding enc, std::string& out) {
    if (enc == wire::encoding::bin) {
      detail::binary_output_archive ar(out);
      ar(v);
    } else {
      detail::json_output_archive ar(out);
      ar(v);
    }
  }

  static result<void> decode(std::string_view body, wire::encoding enc, T& v,
                             const decode_limits& lim) {
    try {
      if (enc == wire::encoding::bin) {
        detail::load_portable_binary(body, lim.max_depth, v);
      } else {
        // The guard bounds the nesting (and so the archive's recursion) and copies the body,
        // rewriting every number that rapidjson's strtod would otherwise get (json_guard.hpp).
        std::string guarded;
        guarded.reserve(body.size());
        if (auto guard = detail::guard_json(body, lim.max_depth, &guarded); !guard) return guard;
        detail::json_input_archive ar(guarded);
        ar(v);
      }
    } catch (const std::exception& e) {
      return detail::decode_failure(e.what());
    }
    return {};
  }
};

/// True if cmdwire can encode and decode `T`.
template <class T>
concept codable = requires(const T& c, T& m, std::string& out, std::string_view body) {
  codec<T>::encode(c, wire::encoding::bin, out);
  { codec<T>::decode(body, wire::encoding::bin, m, decode_limits{}) } -> std::same_as<result<void>>;
};

}  // namespace cmdwire
