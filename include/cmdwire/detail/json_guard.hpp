// The one pre-scan every JSON body passes before a JSON parser (rapidjson for cereal types, or
// protobuf's) sees it: bounded nesting, one value, well-formed escapes, and numbers made safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "cmdwire/error.hpp"

namespace cmdwire::detail {

/// Checks `json` in one pass, without recursing, and refuses (bad_body, naming the culprit):
/// - nesting of objects and arrays deeper than `max_depth`;
/// - a body that is visibly not one value: a closer with nothing open, a top-level `,` or `:`
///   (a cheap, early refusal of two values glued together);
/// - a string escape other than \" \\ \/ \b \f \n \r \t \uXXXX, and a \u surrogate that is not
///   part of a high-low pair;
/// - a number that breaks JSON's number grammar, or whose value is beyond the double range
///   (|v| > 1.7976931348623157e308). A value below the smallest double rounds to zero, as
///   strtod does.
///
/// Numbers are where rapidjson 1.1.0 (Debian 12) is unsafe: its full-precision strtod reads
/// out of bounds for more than ~19 significant digits with a tiny exponent. So when `out` is
/// given, the body is appended to it with every number that rapidjson would parse as a double
/// rewritten to the shortest scientific form of its correctly rounded value (at most 17
/// significant digits, a non-zero leading digit, exponent within the double range: inputs
/// rapidjson handles correctly). Integers that fit int64 (negative) or uint64 are copied as they
/// are, since rapidjson reads those exactly and without strtod. Without `out` the body is only
/// checked (protobuf's JSON parser uses the C library's strtod, which needs no rewriting).
/// On failure `out` holds a partial copy; callers discard it.
result<void> guard_json(std::string_view json, std::size_t max_depth, std::string* out = nullptr);

}  // namespace cmdwire::detail
