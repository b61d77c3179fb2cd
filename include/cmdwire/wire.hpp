// The cmdwire wire format: pure parsing and formatting of request and reply frames, no I/O.
// Parsers look at the bytes received so far and say "complete", "need more" or "error".
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cmdwire/error.hpp"

namespace cmdwire::wire {

/// How a body is encoded: binary (cereal portable binary / protobuf binary / raw bytes) or JSON.
enum class encoding : std::uint8_t { bin, json };

[[nodiscard]] std::string_view to_string(encoding e) noexcept;

/// Sizes a peer may send. Checked before any memory is set aside for the data.
struct limits {
  /// Longest command line (or line body, or reply head), LF included. Guards the buffer a
  /// peer can fill without ever sending a newline.
  std::size_t max_line = 4096;
  /// Largest body. A bigger LENGTH is refused as soon as the head is parsed.
  std::size_t max_body = 16u << 20;
};

/// Outcome of looking at the bytes received so far.
enum class status : std::uint8_t {
  complete,   ///< a whole frame is there; `size` bytes belong to it.
  need_more,  ///< the frame is valid so far but incomplete; read more and call again.
  error,      ///< the bytes can never become a valid frame; see `error`/`detail`.
};

/// What every parser returns: the value once a whole frame is there, how many bytes it still
/// needs, or why the bytes can never become a valid frame.
template <class T>
struct parsed {
  status state = status::need_more;
  T value{};                ///< valid when `state == complete`; views point into the buffer.
  std::size_t size = 0;     ///< complete: bytes the frame takes, final LF included.
  std::size_t need = 0;     ///< need_more: `buf` must hold at least this many bytes for the
                            ///< next try to get further (a lower bound; never below size()+1).
  errc error{};             ///< valid when `state == error`.
  std::string_view detail;  ///< static text saying what was wrong.
};

/// The parsed command line of a request: `NAME [SP ENCODING] [SP LENGTH] *(SP KEY=VALUE) LF`.
struct request_head {
  std::string_view name;
  encoding enc = encoding::bin;
  std::optional<std::size_t> length;         ///< absent: no body, or a line body for line commands.
  std::optional<std::uint64_t> id;           ///< `id=N`, echoed in the reply.
  std::optional<std::uint32_t> deadline_ms;  ///< `deadline-ms=N`, relative to receipt.
};

/// A whole request as it sits in the receive buffer; views point into that buffer.
struct request {
  request_head head;
  std::string_view body;
  bool line_form = false;  ///< body came as a line (no LENGTH): the reply is one bare line.
};

using head_parse = parsed<request_head>;
using request_parse = parsed<request>;
using line_parse = parsed<std::string_view>;  ///< the line without CR/LF.

/// How the body of a command is delimited, as the endpoint's registry knows it.
enum class body_rule : std::uint8_t {
  framed,     ///< LENGTH bytes, or no body when LENGTH is absent.
  line,       ///< LENGTH bytes, or the next line when LENGTH is absent (line commands).
  head_only,  ///< stop after the command line: a stream handler reads the rest itself.
};

// A request is parsed in two steps, so that the caller looks its handler up once, between
// them, and wire never needs to know the registry:
//   skip_blank_lines → parse_request_head → (look up the name: its body_rule)
//   → parse_request_body.
// Both parsers are pure: the same bytes give the same answer whatever the split they arrived in.

/// Bytes of complete blank lines (LF or CR LF) at the start of `buf`: `nc` users may end a
/// body with an extra newline, and these are skipped between requests.
[[nodiscard]] std::size_t skip_blank_lines(std::string_view buf) noexcept;

/// Parses the command line at the start of `buf`. On `complete`, `size` is the line's bytes
/// including LF.
[[nodiscard]] head_parse parse_request_head(std::string_view buf, const limits& lim);

/// Takes the body of the request whose command line `head` was parsed from the start of the
/// same `buf`, delimited by `rule`. On `complete`, `size` counts the command line too.
[[nodiscard]] request_parse parse_request_body(std::string_view buf, const head_parse& head,
                                               body_rule rule, const limits& lim);

/// Finds one LF-terminated line (CR before LF is dropped) of at most `max_line` bytes.
[[nodiscard]] line_parse parse_line(std::string_view buf, std::size_t max_line);

/// A reply as received: `OK LENGTH [id=N] LF BODY LF` or `ERR CODE LENGTH [id=N] LF MSG LF`.
struct reply {
  bool ok = true;
  std::string_view code;  ///< wire error name when !ok.
  std::string_view body;  ///< payload, or the error message.
  std::optional<std::uint64_t> id;
};

using reply_parse = parsed<reply>;

/// Parses one framed reply at the start of `buf`.
[[nodiscard]] reply_parse parse_reply(std::string_view buf, const limits& lim);

/// Parses a reply to a line-form request: either a bare line, or an ERR frame.
[[nodiscard]] reply_parse parse_line_reply(std::string_view buf, const limits& lim);

// ---- formatting: every function appends to `out` (a reused buffer: no allocation once warm).

/// `NAME [json] LENGTH [id=N] [deadline-ms=N] LF BODY`
void append_request(std::string& out, std::string_view name, encoding enc, std::string_view body,
                    std::optional<std::uint64_t> id = {},
                    std::optional<std::uint32_t> deadline_ms = {});
/// `NAME LF LINE LF`: the line form, for line commands.
void append_line_request(std::string& out, std::string_view name, std::string_view line);
/// `OK LENGTH [id=N] LF BODY LF`
void append_ok(std::string& out, std::string_view body, std::optional<std::uint64_t> id = {});
/// `ERR CODE LENGTH [id=N] LF MESSAGE LF`
void append_error(std::string& out, errc code, std::string_view message,
                  std::optional<std::uint64_t> id = {});
/// `LINE LF`: the reply to a line-form request of a line command.
void append_line(std::string& out, std::string_view line);

/// True if the space-separated `features` (a HELLO body or its reply, PROTOCOL.md §10) hold the
/// token `feature`, or a `feature=VALUE` token.
[[nodiscard]] bool has_feature(std::string_view features, std::string_view feature) noexcept;

/// True if `name` is a valid command name: 1-64 bytes of ASCII letters, digits, `_ - . : /`.
[[nodiscard]] bool valid_command_name(std::string_view name) noexcept;

}  // namespace cmdwire::wire
