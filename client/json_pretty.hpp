// Pretty-printing of JSON reply bodies for the CLI (rapidjson, as bundled with cereal).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cmdwire::cli {

/// `json` re-indented with 2 spaces; nullopt if it is not valid JSON (print it as it came).
[[nodiscard]] std::optional<std::string> pretty_json(std::string_view json);

}  // namespace cmdwire::cli
