// DESCRIBE's JSON read into schema trees (client/catalog.hpp).
#include "client/catalog.hpp"

#include <algorithm>

#include "client/json_pretty.hpp"
#include "cmdwire/detail/rapidjson.hpp"
namespace rj = cmdwire::detail::rj;

namespace cmdwire::cli {

namespace {

/// Deeper shapes than this are taken as `other` (any JSON): no real request type nests so
/// deep, and it bounds the recursion below against a hostile reply.
constexpr int max_schema_depth = 64;
/// DESCRIBE replies nested deeper than this are refused before rapidjson builds a DOM (whose
/// destructor recurses).
constexpr int max_describe_nesting = 4 * max_schema_depth;

std::string_view text(const rj::Value& v, const char* key) {
  if (!v.IsObject()) return {};
  const auto it = v.FindMember(key);
  if (it == v.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

schema::kind kind_of(std::string_view word) {
  using k = schema::kind;
  static const std::pair<std::string_view, k> words[] = {
      {"none", k::none},        {"string", k::string}, {"bytes", k::bytes},
      {"integer", k::integer},  {"number", k::number}, {"boolean", k::boolean},
      {"enum", k::enumeration}, {"object", k::object}, {"message", k::object},
      {"array", k::array},      {"map", k::map},       {"ref", k::ref}};
  for (const auto& [w, kind] : words) {
    if (w == word) return kind;
  }
  return k::other;
}

std::shared_ptr<const schema> read_schema(const rj::Value& v, int depth, command_info& info) {
  auto s = std::make_shared<schema>();
  s->type_word = text(v, "type");
  s->type = depth > max_schema_depth ? schema::kind::other : kind_of(s->type_word);
  s->name = text(v, "name");
  s->format = text(v, "format");
  switch (s->type) {
    case schema::kind::object:
      if (v.HasMember("fields") && v["fields"].IsArray()) {
        for (const auto& f : v["fields"].GetArray()) {
          if (!f.IsObject() || text(f, "name").empty() || !f.HasMember("schema")) continue;
          s->fields.emplace_back(std::string(text(f, "name")),
                                 read_schema(f["schema"], depth + 1, info));
        }
      }
      if (!s->name.empty()) info.objects.emplace(s->name, s.get());
      break;
    case schema::kind::array:
      if (v.HasMember("items")) s->items = read_schema(v["items"], depth + 1, info);
      break;
    case schema::kind::map:
      if (v.HasMember("values")) s->items = read_schema(v["values"], depth + 1, info);
      break;
    case schema::kind::enumeration:
      if (v.HasMember("values") && v["values"].IsArray()) {
        for (const auto& e : v["values"].GetArray()) {
          if (e.IsString()) s->values.emplace_back(e.GetString(), e.GetStringLength());
        }
      }
      break;
    default:
      break;
  }
  return s;
}

}  // namespace

const schema* schema::field(std::string_view field) const {
  for (const auto& [name, s] : fields) {
    if (name == field) return s.get();
  }
  return nullptr;
}

std::string schema::field_list() const {
  std::string list;
  for (const auto& f : fields) {
    if (!list.empty()) list += ", ";
    list += f.first;
  }
  return list;
}

const schema* command_info::resolve(const schema* s) const {
  if (s == nullptr || s->type != schema::kind::ref) return s;
  const auto it = objects.find(s->name);
  return it == objects.end() ? nullptr : it->second;
}

bool command_info::takes_fields() const {
  return request != nullptr && request->type == schema::kind::object;
}

const command_info* catalog::find(std::string_view name) const {
  const auto it =
      std::lower_bound(commands.begin(), commands.end(), name,
                       [](const command_info& c, std::string_view n) { return c.name < n; });
  return it != commands.end() && it->name == name ? &*it : nullptr;
}

std::optional<catalog> parse_describe(std::string_view json) {
  const json_scan scan = scan_json(json);
  if (scan.deepest > max_describe_nesting) return std::nullopt;
  rj::Document doc;
  doc.Parse<rj::kParseIterativeFlag>(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("commands") ||
      !doc["commands"].IsArray()) {
    return std::nullopt;
  }
  catalog cat;
  for (const auto& c : doc["commands"].GetArray()) {
    if (text(c, "name").empty()) continue;
    command_info info;
    info.name = text(c, "name");
    info.form = text(c, "form");
    if (c.HasMember("request")) info.request = read_schema(c["request"], 0, info);
    cat.commands.push_back(std::move(info));
  }
  std::sort(cat.commands.begin(), cat.commands.end(),
            [](const command_info& a, const command_info& b) { return a.name < b.name; });
  return cat;
}

std::optional<catalog> fetch_catalog(cmdwire::client& conn, std::string_view name,
                                     std::optional<cmdwire::error>* failed) {
  auto reply = conn.call_raw("DESCRIBE", name);
  if (!reply) {
    if (failed != nullptr) *failed = reply.error();
    return std::nullopt;
  }
  return parse_describe(*reply);
}

}  // namespace cmdwire::cli
