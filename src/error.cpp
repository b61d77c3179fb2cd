// cmdwire's std::error_category, the wire names of its codes, and the exception behind value().
#include "cmdwire/error.hpp"

#include <array>
#include <utility>

namespace cmdwire {
namespace {

std::string_view describe(int ev) noexcept {
  switch (static_cast<errc>(ev)) {
    case errc::bad_request:
      return "malformed request";
    case errc::unknown_command:
      return "unknown command";
    case errc::bad_body:
      return "request body could not be decoded";
    case errc::too_large:
      return "line or body over the limit";
    case errc::internal:
      return "handler failed";
    case errc::deadline_exceeded:
      return "deadline exceeded";
    case errc::busy:
      return "server busy";
    case errc::unauthorized:
      return "unauthorized";
    case errc::remote_error:
      return "error reported by the peer";
    case errc::unavailable:
      return "service unavailable";
    case errc::protocol_error:
      return "protocol error";
    case errc::timeout:
      return "timed out";
    case errc::connection_lost:
      return "connection lost";
    case errc::not_connected:
      return "not connected";
    case errc::bad_address:
      return "bad address";
  }
  // 0 is how std::error_code spells success; anything else came from a newer build or a cast.
  return ev == 0 ? "success" : "unknown cmdwire error";
}

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "cmdwire"; }
  std::string message(int ev) const override { return std::string(describe(ev)); }
};

// docs/PROTOCOL.md lists these; changing one breaks every deployed peer.
constexpr std::array<std::pair<errc, std::string_view>, 9> wire_names{{
    {errc::bad_request, "bad-request"},
    {errc::unknown_command, "unknown-command"},
    {errc::bad_body, "bad-body"},
    {errc::too_large, "too-large"},
    {errc::internal, "internal"},
    {errc::deadline_exceeded, "deadline"},
    {errc::busy, "busy"},
    {errc::unauthorized, "auth"},
    {errc::unavailable, "unavailable"},
}};

}  // namespace

const std::error_category& error_category() noexcept {
  static const category instance;
  return instance;
}

std::string_view wire_name(errc e) noexcept {
  for (const auto& [code, name] : wire_names) {
    if (code == e) return name;
  }
  return {};
}

errc errc_from_wire_name(std::string_view name) noexcept {
  for (const auto& [code, wire] : wire_names) {
    if (wire == name) return code;
  }
  // A newer peer may send codes we do not know; they still have to surface as an error.
  return errc::remote_error;
}

std::string error::to_string() const {
  std::string out;
  std::string_view prefix;
  if (code.category() == error_category()) prefix = wire_name(static_cast<errc>(code.value()));
  if (prefix.empty()) {
    out = code.message();
  } else {
    out = prefix;
  }
  if (!message.empty()) {
    out += ": ";
    out += message;
  }
  return out;
}

error make_error(errc code, std::string message) {
  if (message.empty()) message = make_error_code(code).message();
  return error{make_error_code(code), std::move(message)};
}

errc wire_code(const std::error_code& code) noexcept {
  if (code.category() != error_category()) return errc::internal;
  const auto e = static_cast<errc>(code.value());
  // On the wire `bad-request` means the framing is lost and the server closes (PROTOCOL.md
  // §3); a handler that finds its request malformed leaves the connection open: `bad-body`.
  if (e == errc::bad_request) return errc::bad_body;
  return wire_name(e).empty() ? errc::internal : e;
}

call_failed::call_failed(error e) : std::runtime_error(e.to_string()), error_(std::move(e)) {}

void throw_exception_from_error(const error& e, const boost::source_location&) {
  throw call_failed(e);
}

}  // namespace cmdwire
