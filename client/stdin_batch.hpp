// `cmdwire call [NAME] --stdin`: requests read from standard input, one per line, pipelined
// over one connection, and their replies printed one per line in input order.
#pragma once

#include <optional>
#include <string>

#include "client/reply_output.hpp"
#include "cmdwire/client.hpp"
#include "cmdwire/wire.hpp"

namespace cmdwire::cli {

/// Reads standard input to its end and sends each line as a request on `conn`: with `name`
/// empty a line is `NAME` or `NAME BODY` (blank lines skipped), else every line is a BODY for
/// `name`. Bodies are shaped by DESCRIBE (client/request_build.hpp) unless `enc` forces an
/// encoding. At most a window of requests is in flight; when standard input has nothing ready,
/// every reply so far is printed and flushed before it blocks, so a program feeding lines one
/// at a time gets each answer. Throws `failure` with exit 1 if any request failed, 3 if the
/// connection was lost (the lines not sent are not read).
void run_stdin_batch(cmdwire::client& conn, const std::string& name,
                     std::optional<wire::encoding> enc, output_mode mode);

}  // namespace cmdwire::cli
