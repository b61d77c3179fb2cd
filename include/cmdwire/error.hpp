// Error codes cmdwire reports, both on the wire ("ERR too-large ...") and in the C++ API.
// `errc` plugs into std::error_code; `error` pairs a code with the human-readable message.
#pragma once

#include <boost/system/result.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace cmdwire {

/// Every failure cmdwire reports. The first group travels on the wire (see docs/PROTOCOL.md
/// for the wire names); the second group is local to a client.
enum class errc {
  // Sent by a server in an "ERR <code>" reply.
  bad_request = 1,    ///< "bad-request": malformed command line; server closes after replying.
  unknown_command,    ///< "unknown-command": no handler for the name; connection stays usable.
  bad_body,           ///< "bad-body": body could not be decoded as the command's request type.
  too_large,          ///< "too-large": line or body over a limit; server closes after replying.
  internal,           ///< "internal": the handler threw; connection stays usable.
  deadline_exceeded,  ///< "deadline": the request's deadline-ms passed before it ran.
  busy,               ///< "busy": server at its connection limit; closes after replying.
  unauthorized,       ///< "auth": authentication required or failed; closes after replying.
  remote_error,       ///< an "ERR" code this build does not know (a newer peer).
  unavailable,  ///< "unavailable": a service the command needs (the pub/sub backplane) is down.
  // Local to a client.
  protocol_error = 100,  ///< the peer sent bytes that are not a valid reply.
  timeout,               ///< connect timeout or per-call deadline passed.
  connection_lost,       ///< the connection closed with calls in flight.
  not_connected,         ///< the client was closed, or never connected.
  bad_address,           ///< a HOST:PORT string could not be parsed.
};

/// The category that makes `errc` usable as std::error_code.
[[nodiscard]] const std::error_category& error_category() noexcept;

[[nodiscard]] inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// Wire name of a code ("too-large"); empty for client-local codes.
[[nodiscard]] std::string_view wire_name(errc e) noexcept;

/// Code for a wire name; `errc::remote_error` for names this build does not know.
[[nodiscard]] errc errc_from_wire_name(std::string_view name) noexcept;

/// A failure with the message that explains it (the peer's message for error replies).
struct error {
  std::error_code code;
  std::string message;

  /// "too-large: body of 2000000000 bytes exceeds the limit of 16777216"
  [[nodiscard]] std::string to_string() const;
};

/// An error with `code`; an empty `message` is replaced by the code's own description.
/// What a typed handler returns (inside its `result<Response>`) to answer `ERR <code> <message>`:
///   if (!found) return cmdwire::make_error(cmdwire::errc::bad_body, "no such sku: " + sku);
[[nodiscard]] error make_error(errc code, std::string message = {});

/// The code a reply carries for `code`: itself if it has a wire name, else `errc::internal`
/// (client-local codes and codes of other categories, e.g. a std::errc from a handler).
/// `bad_request` becomes `bad_body`: on the wire, bad-request is reserved for a request line
/// the server cannot parse, after which it closes; a handler's refusal keeps the connection.
[[nodiscard]] errc wire_code(const std::error_code& code) noexcept;

/// Thrown only by `result<T>::value()` on an error: the API edge where callers opted into
/// exceptions.
class call_failed : public std::runtime_error {
 public:
  explicit call_failed(error e);
  [[nodiscard]] const error& failure() const noexcept { return error_; }

 private:
  error error_;
};

/// Hook boost::system::result uses when `.value()` is called on an error.
[[noreturn]] void throw_exception_from_error(const error& e, const boost::source_location& loc);

/// Value-or-error returned by every fallible public call.
template <class T>
using result = boost::system::result<T, error>;

}  // namespace cmdwire

template <>
struct std::is_error_code_enum<cmdwire::errc> : std::true_type {};
