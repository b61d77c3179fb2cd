// Printing replies and per-request errors (client/reply_output.hpp).
#include "client/reply_output.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <optional>

#include "client/json_pretty.hpp"
#include "client/request_build.hpp"

namespace cmdwire::cli {

output_mode output_or_default(const output_mode* mode) {
  if (mode != nullptr) return *mode;
  return ::isatty(STDOUT_FILENO) ? output_mode::pretty : output_mode::json;
}

void print_body(const std::string& body, bool json_reply, output_mode mode) {
  // A body is taken as JSON when it was asked for as JSON, or is an object or array (STATS).
  const bool looks_json =
      json_reply || (!body.empty() && (body.front() == '{' || body.front() == '['));
  switch (mode) {
    case output_mode::raw:
      std::fwrite(body.data(), 1, body.size(), stdout);
      return;
    case output_mode::json: {
      std::optional<std::string> as_json;
      if (looks_json) as_json = compact_json(body);
      fmt::print("{}\n", as_json ? *as_json : json_value_of(body));
      return;
    }
    case output_mode::pretty:
      if (looks_json) {
        if (auto pretty = pretty_json(body)) {
          fmt::print("{}\n", *pretty);
          return;
        }
      }
      std::fwrite(body.data(), 1, body.size(), stdout);
      if (body.empty() || body.back() != '\n') std::fputc('\n', stdout);
      return;
  }
}

void print_error_line(const cmdwire::error& e, output_mode mode) {
  // One line whatever the message holds: newlines would split it into two "replies".
  std::string message = e.message;
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  const std::string word = error_word(e);
  switch (mode) {
    case output_mode::json:
      fmt::print("{{\"error\":{},\"message\":{}}}\n", json_value_of(word), json_value_of(message));
      return;
    case output_mode::raw:
      fmt::print("ERR {} {}\n", word, message);
      return;
    case output_mode::pretty:
      fmt::print("error: {}: {}\n", word, message);
      return;
  }
}

}  // namespace cmdwire::cli
