// How the CLI prints replies and per-request errors (`--output pretty|json|raw`), shared by
// `call`, `call --stdin` and the shell.
#pragma once

#include <string>

#include "cmdwire/error.hpp"

namespace cmdwire::cli {

enum class output_mode { pretty, json, raw };

/// `mode` when given, else pretty on a terminal and json otherwise.
[[nodiscard]] output_mode output_or_default(const output_mode* mode);

/// Prints a reply body to stdout: `raw` writes the body's bytes exactly; `json` always writes
/// one valid JSON value and a newline (a JSON body as it is, compacted; anything else as a
/// string); `pretty` indents a JSON body and writes other text with a final newline.
/// `json_reply`: the body was asked for as JSON.
void print_body(const std::string& body, bool json_reply, output_mode mode);

/// Prints a failed request as one line on stdout: `{"error":CODE,"message":TEXT}` in json
/// mode, `ERR CODE MESSAGE` in raw mode, `error: CODE: MESSAGE` in pretty mode.
void print_error_line(const cmdwire::error& e, output_mode mode);

}  // namespace cmdwire::cli
