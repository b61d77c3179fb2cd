// What DESCRIBE tells a client about a command: its form, doc string, and the JSON shapes of
// its request and response, derived from the C++ types (cereal or protobuf) at registration.
#pragma once

#include <array>
#include <cereal/cereal.hpp>
#include <concepts>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeindex>
#include <unordered_map>
#include <vector>

#include "cmdwire/codec.hpp"
#include "cmdwire/command.hpp"

namespace cmdwire {

/// One command as DESCRIBE shows it (PROTOCOL.md §11). The schemas and the example are JSON
/// texts; empty when the types say nothing (raw and stream handlers).
struct command_description {
  std::string name;
  std::string form = "framed";  ///< "framed", "line" or "stream"
  bool idempotent = false;
  std::string doc;
  std::string request_schema;
  std::string response_schema;
  /// A request body in JSON that the command accepts: the default value of its request type.
  std::string example_request;
  /// For protobuf messages: their .proto text (request first, then response).
  std::string proto;
};

/// A descriptor may document its command: `static constexpr std::string_view doc = "...";`.
template <class C>
concept documented_command = requires {
  { C::doc } -> std::convertible_to<std::string_view>;
};

namespace detail {

/// A JSON shape, as DESCRIBE writes it: {"type": ..., "format"/"name"/"fields"/"items"...}.
struct schema_node {
  std::string key;  ///< the field's name, when this is a field of an object
  /// object, array, map, pair, string, bytes, integer, number, boolean, enum, ref, none
  std::string type;
  std::string format;  ///< int32, uint64, double... for numbers
  std::string name;    ///< the type's name, for object, enum and ref
  /// object: its fields; array: [items]; map: [keys, values]; pair: [key, value]
  std::vector<schema_node> children;
  std::vector<std::string> values;  ///< enum: its names
  bool nullable = false;            ///< null is a value too (pointers, optionals)
};

/// The node as JSON text (src/describe.cpp).
[[nodiscard]] std::string schema_to_json(const schema_node& node);
/// A readable C++ name for a type (demangled).
[[nodiscard]] std::string type_name(const std::type_info& type);
/// A protobuf message's shape in proto3 JSON (json_name keys, maps as objects), and its text.
[[nodiscard]] schema_node protobuf_schema(const google::protobuf::Descriptor& d);
[[nodiscard]] std::string protobuf_text(const google::protobuf::Descriptor& d);
[[nodiscard]] std::string protobuf_example(const google::protobuf::Message& m);

/// Records the fields a cereal `serialize` names, by type, without looking at values: so a
/// default-constructed value describes its recursive members too. Types already being
/// described (`open`) become refs, which is how recursion is shown once.
class schema_archive
    : public cereal::OutputArchive<schema_archive, cereal::AllowEmptyClassElision> {
 public:
  schema_archive(schema_node& object, std::vector<std::type_index>& open)
      : OutputArchive(this), object_(object), open_(open) {}

  template <class T>
  void field(std::string key);

 private:
  schema_node& object_;
  std::vector<std::type_index>& open_;
};

template <class T>
struct pointee {
  using type = void;
};
template <class T, class D>
struct pointee<std::unique_ptr<T, D>> {
  using type = T;
};
template <class T>
struct pointee<std::shared_ptr<T>> {
  using type = T;
};
template <class T>
struct pointee<std::optional<T>> {
  using type = T;
};

template <class T>
struct is_std_array : std::false_type {};
template <class T, std::size_t N>
struct is_std_array<std::array<T, N>> : std::true_type {};

template <class T>
schema_node leaf(std::string type, std::string format = {}) {
  schema_node n;
  n.type = std::move(type);
  n.format = std::move(format);
  return n;
}

/// The JSON shape cmdwire's cereal JSON archive (detail/json_archive.hpp) gives `T`
/// (PROTOCOL.md §6).
template <class T>
schema_node cereal_schema(std::vector<std::type_index>& open) {
  if constexpr (std::is_same_v<T, bool>) {
    return leaf<T>("boolean");
  } else if constexpr (std::is_integral_v<T>) {
    return leaf<T>("integer",
                   (std::is_signed_v<T> ? "int" : "uint") + std::to_string(8 * sizeof(T)));
  } else if constexpr (std::is_enum_v<T>) {
    return cereal_schema<std::underlying_type_t<T>>(open);  // cereal: the underlying integer
  } else if constexpr (std::is_floating_point_v<T>) {
    return leaf<T>("number", sizeof(T) == 4 ? "float" : "double");
  } else if constexpr (std::is_same_v<T, std::string>) {
    return leaf<T>("string");
  } else if constexpr (json_archive_traits::is_map<T>) {
    if constexpr (json_archive_traits::is_object_map<T>) {
      schema_node n = leaf<T>("map");  // an object: keys are the member names
      n.children.push_back(cereal_schema<typename T::key_type>(open));
      n.children.push_back(cereal_schema<typename T::mapped_type>(open));
      return n;
    } else {
      schema_node pair = leaf<T>("pair");  // [key, value]
      pair.children.push_back(cereal_schema<typename T::key_type>(open));
      pair.children.push_back(cereal_schema<typename T::mapped_type>(open));
      schema_node n = leaf<T>("array");
      n.children.push_back(std::move(pair));
      return n;
    }
  } else if constexpr (!std::is_void_v<typename pointee<T>::type>) {
    schema_node n = cereal_schema<typename pointee<T>::type>(open);  // null, or the value
    n.nullable = true;
    return n;
  } else if constexpr (is_std_array<T>::value) {
    schema_node n = leaf<T>("array");
    n.children.push_back(cereal_schema<typename T::value_type>(open));
    return n;
  } else if constexpr (requires {
                         typename T::value_type;
                         typename T::allocator_type;
                       }) {
    schema_node n = leaf<T>("array");  // vectors, deques, lists...
    n.children.push_back(cereal_schema<typename T::value_type>(open));
    return n;
  } else if constexpr (std::is_class_v<T> && std::is_default_constructible_v<T>) {
    const std::type_index id(typeid(T));
    schema_node n;
    n.name = type_name(typeid(T));
    for (const auto& o : open) {
      if (o == id) {
        n.type = "ref";
        return n;
      }
    }
    n.type = "object";
    open.push_back(id);
    const T value{};
    schema_archive ar(n, open);
    ar(value);
    open.pop_back();
    return n;
  } else {
    return leaf<T>("unknown", type_name(typeid(T)));
  }
}

template <class T>
void schema_archive::field(std::string key) {
  object_.children.push_back(cereal_schema<T>(open_));
  object_.children.back().key = std::move(key);
}

// cereal finds these by overload: names and values of fields, and the building blocks cereal's
// own types use. Each records a type; none serializes anything.
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(schema_archive& ar, const cereal::NameValuePair<T>& nvp) {
  ar.template field<std::remove_cvref_t<T>>(nvp.name);
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(schema_archive&, const cereal::SizeTag<T>&) {}
template <class T, cereal::traits::EnableIf<std::is_arithmetic_v<T>> = cereal::traits::sfinae>
void CEREAL_SAVE_FUNCTION_NAME(schema_archive& ar, const T&) {
  ar.template field<T>("value");
}
template <class C, class Tr, class A>
void CEREAL_SAVE_FUNCTION_NAME(schema_archive& ar, const std::basic_string<C, Tr, A>&) {
  ar.template field<std::basic_string<C, Tr, A>>("value");
}

template <class T>
std::string request_schema_of() {
  using U = std::remove_cvref_t<T>;
  if constexpr (std::is_same_v<U, none>) {
    return schema_to_json(leaf<U>("none"));
  } else if constexpr (std::is_same_v<U, std::string> || std::is_same_v<U, std::string_view>) {
    return schema_to_json(leaf<U>("bytes"));
  } else if constexpr (protobuf_message<U>) {
    return schema_to_json(protobuf_schema(*U::descriptor()));
  } else {
    std::vector<std::type_index> open;
    return schema_to_json(cereal_schema<U>(open));
  }
}

template <class T>
std::string example_of() {
  using U = std::remove_cvref_t<T>;
  if constexpr (protobuf_message<U>) {
    return protobuf_example(U::default_instance());
  } else if constexpr (cereal_serializable<U>) {
    const U value{};
    std::string out;
    codec<U>::encode(value, wire::encoding::json, out);
    return out;
  } else {
    return {};
  }
}

}  // namespace detail

/// DESCRIBE's reply: `{"commands": [...]}` with one object per description, the schemas and
/// the example embedded as JSON.
[[nodiscard]] std::string to_json(const std::vector<command_description>& commands);

/// What DESCRIBE says about command `C`.
template <command C>
command_description describe_command() {
  command_description d;
  d.name = std::string(C::name);
  if constexpr (is_line_command<C>) d.form = "line";
  d.idempotent = is_idempotent_command<C>;
  if constexpr (documented_command<C>) d.doc = std::string(C::doc);
  d.request_schema = detail::request_schema_of<typename C::request>();
  d.response_schema = detail::request_schema_of<typename C::response>();
  d.example_request = detail::example_of<typename C::request>();
  if constexpr (protobuf_message<typename C::request>) {
    d.proto = detail::protobuf_text(*C::request::descriptor());
  }
  if constexpr (protobuf_message<typename C::response>) {
    if (!d.proto.empty()) d.proto += '\n';
    d.proto += detail::protobuf_text(*C::response::descriptor());
  }
  return d;
}

}  // namespace cmdwire
