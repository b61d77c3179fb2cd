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

}  // namespace cmdwire::cli
