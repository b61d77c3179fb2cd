// DESCRIBE's pieces that need no templates: schema nodes as JSON, demangled type names, and
// protobuf descriptors walked into the same shapes.
#include "cmdwire/describe.hpp"

#include <cxxabi.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <cstdlib>
#include <memory>

#include "cmdwire/detail/rapidjson.hpp"
namespace rj = cmdwire::detail::rj;

namespace cmdwire::detail {

namespace {

using writer = rj::Writer<rj::StringBuffer>;

void string(writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rj::SizeType>(s.size()));
}

void write_node(writer& w, const schema_node& n) {
  w.StartObject();
  w.Key("type");
  string(w, n.type);
  if (!n.format.empty()) {
    w.Key("format");
    string(w, n.format);
  }
  if (!n.name.empty()) {
    w.Key("name");
    string(w, n.name);
  }
  if (n.nullable) {
    w.Key("nullable");
    w.Bool(true);
  }
  if (n.type == "object" || n.type == "message") {
    w.Key("fields");
    w.StartArray();
    for (const schema_node& f : n.children) {
      w.StartObject();
      w.Key("name");
      string(w, f.key);
      w.Key("schema");
      write_node(w, f);
      w.EndObject();
    }
    w.EndArray();
  } else if (n.type == "array" && !n.children.empty()) {
    w.Key("items");
    write_node(w, n.children.front());
  } else if (n.type == "map" && n.children.size() == 2) {
    w.Key("keys");
    write_node(w, n.children[0]);
    w.Key("values");
    write_node(w, n.children[1]);
  } else if (n.type == "pair" && n.children.size() == 2) {
    w.Key("key");
    write_node(w, n.children[0]);
    w.Key("value");
    write_node(w, n.children[1]);
  } else if (n.type == "enum") {
    w.Key("values");
    w.StartArray();
    for (const auto& v : n.values) string(w, v);
    w.EndArray();
  }
  w.EndObject();
}

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

schema_node field_schema(const FieldDescriptor& f, std::vector<const Descriptor*>& open);

schema_node message_schema(const Descriptor& d, std::vector<const Descriptor*>& open) {
  schema_node n;
  n.name = d.full_name();
  for (const Descriptor* o : open) {
    if (o == &d) {
      n.type = "ref";
      return n;
    }
  }
  n.type = "object";
  open.push_back(&d);
  for (int i = 0; i < d.field_count(); ++i) {
    const FieldDescriptor& f = *d.field(i);
    n.children.push_back(field_schema(f, open));
    n.children.back().key = f.json_name();
  }
  open.pop_back();
  return n;
}

schema_node scalar_schema(const FieldDescriptor& f, std::vector<const Descriptor*>& open) {
  schema_node n;
  switch (f.type()) {
    case FieldDescriptor::TYPE_BOOL:
      n.type = "boolean";
      break;
    case FieldDescriptor::TYPE_STRING:
      n.type = "string";
      break;
    case FieldDescriptor::TYPE_BYTES:
      n.type = "bytes";
      n.format = "base64";  // proto3 JSON
      break;
    case FieldDescriptor::TYPE_DOUBLE:
      n.type = "number";
      n.format = "double";
      break;
    case FieldDescriptor::TYPE_FLOAT:
      n.type = "number";
      n.format = "float";
      break;
    case FieldDescriptor::TYPE_ENUM: {
      n.type = "enum";
      n.name = f.enum_type()->full_name();
      for (int i = 0; i < f.enum_type()->value_count(); ++i) {
        n.values.push_back(f.enum_type()->value(i)->name());
      }
      break;
    }
    case FieldDescriptor::TYPE_MESSAGE:
    case FieldDescriptor::TYPE_GROUP:
      return message_schema(*f.message_type(), open);
    default:
      // Every integer type; proto3 JSON writes 64-bit ones as strings and reads either.
      n.type = "integer";
      n.format = f.type_name();
      break;
  }
  return n;
}

schema_node field_schema(const FieldDescriptor& f, std::vector<const Descriptor*>& open) {
  if (f.is_map()) {
    schema_node n;
    n.type = "map";
    n.children.push_back(scalar_schema(*f.message_type()->map_key(), open));
    n.children.push_back(scalar_schema(*f.message_type()->map_value(), open));
    return n;
  }
  if (f.is_repeated()) {
    schema_node n;
    n.type = "array";
    n.children.push_back(scalar_schema(f, open));
    return n;
  }
  return scalar_schema(f, open);
}

}  // namespace

std::string schema_to_json(const schema_node& node) {
  rj::StringBuffer out;
  writer w(out);
  write_node(w, node);
  return {out.GetString(), out.GetSize()};
}

std::string type_name(const std::type_info& type) {
  int status = 0;
  const std::unique_ptr<char, decltype(&std::free)> name(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), &std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(type.name());
}

schema_node protobuf_schema(const google::protobuf::Descriptor& d) {
  std::vector<const Descriptor*> open;
  return message_schema(d, open);
}

std::string protobuf_text(const google::protobuf::Descriptor& d) { return d.DebugString(); }

std::string protobuf_example(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;  // every field, with its default
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(m, &out, options).ok()) return {};
  return out;
}

}  // namespace cmdwire::detail

namespace cmdwire {

std::string to_json(const std::vector<command_description>& commands) {
  rj::StringBuffer out;
  detail::writer w(out);
  const auto raw = [&w](std::string_view json, rj::Type type) {
    w.RawValue(json.data(), json.size(), type);
  };
  w.StartObject();
  w.Key("commands");
  w.StartArray();
  for (const command_description& c : commands) {
    w.StartObject();
    w.Key("name");
    detail::string(w, c.name);
    w.Key("form");
    detail::string(w, c.form);
    w.Key("idempotent");
    w.Bool(c.idempotent);
    if (!c.doc.empty()) {
      w.Key("doc");
      detail::string(w, c.doc);
    }
    if (!c.request_schema.empty()) {
      w.Key("request");
      raw(c.request_schema, rj::kObjectType);
    }
    if (!c.response_schema.empty()) {
      w.Key("response");
      raw(c.response_schema, rj::kObjectType);
    }
    if (!c.example_request.empty()) {
      w.Key("example");
      raw(c.example_request, rj::kObjectType);
    }
    if (!c.proto.empty()) {
      w.Key("proto");
      detail::string(w, c.proto);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return {out.GetString(), out.GetSize()};
}

}  // namespace cmdwire
