// protoc-gen-cmdwire: a protoc plugin that writes, for each `foo.proto`, a `foo.cmdwire.h` with
// one cmdwire command descriptor per rpc (name "Service.Method", request, response, doc).
// Usage: protoc --plugin=protoc-gen-cmdwire=PATH --cpp_out=OUT --cmdwire_out=OUT foo.proto
#include <google/protobuf/compiler/code_generator.h>
#include <google/protobuf/compiler/cpp/names.h>
#include <google/protobuf/compiler/plugin.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/io/printer.h>
#include <google/protobuf/io/zero_copy_stream.h>
#include <google/protobuf/stubs/strutil.h>

#include <cstddef>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_set>

namespace {

namespace pb = google::protobuf;
namespace cpp = google::protobuf::compiler::cpp;

// PROTOCOL.md §1: name = 1*64name-char. Proto identifiers and the "." between service and
// method are all name-chars, so only the length can break the grammar.
constexpr std::size_t max_command_name = 64;

/// `name`, or `name_` if it is a C++ keyword, as protoc's C++ generator does for messages.
/// (libprotoc has ResolveKeyword, but in a header Debian cannot compile: cpp/helpers.h needs
/// the uninstalled scc.h.)
std::string resolve_keyword(const std::string& name) {
  static const std::unordered_set<std::string_view> keywords = {
      "alignas",       "alignof",     "and",
      "and_eq",        "asm",         "auto",
      "bitand",        "bitor",       "bool",
      "break",         "case",        "catch",
      "char",          "char8_t",     "char16_t",
      "char32_t",      "class",       "compl",
      "concept",       "const",       "consteval",
      "constexpr",     "constinit",   "const_cast",
      "continue",      "co_await",    "co_return",
      "co_yield",      "decltype",    "default",
      "delete",        "do",          "double",
      "dynamic_cast",  "else",        "enum",
      "explicit",      "export",      "extern",
      "false",         "float",       "for",
      "friend",        "goto",        "if",
      "inline",        "int",         "long",
      "mutable",       "namespace",   "new",
      "noexcept",      "not",         "not_eq",
      "nullptr",       "operator",    "or",
      "or_eq",         "private",     "protected",
      "public",        "register",    "reinterpret_cast",
      "requires",      "return",      "short",
      "signed",        "sizeof",      "static",
      "static_assert", "static_cast", "struct",
      "switch",        "template",    "this",
      "thread_local",  "throw",       "true",
      "try",           "typedef",     "typeid",
      "typename",      "union",       "unsigned",
      "using",         "virtual",     "void",
      "volatile",      "wchar_t",     "while",
      "xor",           "xor_eq"};
  return keywords.contains(name) ? name + "_" : name;
}

/// The C++ type protoc's C++ generator emits for `d`, fully qualified (`::pkg::Outer_Inner`).
std::string cpp_type(const pb::Descriptor* d) {
  std::string name = cpp::QualifiedClassName(d);
  // For google/protobuf/*.proto (the well-known types) libprotoc writes a macro for the
  // namespace, which each .pb.h #undefs at its end: outside, only the real name works.
  const std::string macro = "::PROTOBUF_NAMESPACE_ID::";
  if (name.starts_with(macro)) name = "::google::protobuf::" + name.substr(macro.size());
  return name;
}

/// The rpc's leading comment as one line: each comment line trimmed, joined with single spaces
/// (DESCRIBE and `cmdwire list` show a doc on one line).
std::string doc_of(const pb::MethodDescriptor* m) {
  pb::SourceLocation loc;
  if (!m->GetSourceLocation(&loc)) return {};
  std::istringstream lines(loc.leading_comments);
  std::string doc, line;
  while (std::getline(lines, line)) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;
    const auto last = line.find_last_not_of(" \t\r");
    if (!doc.empty()) doc.push_back(' ');
    doc.append(line, first, last - first + 1);
  }
  return doc;
}

/// Why `m` cannot become a command, or empty if it can.
std::string refusal(const pb::MethodDescriptor* m, const std::string& name) {
  if (m->client_streaming() || m->server_streaming()) {
    const char* kind = !m->client_streaming()  ? "server-streaming"
                       : m->server_streaming() ? "bidirectional-streaming"
                                               : "client-streaming";
    // The descriptor model has framed and line commands only: one request, one reply. Stream
    // handlers (endpoint::handle_stream) are untyped, so no descriptor can describe one.
    return "rpc " + m->full_name() + " is " + kind +
           ", but a cmdwire command takes one request and sends one reply; make it unary";
  }
  if (name.size() > max_command_name) {
    return "rpc " + m->full_name() + ": command name \"" + name + "\" has " +
           std::to_string(name.size()) + " characters, more than cmdwire's limit of " +
           std::to_string(max_command_name) + "; shorten the service or method name";
  }
  return {};
}

class generator final : public pb::compiler::CodeGenerator {
 public:
  // Without this, protoc refuses every proto3 file with an `optional` field for this plugin.
  std::uint64_t GetSupportedFeatures() const override { return FEATURE_PROTO3_OPTIONAL; }

  bool Generate(const pb::FileDescriptor* file, const std::string& parameter,
                pb::compiler::GeneratorContext* context, std::string* error) const override {
    if (!parameter.empty()) {
      *error = "protoc-gen-cmdwire takes no options, got \"" + parameter + "\"";
      return false;
    }
    // Check every rpc before writing anything. protoc prints the error after the file's name.
    for (int s = 0; s < file->service_count(); ++s) {
      const pb::ServiceDescriptor* service = file->service(s);
      std::map<std::string, const pb::MethodDescriptor*> structs;  // C++ name -> its rpc
      for (int i = 0; i < service->method_count(); ++i) {
        const pb::MethodDescriptor* m = service->method(i);
        if (auto why = refusal(m, service->name() + "." + m->name()); !why.empty()) {
          *error = why;
          return false;
        }
        // `new` and `new_` would both be struct new_.
        const auto [other, added] = structs.emplace(resolve_keyword(m->name()), m);
        if (!added) {
          *error = "rpc " + other->second->full_name() + " and rpc " + m->full_name() +
                   " would both be C++ struct " + other->first + "; rename one";
          return false;
        }
      }
    }

    const std::string base = pb::compiler::StripProto(file->name());
    std::unique_ptr<pb::io::ZeroCopyOutputStream> out(context->Open(base + ".cmdwire.h"));
    pb::io::Printer p(out.get(), '$');
    p.Print(
        "// Generated by protoc-gen-cmdwire from $file$. Do not edit.\n"
        "// One cmdwire command descriptor per rpc: name \"Service.Method\", request, response.\n"
        "#pragma once\n\n"
        "#include <string_view>\n\n"
        "#include \"$base$.pb.h\"\n",
        "file", file->name(), "base", base);
    // The files that define the rpcs' message types, when they are not this one (the .pb.h
    // includes them too, but a header should not lean on that).
    std::set<std::string> imports;
    for (int s = 0; s < file->service_count(); ++s) {
      for (int i = 0; i < file->service(s)->method_count(); ++i) {
        const pb::MethodDescriptor* m = file->service(s)->method(i);
        for (const pb::Descriptor* type : {m->input_type(), m->output_type()}) {
          if (type->file() != file) {
            imports.insert(pb::compiler::StripProto(type->file()->name()));
          }
        }
      }
    }
    for (const auto& import : imports) p.Print("#include \"$import$.pb.h\"\n", "import", import);

    // C++17 nested namespace: the package's namespace (none without a package), then the
    // service's. Package a.b is namespace a::b, as in the .pb.h (which resolves no keywords in
    // packages either).
    std::string package_ns;
    for (const char c : file->package()) {
      if (c == '.') {
        package_ns += "::";
      } else {
        package_ns += c;
      }
    }
    if (!package_ns.empty()) package_ns += "::";
    for (int s = 0; s < file->service_count(); ++s) {
      const pb::ServiceDescriptor* service = file->service(s);
      p.Print("\nnamespace $ns$ {\n", "ns", package_ns + resolve_keyword(service->name()));
      for (int i = 0; i < service->method_count(); ++i)
        print_method(p, service, service->method(i));
      p.Print("\n}  // namespace $ns$\n", "ns", package_ns + resolve_keyword(service->name()));
    }
    if (p.failed()) {
      *error = "cannot write " + base + ".cmdwire.h";
      return false;
    }
    return true;
  }

 private:
  static void print_method(pb::io::Printer& p, const pb::ServiceDescriptor* service,
                           const pb::MethodDescriptor* m) {
    p.Print(
        "\n/// rpc $full$\n"
        "struct $struct$ {\n"
        "  static constexpr std::string_view name = \"$name$\";\n"
        "  using request = $request$;\n"
        "  using response = $response$;\n",
        "full", m->full_name(), "struct", resolve_keyword(m->name()), "name",
        service->name() + "." + m->name(), "request", cpp_type(m->input_type()), "response",
        cpp_type(m->output_type()));
    // CEscape leaves printable ASCII except " ' \ as it is and writes every other byte as an
    // octal escape, so the literal holds exactly the comment's bytes.
    if (const std::string doc = doc_of(m); !doc.empty()) {
      p.Print("  static constexpr std::string_view doc = \"$doc$\";\n", "doc", pb::CEscape(doc));
    }
    // NO_SIDE_EFFECTS implies IDEMPOTENT (descriptor.proto): both may be sent twice.
    if (m->options().idempotency_level() != pb::MethodOptions::IDEMPOTENCY_UNKNOWN) {
      p.Print("  static constexpr bool idempotent = true;\n");
    }
    p.Print("};\n");
  }
};

}  // namespace

int main(int argc, char* argv[]) {
  generator gen;
  return pb::compiler::PluginMain(argc, argv, &gen);
}
