// Request bodies from what people type: `call --attr k=v` attributes, and the `NAME BODY`
// lines of `call --stdin` and the shell, shaped by the command's DESCRIBE when there is one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "client/catalog.hpp"
#include "cmdwire/error.hpp"
#include "cmdwire/wire.hpp"

namespace cmdwire::cli {

/// A body ready to send, framed, with its encoding.
struct request_body {
  std::string bytes;
  wire::encoding enc = wire::encoding::bin;
};

/// The JSON object that `--attr` arguments describe (README, "--attr"): `k=v` typed by the
/// field's schema in `info` (a string without one), `k:=JSON` as JSON, `a.b=v` nested. `info`
/// is the command's DESCRIBE, nullptr when there is none: then `k=v` is JSON if `v` is valid
/// JSON, else a string. Errors (errc::bad_request) name the attribute and, for an unknown
/// field, list the valid ones.
[[nodiscard]] result<std::string> json_from_attrs(std::string_view command,
                                                  const std::vector<std::string>& attrs,
                                                  const command_info* info);

/// The body of a typed `NAME BODY` request (README, "--stdin"): JSON for a command whose
/// request is JSON-shaped, the text as it is for string and line commands, nothing for those
/// that take none; without `info`, JSON when the text is a JSON object or array, else bytes.
/// Errors (errc::bad_body) say what the command takes.
[[nodiscard]] result<request_body> body_from_text(std::string_view command, std::string_view text,
                                                  const command_info* info);

/// A request line split into its name and body: `NAME` or `NAME BODY` (one space or tab
/// between; surrounding blanks dropped). Error (errc::bad_request) if the name is not a
/// command name (PROTOCOL.md §1).
struct request_line {
  std::string_view name;
  std::string_view body;
};
[[nodiscard]] result<request_line> split_request_line(std::string_view line);

/// "bad-body", "timeout", "connection-lost"...: the word for an error, on the wire or local.
[[nodiscard]] std::string error_word(const cmdwire::error& e);

}  // namespace cmdwire::cli
