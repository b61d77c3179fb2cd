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

struct request_parse {
  status state = status::need_more;
  request req;              ///< valid when `state == complete`.
  std::size_t size = 0;     ///< bytes consumed (blank lines before the request included).
  errc error{};             ///< valid when `state == error`.
  std::string_view detail;  ///< static text saying what was wrong.
};

/// How the body of a command is delimited, as the endpoint's registry knows it.
enum class body_rule : std::uint8_t {
  framed,     ///< LENGTH bytes, or no body when LENGTH is absent.
  line,       ///< LENGTH bytes, or the next line when LENGTH is absent (line commands).
  head_only,  ///< stop after the command line: a stream handler reads the rest itself.
};

/// Parses one request at the start of `buf`. Blank lines before it are skipped (they count
/// in `size`, also when the request is still incomplete), so `nc` users may end a body with
/// an extra newline. `rule_for(name)` is called once per complete command line and returns a
/// body_rule (or bool: true means body_rule::line).
/// Pure: the same bytes give the same answer whatever the split they arrived in.
template <class RuleFor>
[[nodiscard]] request_parse parse_request(std::string_view buf, const limits& lim,
                                          RuleFor&& rule_for);

/// Parses only the command line at the start of `buf` (no blank-line skipping).
/// On `complete`, `line_size` is the number of bytes of the line including LF.
struct head_parse {
  status state = status::need_more;
  request_head head;
  std::size_t line_size = 0;
  errc error{};
  std::string_view detail;
};
[[nodiscard]] head_parse parse_request_head(std::string_view buf, const limits& lim);

/// Finds one LF-terminated line (CR before LF is dropped) of at most `max_line` bytes.
struct line_parse {
  status state = status::need_more;
  std::string_view line;  ///< without CR/LF.
  std::size_t size = 0;   ///< bytes consumed including LF.
};
[[nodiscard]] line_parse parse_line(std::string_view buf, std::size_t max_line);

/// A reply as received: `OK LENGTH [id=N] LF BODY LF` or `ERR CODE LENGTH [id=N] LF MSG LF`.
struct reply {
  bool ok = true;
  std::string_view code;  ///< wire error name when !ok.
  std::string_view body;  ///< payload, or the error message.
  std::optional<std::uint64_t> id;
};

struct reply_parse {
  status state = status::need_more;
  reply rep;
  std::size_t size = 0;
  errc error{};
  std::string_view detail;
};

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

/// True if `name` is a valid command name: 1-64 bytes of ASCII letters, digits, `_ - . : /`.
[[nodiscard]] bool valid_command_name(std::string_view name) noexcept;

}  // namespace cmdwire::wire

#include "cmdwire/detail/wire_impl.hpp"
