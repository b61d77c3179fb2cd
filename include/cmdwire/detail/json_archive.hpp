// cmdwire's cereal JSON archives: the JSON a person would type for a cereal type (maps with
// string keys as objects, null for an empty pointer, absent fields left at their default).
#pragma once

// The mapping (PROTOCOL.md §6 has the table):
//   bool → true/false; integers → JSON integers (range-checked on input); float, double →
//   numbers (NaN, Infinity, -Infinity as those tokens, as cereal's JSON writes them);
//   std::string → string; enums → their underlying integer (cereal's save_minimal);
//   std::vector<T>, std::array<T, N> → array (std::vector<uint8_t> too: an array of numbers;
//   a std::array's must have exactly N elements);
//   std::map / std::unordered_map with std::string keys → object;
//   every other map (other key types, multimaps) → array of [key, value] pairs;
//   std::unique_ptr / std::shared_ptr / std::optional → null, or the value itself;
//   a struct (serialize/save/load with cereal::make_nvp names) → object of its fields; a field
//   without a name gets cereal's name, value0, value1... (and must then be present on input);
//   other cereal containers (deque, list, set...) → arrays, through cereal's size tag; cereal's
//   other types (pair, tuple...) → objects named as cereal names their parts.
// Not supported, refused at compile time: cereal::BinaryData (binary_data()), strings of other
// character types, long double, polymorphic pointers, std::weak_ptr.
//
// A versioned type (CEREAL_CLASS_VERSION) has a "cereal_class_version" field, as cereal writes
// it, and must have it on input.
// On input, a struct's JSON object may leave fields out (they keep the value they had, which for
// a decoded request is the default-constructed one); a member the type does not name is refused
// by name; duplicate members and duplicate map keys are refused. Errors are json_archive_error
// with the path of the value: `$.c.m["a"]: integer 3000000000 is out of range for int32`.
// The input must have passed detail::guard_json (the codec does that): it bounds the nesting,
// and so the recursion here, and makes every number safe for rapidjson.

#include <array>
#include <cereal/cereal.hpp>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace cmdwire::detail {

/// A JSON body that does not fit the type; the message names the path and what was wrong.
struct json_archive_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Writes one value as compact JSON, appended to `out` as it goes (rapidjson's writer).
/// The save functions below drive it; use it as `json_output_archive ar(out); ar(value);`.
class json_output_archive : public cereal::OutputArchive<json_output_archive> {
 public:
  explicit json_output_archive(std::string& out);
  ~json_output_archive() noexcept;
  json_output_archive(const json_output_archive&) = delete;
  json_output_archive& operator=(const json_output_archive&) = delete;

  // Building blocks for the save functions.
  /// A struct begins: an object, or an array if cereal sends a size tag first.
  void start_node();
  void end_node();
  /// The next value is the struct field `name`.
  void name_next(std::string_view name);
  /// The open node is a sequence (cereal's generic containers).
  void size_tag();
  void write_null();
  void write_bool(bool v);
  void write_signed(std::int64_t v);
  void write_unsigned(std::uint64_t v);
  void write_double(double v);
  void write_string(std::string_view v);
  void start_array();
  void end_array();
  void start_object();
  /// Inside start_object(): the next value is the member `key`.
  void key(std::string_view key);
  void end_object();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Reads one value from a JSON text that has passed guard_json: the load functions below
/// take it apart and throw json_archive_error on a mismatch. The text must outlive the archive.
class json_input_archive : public cereal::InputArchive<json_input_archive> {
 public:
  /// Parses `json` (rapidjson DOM); throws json_archive_error if it is not JSON.
  explicit json_input_archive(std::string_view json);
  ~json_input_archive() noexcept;
  json_input_archive(const json_input_archive&) = delete;
  json_input_archive& operator=(const json_input_archive&) = delete;

  // Building blocks for the load functions. Each read takes the next value: a field's, an
  // element's or member's chosen by enter_field/element/member, else the next in order.
  void start_node();
  /// Refuses members of the struct's object that no field asked for.
  void end_node();
  /// Selects field `name` of the open struct; false (nothing selected) if the object lacks it.
  [[nodiscard]] bool enter_field(std::string_view name);
  /// Ends the field, element or member selected last.
  void leave();
  /// The open struct is a sequence: its length.
  [[nodiscard]] std::size_t size_tag();
  /// True (and the value taken) if the next value is null.
  [[nodiscard]] bool take_null();
  [[nodiscard]] bool read_bool();
  /// An integer in [lo, hi]; `type` names the target in errors (int32, uint8...).
  [[nodiscard]] std::int64_t read_signed(std::int64_t lo, std::int64_t hi, std::string_view type);
  [[nodiscard]] std::uint64_t read_unsigned(std::uint64_t hi, std::string_view type);
  /// Any number; `single`: it must fit a float.
  [[nodiscard]] double read_double(bool single);
  void read_string(std::string& out);
  /// The next value is an array (or a [key, value] pair: exactly 2 elements); its length.
  [[nodiscard]] std::size_t start_array();
  void start_pair();
  void element(std::size_t index);
  /// The next value is an object: its member count; member(i) selects one, giving its name.
  [[nodiscard]] std::size_t start_object();
  [[nodiscard]] std::string_view member(std::size_t index);
  /// Ends start_array/start_pair/start_object.
  void end_container();
  /// Throws json_archive_error: "<path of the current value>: <what>".
  [[noreturn]] void fail(std::string_view what) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

namespace json_archive_traits {

template <class T>
inline constexpr bool is_char_string = false;
template <class Tr, class A>
inline constexpr bool is_char_string<std::basic_string<char, Tr, A>> = true;

template <class T>
inline constexpr bool is_map = false;
template <class... A>
inline constexpr bool is_map<std::map<A...>> = true;
template <class... A>
inline constexpr bool is_map<std::unordered_map<A...>> = true;
template <class... A>
inline constexpr bool is_map<std::multimap<A...>> = true;
template <class... A>
inline constexpr bool is_map<std::unordered_multimap<A...>> = true;

template <class T>
inline constexpr bool is_multimap = false;
template <class... A>
inline constexpr bool is_multimap<std::multimap<A...>> = true;
template <class... A>
inline constexpr bool is_multimap<std::unordered_multimap<A...>> = true;

/// Maps that are JSON objects: unique std::string keys.
template <class M>
inline constexpr bool is_object_map = is_char_string<typename M::key_type> && !is_multimap<M>;

template <class T>
inline constexpr bool is_native = false;  ///< written by a function below, not as a struct
template <class T>
inline constexpr bool is_native<cereal::NameValuePair<T>> = true;
template <class T>
inline constexpr bool is_native<cereal::SizeTag<T>> = true;
template <class T, class A>
inline constexpr bool is_native<std::vector<T, A>> = true;
template <class T, std::size_t N>
inline constexpr bool is_native<std::array<T, N>> = true;
template <class T, class D>
inline constexpr bool is_native<std::unique_ptr<T, D>> = true;
template <class T>
inline constexpr bool is_native<std::shared_ptr<T>> = true;
template <class T>
inline constexpr bool is_native<std::optional<T>> = true;

/// Values that get an object (or sequence) of their own, as cereal's JSON archive decides.
template <class T, class Archive, template <class, class> class Minimal>
inline constexpr bool is_node =
    !std::is_arithmetic_v<T> && !is_char_string<T> && !is_map<T> && !is_native<T> &&
    !cereal::traits::has_minimal_base_class_serialization<T, Minimal, Archive>::value &&
    !Minimal<T, Archive>::value;

template <class T>
std::string_view integer_name() {
  constexpr std::string_view s[] = {"int8", "int16", "int32", "int64"};
  constexpr std::string_view u[] = {"uint8", "uint16", "uint32", "uint64"};
  constexpr std::size_t i = sizeof(T) == 1 ? 0 : sizeof(T) == 2 ? 1 : sizeof(T) == 4 ? 2 : 3;
  return std::is_signed_v<T> ? s[i] : u[i];
}

}  // namespace json_archive_traits

// ---- hooks cereal calls around every value
template <class T>
void prologue(json_output_archive& ar, const T&) {
  if constexpr (json_archive_traits::is_node<T, json_output_archive,
                                             cereal::traits::has_minimal_output_serialization>) {
    ar.start_node();
  }
}
template <class T>
void epilogue(json_output_archive& ar, const T&) {
  if constexpr (json_archive_traits::is_node<T, json_output_archive,
                                             cereal::traits::has_minimal_output_serialization>) {
    ar.end_node();
  }
}
template <class T>
void prologue(json_input_archive& ar, const T&) {
  if constexpr (json_archive_traits::is_node<T, json_input_archive,
                                             cereal::traits::has_minimal_input_serialization>) {
    ar.start_node();
  }
}
template <class T>
void epilogue(json_input_archive& ar, const T&) {
  if constexpr (json_archive_traits::is_node<T, json_input_archive,
                                             cereal::traits::has_minimal_input_serialization>) {
    ar.end_node();
  }
}

// ---- names and sizes
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(json_output_archive& ar, const cereal::NameValuePair<T>& nvp) {
  ar.name_next(nvp.name);
  ar(nvp.value);
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(json_input_archive& ar, cereal::NameValuePair<T>& nvp) {
  if (!ar.enter_field(nvp.name)) {
    // cereal reads a versioned type's version into an uninitialized variable: it has no default.
    if (std::string_view(nvp.name) == "cereal_class_version") {
      ar.fail("missing field \"cereal_class_version\" (the type is versioned)");
    }
    return;  // absent: the field keeps its value
  }
  ar(nvp.value);
  ar.leave();
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(json_output_archive& ar, const cereal::SizeTag<T>&) {
  ar.size_tag();  // a JSON array carries its own length
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(json_input_archive& ar, cereal::SizeTag<T>& tag) {
  tag.size = static_cast<std::remove_cvref_t<T>>(ar.size_tag());
}

// ---- scalars
template <class T>
requires std::is_arithmetic_v<T>
void CEREAL_SAVE_FUNCTION_NAME(json_output_archive& ar, const T& v) {
  static_assert(!std::is_same_v<T, long double>, "cmdwire JSON: long double is not supported");
  if constexpr (std::is_same_v<T, bool>) {
    ar.write_bool(v);
  } else if constexpr (std::is_floating_point_v<T>) {
    ar.write_double(static_cast<double>(v));
  } else if constexpr (std::is_signed_v<T>) {
    ar.write_signed(static_cast<std::int64_t>(v));
  } else {
    ar.write_unsigned(static_cast<std::uint64_t>(v));
  }
}
template <class T>
requires std::is_arithmetic_v<T>
void CEREAL_LOAD_FUNCTION_NAME(json_input_archive& ar, T& v) {
  static_assert(!std::is_same_v<T, long double>, "cmdwire JSON: long double is not supported");
  using limits = std::numeric_limits<T>;
  if constexpr (std::is_same_v<T, bool>) {
    v = ar.read_bool();
  } else if constexpr (std::is_floating_point_v<T>) {
    v = static_cast<T>(ar.read_double(std::is_same_v<T, float>));
  } else if constexpr (std::is_signed_v<T>) {
    v = static_cast<T>(
        ar.read_signed(limits::min(), limits::max(), json_archive_traits::integer_name<T>()));
  } else {
    v = static_cast<T>(ar.read_unsigned(limits::max(), json_archive_traits::integer_name<T>()));
  }
}

template <class Tr, class A>
void CEREAL_SAVE_FUNCTION_NAME(json_output_archive& ar, const std::basic_string<char, Tr, A>& s) {
  ar.write_string(std::string_view(s.data(), s.size()));
}
template <class Tr, class A>
void CEREAL_LOAD_FUNCTION_NAME(json_input_archive& ar, std::basic_string<char, Tr, A>& s) {
  if constexpr (std::is_same_v<std::basic_string<char, Tr, A>, std::string>) {
    ar.read_string(s);
  } else {
    std::string tmp;
    ar.read_string(tmp);
    s.assign(tmp.data(), tmp.size());
  }
}

// ---- sequences: std::vector (vector<bool> has its own pair: cereal's is as specialized)
namespace json_archive_detail {
template <class Vector>
void save_vector(json_output_archive& ar, const Vector& v) {
  ar.start_array();
  for (const auto& e : v) ar(static_cast<const typename Vector::value_type&>(e));
  ar.end_array();
}
template <class Vector>
void load_vector(json_input_archive& ar, Vector& v) {
  const std::size_t n = ar.start_array();
  v.clear();
  v.resize(n);  // no larger than the body: every element took at least one byte of it
  for (std::size_t i = 0; i < n; ++i) {
    ar.element(i);
    if constexpr (std::is_same_v<typename Vector::value_type, bool>) {
      bool b = false;
      ar(b);
      v[i] = b;
    } else {
      ar(v[i]);
    }
    ar.leave();
  }
  ar.end_container();
}
}  // namespace json_archive_detail

template <class T, class A>
void CEREAL_SAVE_FUNCTION_NAME(json_output_archive& ar, const std::vector<T, A>& v) {
  json_archive_detail::save_vector(ar, v);
}
template <class T, class A>
void CEREAL_LOAD_FUNCTION_NAME(json_input_archive& ar, std::vector<T, A>& v) {
  json_archive_detail::load_vector(ar, v);
}
template <class A>
void CEREAL_SAVE_FUNCTION_NAME(json_output_archive& ar, const std::vector<bool, A>& v) {
  json_archive_detail::save_vector(ar, v);
}
template <class A>
void CEREAL_LOAD_FUNCTION_NAME(json_input_archive& ar, std::vector<bool, A>& v) {
  json_archive_detail::load_vector(ar, v);
}

template <class T, std::size_t N>
void CEREAL_SAVE_FUNCTION_NAME(json_output_archive& ar, const std::array<T, N>& a) {
  json_archive_detail::save_vector(ar, a);
}
template <class T, std::size_t N>
void CEREAL_LOAD_FUNCTION_NAME(json_input_archive& ar, std::array<T, N>& a) {
  const std::size_t n = ar.start_array();
  if (n != N) {
    ar.fail("expected an array of " + std::to_string(N) + " elements, got " + std::to_string(n));
  }
  for (std::size_t i = 0; i < N; ++i) {
    ar.element(i);
    ar(a[i]);
    ar.leave();
  }
  ar.end_container();
}

// ---- maps: objects when keyed by string, else arrays of [key, value]
namespace json_archive_detail {
template <class Map>
void save_map(json_output_archive& ar, const Map& m) {
  if constexpr (json_archive_traits::is_object_map<Map>) {
    ar.start_object();
    for (const auto& [k, v] : m) {
      ar.key(std::string_view(k.data(), k.size()));
      ar(v);
    }
    ar.end_object();
  } else {
    ar.start_array();
    for (const auto& [k, v] : m) {
      ar.start_array();
      ar(k);
      ar(v);
      ar.end_array();
    }
    ar.end_array();
  }
}
template <class Map>
void load_map(json_input_archive& ar, Map& m) {
  m.clear();
  if constexpr (json_archive_traits::is_object_map<Map>) {
    const std::size_t n = ar.start_object();
    for (std::size_t i = 0; i < n; ++i) {
      const std::string_view name = ar.member(i);
      auto [it, fresh] = m.try_emplace(typename Map::key_type(name.data(), name.size()));
      if (!fresh) ar.fail("duplicate key");
      ar(it->second);
      ar.leave();
    }
  } else {
    const std::size_t n = ar.start_array();
    for (std::size_t i = 0; i < n; ++i) {
      ar.element(i);
      ar.start_pair();
      typename Map::key_type k{};
      typename Map::mapped_type v{};
      ar.element(0);
      ar(k);
      ar.leave();
      ar.element(1);
      ar(v);
      ar.leave();
      ar.end_container();
      if constexpr (json_archive_traits::is_multimap<Map>) {
        m.emplace(std::move(k), std::move(v));
      } else if (!m.emplace(std::move(k), std::move(v)).second) {
        ar.fail("duplicate key");
      }
      ar.leave();
    }
  }
  ar.end_container();
}
}  // namespace json_archive_detail

template <class K, class V, class C, class A>
void CEREAL_SAVE_FUNCTION_NAME(json_output_archive& ar, const std::map<K, V, C, A>& m) {
  json_archive_detail::save_map(ar, m);
}
template <class K, class V, class C, class A>
void CEREAL_LOAD_FUNCTION_NAME(json_input_archive& ar, std::map<K, V, C, A>& m) {
  json_archive_detail::load_map(ar, m);
}
template <class K, class V, class C, class A>
void CEREAL_SAVE_FUNCTION_NAME(json_output_archive& ar, const std::multimap<K, V, C, A>& m) {
  json_archive_detail::save_map(ar, m);
}
template <class K, class V, class C, class A>
void CEREAL_LOAD_FUNCTION_NAME(json_input_archive& ar, std::multimap<K, V, C, A>& m) {
  json_archive_detail::load_map(ar, m);
}
template <class K, class V, class H, class E, class A>
void CEREAL_SAVE_FUNCTION_NAME(json_output_archive& ar,
                               const std::unordered_map<K, V, H, E, A>& m) {
  json_archive_detail::save_map(ar, m);
}
template <class K, class V, class H, class E, class A>
void CEREAL_LOAD_FUNCTION_NAME(json_input_archive& ar, std::unordered_map<K, V, H, E, A>& m) {
  json_archive_detail::load_map(ar, m);
}
template <class K, class V, class H, class E, class A>
void CEREAL_SAVE_FUNCTION_NAME(json_output_archive& ar,
                               const std::unordered_multimap<K, V, H, E, A>& m) {
  json_archive_detail::save_map(ar, m);
}
template <class K, class V, class H, class E, class A>
void CEREAL_LOAD_FUNCTION_NAME(json_input_archive& ar, std::unordered_multimap<K, V, H, E, A>& m) {
  json_archive_detail::load_map(ar, m);
}

// ---- nullable: null, or the value itself
template <class T, class D>
void CEREAL_SAVE_FUNCTION_NAME(json_output_archive& ar, const std::unique_ptr<T, D>& p) {
  static_assert(!std::is_polymorphic_v<T>, "cmdwire JSON: polymorphic pointers are not supported");
  if (p) {
    ar(*p);
  } else {
    ar.write_null();
  }
}
template <class T, class D>
void CEREAL_LOAD_FUNCTION_NAME(json_input_archive& ar, std::unique_ptr<T, D>& p) {
  static_assert(!std::is_polymorphic_v<T>, "cmdwire JSON: polymorphic pointers are not supported");
  if (ar.take_null()) {
    p.reset();
    return;
  }
  p.reset(new T());
  ar(*p);
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(json_output_archive& ar, const std::shared_ptr<T>& p) {
  static_assert(!std::is_polymorphic_v<T>, "cmdwire JSON: polymorphic pointers are not supported");
  if (p) {
    ar(*p);
  } else {
    ar.write_null();
  }
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(json_input_archive& ar, std::shared_ptr<T>& p) {
  static_assert(!std::is_polymorphic_v<T>, "cmdwire JSON: polymorphic pointers are not supported");
  if (ar.take_null()) {
    p.reset();
    return;
  }
  auto fresh = std::make_shared<std::remove_const_t<T>>();
  ar(*fresh);
  p = std::move(fresh);
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(json_output_archive& ar, const std::optional<T>& o) {
  if (o) {
    ar(*o);
  } else {
    ar.write_null();
  }
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(json_input_archive& ar, std::optional<T>& o) {
  if (ar.take_null()) {
    o.reset();
    return;
  }
  ar(o.emplace());
}

}  // namespace cmdwire::detail

// Pairs the two archives for cereal's minimal (save_minimal/load_minimal) serialization, which
// enums use.
CEREAL_SETUP_ARCHIVE_TRAITS(cmdwire::detail::json_input_archive,
                            cmdwire::detail::json_output_archive)
