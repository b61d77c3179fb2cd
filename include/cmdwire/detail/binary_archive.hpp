// cmdwire's cereal archives for the `bin` encoding: the exact bytes of cereal's PortableBinary
// archives (little-endian marker), written straight into a string and read straight from a view.
#pragma once

#include <algorithm>
#include <bit>
#include <cereal/cereal.hpp>
#include <cereal/details/helpers.hpp>
#include <cereal/types/memory.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace cmdwire::detail {

// cereal's PortableBinary archives spend most of their time outside the format: a
// std::ostream/istream (with its locale) per body, a virtual streambuf call per primitive and
// a byte-order test per primitive. These archives keep cereal's type support (every
// cereal/types/*.hpp serializer works through the OutputArchive/InputArchive bases) and
// replace only the byte handling.

/// Byte 0 of every body: cereal's PortableBinary marker for little-endian data.
inline constexpr char binary_little_endian_marker = 1;

template <class T>
inline constexpr bool is_size_tag = false;
template <class T>
inline constexpr bool is_size_tag<cereal::SizeTag<T>> = true;

template <class T>
inline constexpr bool portable_binary_primitive_v = std::is_arithmetic_v<T> &&
                                                    (!std::is_floating_point_v<T> ||
                                                     std::numeric_limits<T>::is_iec559);

/// Reverses each `Size`-byte element of `bytes` in place (for big-endian hosts and
/// big-endian bodies).
template <std::size_t Size>
void swap_each(unsigned char* bytes, std::size_t n) noexcept {
  for (std::size_t at = 0; at + Size <= n; at += Size) {
    for (std::size_t i = 0; i < Size / 2; ++i) std::swap(bytes[at + i], bytes[at + Size - 1 - i]);
  }
}

/// How a non-versioned type is serialized for archive `A`, when cereal would find exactly one
/// way: the archives below call it themselves, with the archive they are (cereal's base
/// classes reach the archive through a stored `self` pointer, which the optimiser cannot
/// fold, so every nested value costs a dependent load). Anything else (versioned types,
/// minimal serializers, base classes, polymorphism) takes cereal's own path.
enum class cereal_route {
  cereal,
  member_serialize,
  serialize,
  member_save,
  save,
  member_load,
  load
};

template <class T, class A, bool Output>
constexpr cereal_route route_for() {
  namespace tr = cereal::traits;
  if constexpr (tr::is_specialized<T, A>::value) {
    return cereal_route::cereal;
  } else if constexpr (Output) {
    if constexpr (tr::detail::count_output_serializers<T, A>::value != 1) {
      return cereal_route::cereal;
    } else if constexpr (tr::has_member_serialize<T, A>::value) {
      return cereal_route::member_serialize;
    } else if constexpr (tr::has_non_member_serialize<T, A>::value) {
      return cereal_route::serialize;
    } else if constexpr (tr::has_member_save<T, A>::value) {
      return cereal_route::member_save;
    } else if constexpr (tr::has_non_member_save<T, A>::value) {
      return cereal_route::save;
    } else {
      return cereal_route::cereal;
    }
  } else {
    if constexpr (tr::detail::count_input_serializers<T, A>::value != 1) {
      return cereal_route::cereal;
    } else if constexpr (tr::has_member_serialize<T, A>::value) {
      return cereal_route::member_serialize;
    } else if constexpr (tr::has_non_member_serialize<T, A>::value) {
      return cereal_route::serialize;
    } else if constexpr (tr::has_member_load<T, A>::value) {
      return cereal_route::member_load;
    } else if constexpr (tr::has_non_member_load<T, A>::value) {
      return cereal_route::load;
    } else {
      return cereal_route::cereal;
    }
  }
}

// Outside the archive classes, so the unqualified calls find the free functions by ordinary
// and argument-dependent lookup, as cereal's own calls do.
template <class A, class T>
void call_serialize(A& ar, T& v) {
  CEREAL_SERIALIZE_FUNCTION_NAME(ar, v);
}
template <class A, class T>
void call_save(A& ar, const T& v) {
  CEREAL_SAVE_FUNCTION_NAME(ar, v);
}
template <class A, class T>
void call_load(A& ar, T& v) {
  CEREAL_LOAD_FUNCTION_NAME(ar, v);
}

/// Appends a value's cereal PortableBinary bytes to a string it borrows for its lifetime.
class binary_output_archive
    : public cereal::OutputArchive<binary_output_archive, cereal::AllowEmptyClassElision> {
 public:
  explicit binary_output_archive(std::string& out) : OutputArchive(this), out_(out) {
    used_ = out_.size();
    const char marker = binary_little_endian_marker;
    save_bytes<1>(&marker, 1);
  }
  /// Gives `out` back holding exactly what was written (also when a serializer threw).
  ~binary_output_archive() noexcept { out_.resize(used_); }
  binary_output_archive(const binary_output_archive&) = delete;
  binary_output_archive& operator=(const binary_output_archive&) = delete;

  /// Serializes each argument, as cereal's `archive(a, b, ...)` does.
  template <class... Ts>
  binary_output_archive& operator()(Ts&&... values) {
    (save_value(values), ...);
    return *this;
  }

  /// Appends `n` bytes of `Size`-byte elements, little-endian.
  template <std::size_t Size>
  void save_bytes(const void* data, std::size_t n) {
    // The string is grown ahead in steps and written through a plain pointer; a primitive is
    // then one compare and one fixed-size store, where string::append is a call per value.
    if (n > out_.size() - used_) grow(n);
    char* at = out_.data() + used_;
    std::memcpy(at, data, n);
    used_ += n;
    if constexpr (Size > 1 && std::endian::native == std::endian::big) {
      swap_each<Size>(reinterpret_cast<unsigned char*>(at), n);
    }
  }

 private:
  void grow(std::size_t n) {
    // At least double, so a body costs O(log size) resizes; the zero-fill of the new tail is
    // the only waste, and the destructor trims it.
    out_.resize(used_ + std::max({n, std::size_t{256}, used_}));
  }

  template <class T>
  void save_value(const T& v) {
    constexpr cereal_route route = route_for<T, binary_output_archive, true>();
    if constexpr (portable_binary_primitive_v<T>) {
      save_bytes<sizeof(T)>(std::addressof(v), sizeof(T));
    } else if constexpr (route == cereal_route::member_serialize) {
      cereal::access::member_serialize(*this, const_cast<T&>(v));
    } else if constexpr (route == cereal_route::serialize) {
      call_serialize(*this, const_cast<T&>(v));
    } else if constexpr (route == cereal_route::member_save) {
      cereal::access::member_save(*this, v);
    } else if constexpr (route == cereal_route::save) {
      call_save(*this, v);
    } else {
      OutputArchive::operator()(v);
    }
  }

  std::string& out_;
  std::size_t used_ = 0;  ///< bytes of `out_` that are real; the rest is room written next.
};

/// Reads a value from cereal PortableBinary bytes it borrows for its lifetime, with the limits
/// cereal lacks: nesting depth (counted as cmdwire always has: every value, name-value
/// wrappers included, so a recursive body cannot overflow the stack) and length prefixes (one
/// larger than the bytes left is refused before the container allocates for it).
/// `BigEndianBody` is true for bodies marked big-endian (byte 0 is 0x00).
template <bool BigEndianBody>
class basic_binary_input_archive
    : public cereal::InputArchive<basic_binary_input_archive<BigEndianBody>,
                                  cereal::AllowEmptyClassElision> {
 public:
  /// Thrown for every malformed body; the codec turns it into bad_body with this message.
  struct violation : std::runtime_error {
    using std::runtime_error::runtime_error;
  };

  /// `bytes` starts after the byte-order marker.
  basic_binary_input_archive(std::string_view bytes, std::size_t max_depth)
      : cereal::InputArchive<basic_binary_input_archive, cereal::AllowEmptyClassElision>(this),
        next_(bytes.data()),
        end_(bytes.data() + bytes.size()),
        max_depth_(max_depth) {}

  /// Loads each argument, as cereal's `archive(a, b, ...)` does.
  template <class... Ts>
  basic_binary_input_archive& operator()(Ts&&... values) {
    (load_value(values), ...);
    return *this;
  }

  template <std::size_t Size>
  void load_bytes(void* data, std::size_t n) {
    if (n > remaining()) [[unlikely]] {
      throw_short(n);
    }
    std::memcpy(data, next_, n);
    next_ += n;
    if constexpr (Size > 1 && (BigEndianBody != (std::endian::native == std::endian::big))) {
      swap_each<Size>(static_cast<unsigned char*>(data), n);
    }
  }

  [[nodiscard]] std::size_t remaining() const noexcept {
    return static_cast<std::size_t>(end_ - next_);
  }

  // cereal's process() brackets every value with prologue/epilogue, which count depth here;
  // the routes taken directly count it the same way, so the limit means what it always has.
  template <class T>
  void load_value(T& v) {
    using base = cereal::InputArchive<basic_binary_input_archive, cereal::AllowEmptyClassElision>;
    constexpr cereal_route route = route_for<T, basic_binary_input_archive, false>();
    if constexpr (portable_binary_primitive_v<T>) {
      enter();
      load_bytes<sizeof(T)>(std::addressof(v), sizeof(T));
      leave();
    } else if constexpr (route == cereal_route::cereal) {
      base::operator()(v);  // its prologue/epilogue hooks (below) do the counting
    } else {
      enter();
      if constexpr (route == cereal_route::member_serialize) {
        cereal::access::member_serialize(*this, v);
      } else if constexpr (route == cereal_route::serialize) {
        call_serialize(*this, v);
      } else if constexpr (route == cereal_route::member_load) {
        cereal::access::member_load(*this, v);
      } else {
        call_load(*this, v);
      }
      leave();
      if constexpr (is_size_tag<T>) check_size(static_cast<std::uint64_t>(v.size));
    }
  }

  // Called around every value: kept inline, with the throwing halves out of line.
  void enter() {
    if (++depth_ > max_depth_) [[unlikely]]
      throw_too_deep();
  }
  void leave() noexcept { --depth_; }

  /// Every element of a container takes at least one byte, so a size prefix larger than the
  /// bytes left is a lie; refusing it here stops the allocation cereal would make next.
  void check_size(std::uint64_t declared) const {
    if (declared > remaining()) [[unlikely]]
      throw_size(declared);
  }

 private:
  [[noreturn, gnu::cold, gnu::noinline]] void throw_short(std::size_t n) const {
    throw violation("body ends " + std::to_string(n - remaining()) + " bytes short of the value");
  }
  [[noreturn, gnu::cold, gnu::noinline]] void throw_too_deep() const {
    throw violation("nesting deeper than the limit of " + std::to_string(max_depth_));
  }
  [[noreturn, gnu::cold, gnu::noinline]] void throw_size(std::uint64_t declared) const {
    throw violation("length prefix " + std::to_string(declared) + " exceeds the " +
                    std::to_string(remaining()) + " bytes left in the body");
  }

  const char* next_;
  const char* end_;
  std::size_t max_depth_;
  std::size_t depth_ = 0;
};

using binary_input_archive = basic_binary_input_archive<false>;
using binary_input_archive_big_endian = basic_binary_input_archive<true>;

// ---- what cereal's portable_binary.hpp defines for its archives, for these

template <class T>
requires portable_binary_primitive_v<T>
void CEREAL_SAVE_FUNCTION_NAME(binary_output_archive& ar, const T& v) {
  ar.template save_bytes<sizeof(T)>(std::addressof(v), sizeof(T));
}

template <bool S, class T>
requires portable_binary_primitive_v<T>
void CEREAL_LOAD_FUNCTION_NAME(basic_binary_input_archive<S>& ar, T& v) {
  ar.template load_bytes<sizeof(T)>(std::addressof(v), sizeof(T));
}

template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(binary_output_archive& ar, cereal::NameValuePair<T>& nvp) {
  ar(nvp.value);
}
template <bool S, class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(basic_binary_input_archive<S>& ar,
                                    cereal::NameValuePair<T>& nvp) {
  ar(nvp.value);
}

template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(binary_output_archive& ar, cereal::SizeTag<T>& tag) {
  ar(tag.size);
}
template <bool S, class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(basic_binary_input_archive<S>& ar, cereal::SizeTag<T>& tag) {
  ar(tag.size);
}

template <class T>
requires portable_binary_primitive_v<std::remove_pointer_t<T>>
void CEREAL_SAVE_FUNCTION_NAME(binary_output_archive& ar, const cereal::BinaryData<T>& bd) {
  // An empty container's data() may be null, which memcpy must not get. Checked here, not in
  // save_bytes, where the branch costs every primitive (the encode benchmark: 72 -> 114 ns).
  if (bd.size == 0) return;
  ar.template save_bytes<sizeof(std::remove_pointer_t<T>)>(bd.data,
                                                           static_cast<std::size_t>(bd.size));
}
template <bool S, class T>
requires portable_binary_primitive_v<std::remove_pointer_t<T>>
void CEREAL_LOAD_FUNCTION_NAME(basic_binary_input_archive<S>& ar, cereal::BinaryData<T>& bd) {
  if (bd.size == 0) return;  // as in the save above
  ar.template load_bytes<sizeof(std::remove_pointer_t<T>)>(bd.data,
                                                           static_cast<std::size_t>(bd.size));
}

// ---- decoding into a value that already holds one (a reused request object): the result is
// what cereal's own loads give, but existing map nodes and pointees are refilled instead of
// freed and allocated again. Strings and vectors need nothing: cereal's loads resize them,
// which keeps their capacity.

/// cereal's std::map load (clear, then insert each item; the first of duplicate keys wins),
/// taking the nodes it needs from the map's previous contents.
template <bool S, class K, class V, class C, class A>
void CEREAL_LOAD_FUNCTION_NAME(basic_binary_input_archive<S>& ar, std::map<K, V, C, A>& map) {
  cereal::size_type size = 0;
  ar(cereal::make_size_tag(size));
  std::map<K, V, C, A> spare;
  spare.swap(map);
  for (cereal::size_type i = 0; i < size; ++i) {
    if (!spare.empty()) {
      auto node = spare.extract(spare.begin());
      ar(cereal::make_map_item(node.key(), node.mapped()));
      map.insert(map.end(), std::move(node));  // a duplicate key leaves the node to be freed
    } else {
      K key;
      V value;
      ar(cereal::make_map_item(key, value));
      map.emplace_hint(map.end(), std::move(key), std::move(value));
    }
  }
}

/// cereal's unique_ptr load (any non-zero byte means a value follows), refilling the pointee
/// the pointer already has.
template <bool S, class T, class D>
requires(std::is_default_constructible_v<T> && !std::is_const_v<T> &&
         !cereal::traits::has_load_and_construct<T, basic_binary_input_archive<S>>::
             value) void CEREAL_LOAD_FUNCTION_NAME(basic_binary_input_archive<S>& ar,
                                                   cereal::memory_detail::PtrWrapper<
                                                       std::unique_ptr<T, D>&>& wrapper) {
  std::uint8_t valid = 0;
  ar(cereal::make_nvp("valid", valid));
  auto& ptr = wrapper.ptr;
  if (valid == 0) {
    ptr.reset();
    return;
  }
  if (!ptr) ptr.reset(new T());
  ar(cereal::make_nvp("data", *ptr));
}

// ---- the limits: cereal calls these around every value it loads (more specialised than its
// generic no-op hooks, so these win).

template <bool S, class T>
void prologue(basic_binary_input_archive<S>& ar, const T&) {
  ar.enter();
}
template <bool S, class T>
void epilogue(basic_binary_input_archive<S>& ar, const T&) {
  ar.leave();
}
template <bool S, class T>
void epilogue(basic_binary_input_archive<S>& ar, const cereal::SizeTag<T>& tag) {
  ar.leave();
  ar.check_size(static_cast<std::uint64_t>(tag.size));
}

/// Decodes `body` (marker included) into `value`; throws the archive's violation (or whatever a
/// type's own load throws) on malformed input, and refuses bytes left over after the value.
template <class T>
void load_portable_binary(std::string_view body, std::size_t max_depth, T& value) {
  if (body.empty()) {
    throw binary_input_archive::violation("empty body: a cereal binary body starts with 0x01");
  }
  const auto marker = static_cast<unsigned char>(body.front());
  const std::string_view rest = body.substr(1);
  auto load = [&](auto& ar) {
    ar(value);
    if (ar.remaining() != 0) {
      throw binary_input_archive::violation("trailing bytes after the value");
    }
  };
  if (marker == static_cast<unsigned char>(binary_little_endian_marker)) {
    binary_input_archive ar(rest, max_depth);
    load(ar);
  } else if (marker == 0) {  // written big-endian (cereal's default on big-endian hosts)
    binary_input_archive_big_endian ar(rest, max_depth);
    load(ar);
  } else {
    throw binary_input_archive::violation(
        "byte 0 is " + std::to_string(marker) +
        ", not a byte-order marker (1: little-endian, 0: big-endian)");
  }
}

}  // namespace cmdwire::detail

CEREAL_REGISTER_ARCHIVE(cmdwire::detail::binary_output_archive)
CEREAL_REGISTER_ARCHIVE(cmdwire::detail::binary_input_archive)
CEREAL_REGISTER_ARCHIVE(cmdwire::detail::binary_input_archive_big_endian)
CEREAL_SETUP_ARCHIVE_TRAITS(cmdwire::detail::binary_input_archive,
                            cmdwire::detail::binary_output_archive)
// Both input archives pair with the one output archive (for load_minimal's type deduction).
namespace cereal::traits::detail {
template <>
struct get_output_from_input<cmdwire::detail::binary_input_archive_big_endian> {
  using type = cmdwire::detail::binary_output_archive;
};
}  // namespace cereal::traits::detail
