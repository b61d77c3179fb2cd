// Typed input to request bodies (client/request_build.hpp).
#include "client/request_build.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "client/json_pretty.hpp"
#include "cmdwire/detail/rapidjson.hpp"
namespace rj = cmdwire::detail::rj;

namespace cmdwire::cli {

namespace {

/// Quoted in a message: at most this much of what was typed.
constexpr std::size_t max_quote = 40;

std::string quote(std::string_view text) {
  if (text.size() <= max_quote) return fmt::format("'{}'", text);
  return fmt::format("'{}…' ({} bytes)", text.substr(0, max_quote), text.size());
}

/// The object `--attr` builds: a leaf holds its value as compact JSON, an inner node the
/// members that dotted keys gave it, in the order they were first named.
struct attr_node {
  std::optional<std::string> json;
  std::vector<std::pair<std::string, attr_node>> members;

  attr_node* member(std::string_view key) {
    for (auto& [k, n] : members) {
      if (k == key) return &n;
    }
    return nullptr;
  }
};

void write_node(rj::Writer<rj::StringBuffer>& w, const attr_node& n) {
  if (n.json) {
    w.RawValue(n.json->data(), n.json->size(), rj::kObjectType);
    return;
  }
  w.StartObject();
  for (const auto& [key, member] : n.members) {
    w.Key(key.data(), static_cast<rj::SizeType>(key.size()));
    write_node(w, member);
  }
  w.EndObject();
}

bool is_integer_text(std::string_view v, bool allow_minus) {
  if (!v.empty() && v.front() == '-' && allow_minus) v.remove_prefix(1);
  return !v.empty() && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
}

/// `v` as the JSON value of a field of shape `s` (nullptr: not known). `what` names the field
/// in messages.
result<std::string> typed_value(std::string_view what, std::string_view v, const schema* s) {
  const auto refuse = [&](std::string why) -> error {
    return make_error(errc::bad_request, fmt::format("{}: {}", what, why));
  };
  using k = schema::kind;
  switch (s == nullptr ? k::other : s->type) {
    case k::integer: {
      // Numbers go as JSON numbers whatever the format: proto3 JSON takes int64 as either.
      const bool is_unsigned = s->format.starts_with('u');
      if (!is_integer_text(v, !is_unsigned)) {
        return refuse(fmt::format("{} is not {} ({})", quote(v),
                                  is_unsigned ? "an unsigned integer" : "an integer",
                                  s->format.empty() ? "integer" : s->format));
      }
      // JSON has no leading zeros: 007 goes as 7.
      std::string digits(v);
      const std::size_t sign = digits.starts_with('-') ? 1 : 0;
      const auto nonzero = digits.find_first_not_of('0', sign);
      digits.erase(sign, (nonzero == std::string::npos ? digits.size() - 1 : nonzero) - sign);
      if (digits == "-0") digits = "0";
      return digits;
    }
    case k::number: {
      const auto json = compact_json(v);
      if (!json || json->empty() ||
          !(json->front() == '-' || (json->front() >= '0' && json->front() <= '9'))) {
        return refuse(fmt::format("{} is not a number", quote(v)));
      }
      return *json;
    }
    case k::boolean:
      if (v != "true" && v != "false") {
        return refuse(fmt::format("{} is not a boolean: write true or false", quote(v)));
      }
      return std::string(v);
    case k::enumeration:
      if (!s->values.empty() &&
          std::find(s->values.begin(), s->values.end(), v) == s->values.end() &&
          !is_integer_text(v, true)) {
        return refuse(fmt::format("{} is not one of {}", quote(v), fmt::join(s->values, ", ")));
      }
      return is_integer_text(v, true) ? std::string(v) : json_value_of(v);
    case k::string:
    case k::bytes:
      return json_value_of(v);
    case k::none:
      return refuse("takes no value");
    case k::object:
    case k::map:
      return refuse(
          fmt::format("is an object: give its members as {}.NAME=VALUE, or all of it "
                      "as {}:=JSON",
                      what, what));
    case k::array:
      return refuse(fmt::format("is an array: give it as {}:=[...]", what));
    case k::ref:
    case k::other:
      break;
  }
  // Shape unknown: JSON if it is JSON, else a string.
  if (auto json = compact_json(v)) return *json;
  return json_value_of(v);
}

/// Adds one `KEY=VALUE` or `KEY:=JSON` to `root`, typed by `request` (nullptr: no schema).
result<void> add_attr(std::string_view command, std::string_view attr, attr_node& root,
                      const command_info* info) {
  const auto eq = attr.find('=');
  if (eq == std::string_view::npos) {
    return make_error(
        errc::bad_request,
        fmt::format("attribute {} has no '=': write KEY=VALUE or KEY:=JSON", quote(attr)));
  }
  const bool raw = eq > 0 && attr[eq - 1] == ':';
  const std::string_view key = attr.substr(0, raw ? eq - 1 : eq);
  const std::string_view value = attr.substr(eq + 1);

  const bool schema_known = info != nullptr && info->request != nullptr;
  const schema* shape = schema_known ? info->resolve(info->request.get()) : nullptr;
  attr_node* node = &root;
  std::string path;  // the key so far, for messages
  for (std::size_t start = 0;;) {
    const auto dot = key.find('.', start);
    const std::string_view segment =
        key.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (segment.empty()) {
      return make_error(errc::bad_request,
                        fmt::format("attribute {} has an empty key or key part: write "
                                    "KEY=VALUE, KEY.SUBKEY=VALUE or KEY:=JSON",
                                    quote(attr)));
    }
    const std::string parent = path;
    if (!path.empty()) path += '.';
    path += segment;

    if (shape != nullptr) {
      switch (shape->type) {
        case schema::kind::object: {
          const schema* f = shape->field(segment);
          if (f == nullptr) {
            return make_error(
                errc::bad_request,
                fmt::format(
                    "{} has no field '{}'{}: valid fields are {}", command, path,
                    parent.empty() ? "" : fmt::format(" ('{}' has no '{}')", parent, segment),
                    shape->fields.empty() ? "(none)" : shape->field_list()));
          }
          // An unresolvable ref is taken as any JSON from here on.
          shape = info->resolve(f);
          break;
        }
        case schema::kind::map:
          shape = info->resolve(shape->items.get());
          break;
        case schema::kind::other:
          shape = nullptr;
          break;
        default:
          return make_error(
              errc::bad_request,
              fmt::format("{}: '{}' is {} {}, not an object: it has no '{}'", command, parent,
                          shape->type_word == "integer" || shape->type_word == "enum" ? "an" : "a",
                          shape->type_word, segment));
      }
    }

    attr_node* next = node->member(segment);
    const bool last = dot == std::string_view::npos;
    if (next != nullptr && (last || next->json)) {
      return make_error(errc::bad_request, fmt::format("'{}' is given twice (attribute {})",
                                                       last ? path : parent, quote(attr)));
    }
    if (next == nullptr) {
      node->members.emplace_back(std::string(segment), attr_node{});
      next = &node->members.back().second;
    }
    node = next;
    if (last) break;
    start = dot + 1;
  }

  if (raw) {
    auto json = compact_json(value);
    if (!json) {
      return make_error(errc::bad_request,
                        fmt::format("{}:= needs JSON, and {} is not (a string is {}=TEXT or "
                                    "{}:='\"TEXT\"')",
                                    path, quote(value), path, path));
    }
    node->json = std::move(*json);
    return {};
  }
  auto json = typed_value(fmt::format("{} field '{}'", command, path), value,
                          schema_known ? shape : nullptr);
  if (!json) return json.error();
  node->json = std::move(*json);
  return {};
}

}  // namespace

result<std::string> json_from_attrs(std::string_view command, const std::vector<std::string>& attrs,
                                    const command_info* info) {
  if (info != nullptr && info->request != nullptr && !info->takes_fields()) {
    return make_error(errc::bad_request,
                      fmt::format("{} takes {}, not an object with fields: send it with --data "
                                  "or --json instead of --attr",
                                  command,
                                  info->request->type == schema::kind::none
                                      ? "no body"
                                      : fmt::format("a {} body", info->request->type_word)));
  }
  attr_node root;
  for (const auto& attr : attrs) {
    if (auto ok = add_attr(command, attr, root, info); !ok) return ok.error();
  }
  rj::StringBuffer out;
  rj::Writer<rj::StringBuffer> writer(out);
  write_node(writer, root);
  return std::string(out.GetString(), out.GetSize());
}

result<request_body> body_from_text(std::string_view command, std::string_view text,
                                    const command_info* info) {
  // Nothing typed: an empty body, as `cmdwire call NAME` sends.
  if (text.empty()) return request_body{};
  const auto as_json = [&]() -> result<request_body> {
    auto json = compact_json(text);
    if (!json) {
      return make_error(errc::bad_body,
                        fmt::format("{} takes a JSON body{}, and {} is not valid JSON", command,
                                    info != nullptr && info->takes_fields()
                                        ? fmt::format(" (fields: {})", info->request->field_list())
                                        : "",
                                    quote(text)));
    }
    return request_body{std::move(*json), wire::encoding::json};
  };
  if (info == nullptr || info->request == nullptr) {
    // No shape known: a JSON object or array goes as JSON, anything else as the bytes typed.
    if ((text.front() == '{' || text.front() == '[') && compact_json(text)) return as_json();
    return request_body{std::string(text), wire::encoding::bin};
  }
  if (info->form == "stream") {
    return make_error(errc::bad_body,
                      fmt::format("{} is a stream command: it needs its own client (cmdwire "
                                  "subscribe, say)",
                                  command));
  }
  switch (info->request->type) {
    case schema::kind::none:
      return make_error(errc::bad_body,
                        fmt::format("{} takes no body: send just {}", command, command));
    case schema::kind::string:
    case schema::kind::bytes:
      return request_body{std::string(text), wire::encoding::bin};
    default:
      return as_json();
  }
}

result<request_line> split_request_line(std::string_view line) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!line.empty() && blank(line.front())) line.remove_prefix(1);
  while (!line.empty() && blank(line.back())) line.remove_suffix(1);
  const auto end = std::find_if(line.begin(), line.end(), blank);
  request_line r;
  r.name = line.substr(0, static_cast<std::size_t>(end - line.begin()));
  r.body = line.substr(r.name.size());
  while (!r.body.empty() && blank(r.body.front())) r.body.remove_prefix(1);
  if (!wire::valid_command_name(r.name)) {
    return make_error(
        errc::bad_request,
        fmt::format("{} is not a command name (1-64 letters, digits, _ - . : /)", quote(r.name)));
  }
  return r;
}

std::string error_word(const cmdwire::error& e) {
  if (e.code.category() == cmdwire::error_category()) {
    const auto code = static_cast<errc>(e.code.value());
    if (const auto wire = wire_name(code); !wire.empty()) return std::string(wire);
    switch (code) {
      case errc::protocol_error:
        return "protocol-error";
      case errc::timeout:
        return "timeout";
      case errc::connection_lost:
        return "connection-lost";
      case errc::not_connected:
        return "not-connected";
      case errc::bad_address:
        return "bad-address";
      default:
        break;
    }
  }
  return e.code.message();
}

}  // namespace cmdwire::cli
