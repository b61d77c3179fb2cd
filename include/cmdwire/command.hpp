// A command descriptor is the one definition of a command that server and client share:
// its name and its request and response types, checked at compile time on both sides.
#pragma once

#include <concepts>
#include <string_view>

#include "cmdwire/codec.hpp"

namespace cmdwire {

/// A command: `struct Store { static constexpr std::string_view name = "STORE";
/// using request = Item; using response = Receipt; };`. Add `static constexpr bool line = true;`
/// (with string request and response) for a line command that `nc` users can send as
/// `NAME\nLINE\n` and get one line back. Add `static constexpr bool idempotent = true;` when
/// running the command twice does no harm: a channel then retries it on another connection
/// after the one it was sent on broke before the reply came.
template <class C>
concept command = requires {
  { C::name } -> std::convertible_to<std::string_view>;
  typename C::request;
  typename C::response;
}
&&codable<typename C::request>&& codable<typename C::response>;

/// True for commands that declare `static constexpr bool line = true`.
template <class C>
inline constexpr bool is_line_command = [] {
  if constexpr (requires { C::line; }) {
    return static_cast<bool>(C::line);
  } else {
    return false;
  }
}();

/// Whether a server may decode this command's requests into one object per thread, kept from
/// request to request, instead of a new one each time (so containers keep their memory, and a
/// request like the last one allocates nothing to decode). Protobuf requests are decoded on a
/// per-thread arena that is reset after each request, unless the descriptor says
/// `static constexpr bool reuse_request = false`. A cereal request type is reused only when the
/// descriptor says `static constexpr bool reuse_request = true`, which is right when `serialize`
/// names every member (a member it leaves out would keep the previous request's value). Only
/// synchronous handlers reuse; JSON bodies always decode into a new object, since absent fields
/// keep the value they have.
template <class C>
inline constexpr bool reuses_request = [] {
  if constexpr (requires { C::reuse_request; }) {
    return static_cast<bool>(C::reuse_request);
  } else {
    return protobuf_message<typename C::request>;
  }
}();

/// True for commands that declare `static constexpr bool idempotent = true`.
template <class C>
inline constexpr bool is_idempotent_command = [] {
  if constexpr (requires { C::idempotent; }) {
    return static_cast<bool>(C::idempotent);
  } else {
    return false;
  }
}();

}  // namespace cmdwire
