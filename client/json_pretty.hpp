// Pretty-printing of JSON reply bodies for the CLI (rapidjson, as bundled with cereal).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cmdwire::cli {

/// `json` re-indented with 2 spaces; nullopt if it is not valid JSON (print it as it came).
[[nodiscard]] std::optional<std::string> pretty_json(std::string_view json);
/// `json` on one line; nullopt if it is not valid JSON.
[[nodiscard]] std::optional<std::string> compact_json(std::string_view json);
/// Any bytes as a JSON value: a string if they are UTF-8 text without NUL, else
/// `{"hex":"..."}`.
[[nodiscard]] std::string json_value_of(std::string_view bytes);

/// What a scan of JSON text finds about its brackets, without validating it: for telling
/// whether typed input is complete, and for refusing nesting before a recursive parser sees it.
struct json_scan {
  int open = 0;             ///< `{` and `[` not closed yet at the end, outside strings
  int deepest = 0;          ///< the most that were open at once
  bool in_string = false;   ///< the text ends inside a string
  bool unbalanced = false;  ///< a closer came without an opener
};
[[nodiscard]] json_scan scan_json(std::string_view text);

}  // namespace cmdwire::cli
