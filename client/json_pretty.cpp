// Re-indents JSON reply bodies with the rapidjson that cereal uses: a SAX reader feeding a
// pretty writer, so no DOM is built and nothing recurses however deep the input nests.
#include "client/json_pretty.hpp"

#include <fmt/format.h>

#include "cmdwire/detail/rapidjson.hpp"
namespace rj = cmdwire::detail::rj;

#include <algorithm>
#include <cstddef>
#include <exception>
#include <iterator>

namespace cmdwire::cli {

namespace {

/// A pretty writer that writes numbers exactly as they came (parsing them to double and back
/// would turn 12345678901234567890 into 1.2345678901234567e19, and rapidjson's own RawNumber
/// quotes them) and gives up past `max_bytes`: indentation grows with depth, so a reply of a
/// million nested brackets would otherwise pretty-print to a terabyte.
template <class Base>
class bounded_writer : public Base {
 public:
  using Ch = typename Base::Ch;
  bounded_writer(rj::StringBuffer& out, std::size_t max_bytes)
      : Base(out), out_(out), max_bytes_(max_bytes) {}

  bool Null() { return Base::Null() && fits(); }
  bool Bool(bool b) { return Base::Bool(b) && fits(); }
  bool RawNumber(const Ch* str, rj::SizeType length, bool /*copy*/) {
    return Base::RawValue(str, length, rj::kNumberType) && fits();
  }
  bool String(const Ch* str, rj::SizeType length, bool copy) {
    return Base::String(str, length, copy) && fits();
  }
  bool Key(const Ch* str, rj::SizeType length, bool copy) {
    return Base::Key(str, length, copy) && fits();
  }
  bool StartObject() { return Base::StartObject() && fits(); }
  bool EndObject(rj::SizeType members) { return Base::EndObject(members) && fits(); }
  bool StartArray() { return Base::StartArray() && fits(); }
  bool EndArray(rj::SizeType elements) { return Base::EndArray(elements) && fits(); }

 private:
  [[nodiscard]] bool fits() const { return out_.GetSize() <= max_bytes_; }

  rj::StringBuffer& out_;
  std::size_t max_bytes_;
};

/// Room for ordinary indentation (a 300-deep demo chain grows about 40x), not for abuse.
std::size_t output_budget(std::size_t input) {
  constexpr std::size_t floor = std::size_t{4} << 20;
  return std::max(floor, 16 * input);
}

}  // namespace

namespace {

/// `json` written again by `Writer`; nullopt if it is not valid JSON or outgrows the budget.
template <class Writer>
std::optional<std::string> rewrite(std::string_view json) {
  // MemoryStream reports '\0' at the end of input, so a NUL inside would silently end the
  // document early; raw NUL is never valid JSON anyway.
  if (json.find('\0') != std::string_view::npos) return std::nullopt;
  try {
    rj::MemoryStream in(json.data(), json.size());
    rj::StringBuffer out;
    Writer writer(out, output_budget(json.size()));
    if constexpr (requires { writer.SetIndent(' ', 2); }) writer.SetIndent(' ', 2);
    rj::Reader reader;
    // Iterative: a hostile reply nested 100,000 deep costs heap, not stack. NaN/Inf because
    // cereal writes them for non-finite floats.
    constexpr unsigned flags =
        rj::kParseIterativeFlag | rj::kParseNumbersAsStringsFlag | rj::kParseNanAndInfFlag;
    // Fails on invalid JSON and when the writer runs out of budget; either way the caller
    // prints the body as it came.
    if (!reader.Parse<flags>(in, writer)) return std::nullopt;
    return std::string(out.GetString(), out.GetSize());
  } catch (const std::exception&) {
    // cereal makes rapidjson's internal assertions throw; treat those as "not JSON" too.
    return std::nullopt;
  }
}

}  // namespace

std::optional<std::string> pretty_json(std::string_view json) {
  return rewrite<bounded_writer<rj::PrettyWriter<rj::StringBuffer>>>(json);
}

std::optional<std::string> compact_json(std::string_view json) {
  return rewrite<bounded_writer<rj::Writer<rj::StringBuffer>>>(json);
}

std::string json_value_of(std::string_view bytes) {
  rj::StringBuffer out;
  rj::Writer<rj::StringBuffer, rj::UTF8<>, rj::UTF8<>, rj::CrtAllocator,
             rj::kWriteValidateEncodingFlag>
      writer(out);
  if (bytes.find('\0') == std::string_view::npos &&
      writer.String(bytes.data(), static_cast<rj::SizeType>(bytes.size()))) {
    return {out.GetString(), out.GetSize()};
  }
  // Not UTF-8 text: a JSON string cannot carry it, so the bytes go as hex.
  std::string hex = "{\"hex\":\"";
  for (const unsigned char b : bytes) fmt::format_to(std::back_inserter(hex), "{:02x}", b);
  hex += "\"}";
  return hex;
}

json_scan scan_json(std::string_view text) {
  json_scan scan;
  bool escaped = false;
  for (const char ch : text) {
    if (scan.in_string) {
      if (escaped) {
        escaped = false;
      } else if (ch == '\\') {
        escaped = true;
      } else if (ch == '"') {
        scan.in_string = false;
      }
      continue;
    }
    switch (ch) {
      case '"':
        scan.in_string = true;
        break;
      case '{':
      case '[':
        scan.deepest = std::max(scan.deepest, ++scan.open);
        break;
      case '}':
      case ']':
        if (scan.open == 0) {
          scan.unbalanced = true;
        } else {
          --scan.open;
        }
        break;
      default:
        break;
    }
  }
  return scan;
}

}  // namespace cmdwire::cli
