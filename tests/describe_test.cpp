// DESCRIBE over raw sockets: the list of commands with their forms, the exact JSON for the
// demo's typed commands, and requests built from DESCRIBE's output alone.
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <tuple>

#include "cmdwire/endpoint.hpp"
#include "support/process.hpp"
#include "support/test_server.hpp"

#include "cmdwire/detail/rapidjson.hpp"
namespace rj = cmdwire::detail::rj;

using cmdwire::test::raw_socket;
using cmdwire::test::test_server;

namespace {

std::string read_reply(raw_socket& s) { return cmdwire::test::read_framed_reply(s); }

std::string describe(raw_socket& s, const std::string& name = {}) {
  s.send(name.empty() ? std::string("DESCRIBE\n")
                      : "DESCRIBE " + std::to_string(name.size()) + "\n" + name);
  const std::string reply = read_reply(s);
  REQUIRE(reply.starts_with("OK "));
  return reply.substr(reply.find('\n') + 1);
}

/// A value of the JSON shape `schema` describes, made without knowing the command: integers
/// 0, strings "abc", one element per array and map, null where null is allowed; recursion (a
/// ref) left out.
void build(const rj::Value& schema, rj::Value& out, rj::Document::AllocatorType& a) {
  const std::string type = schema["type"].GetString();
  if (schema.HasMember("nullable") && schema["nullable"].GetBool()) {
    out.SetNull();
  } else if (type == "object") {
    out.SetObject();
    for (const auto& f : schema["fields"].GetArray()) {
      if (std::string(f["schema"]["type"].GetString()) == "ref") continue;
      rj::Value v;
      build(f["schema"], v, a);
      out.AddMember(rj::Value(f["name"].GetString(), a), v, a);
    }
  } else if (type == "array") {
    out.SetArray();
    rj::Value v;
    build(schema["items"], v, a);
    out.PushBack(v, a);
  } else if (type == "map") {
    out.SetObject();
    rj::Value v;
    build(schema["values"], v, a);
    out.AddMember("abc", v, a);
  } else if (type == "pair") {
    out.SetArray();
    rj::Value k;
    rj::Value v;
    build(schema["key"], k, a);
    build(schema["value"], v, a);
    out.PushBack(k, a).PushBack(v, a);
  } else if (type == "integer") {
    out.SetInt(0);
  } else if (type == "number") {
    out.SetDouble(1.5);
  } else if (type == "boolean") {
    out.SetBool(true);
  } else if (type == "bytes") {
    out.SetString("AAEC", a);  // base64 of 3 bytes
  } else if (type == "string") {
    out.SetString("abc", a);
  } else {
    FAIL("a shape the builder does not know: " << type);
  }
}

std::string to_text(const rj::Value& v) {
  rj::StringBuffer out;
  rj::Writer<rj::StringBuffer> w(out);
  v.Accept(w);
  return {out.GetString(), out.GetSize()};
}

}  // namespace

TEST_CASE("DESCRIBE lists every command with its form and idempotence") {
  test_server server;
  raw_socket s(server.port());
  rj::Document doc;
  doc.Parse(describe(s).c_str());
  REQUIRE_FALSE(doc.HasParseError());
  // name -> form, idempotent, request type
  std::map<std::string, std::tuple<std::string, bool, std::string>> seen;
  for (const auto& c : doc["commands"].GetArray()) {
    seen[c["name"].GetString()] = {c["form"].GetString(), c["idempotent"].GetBool(),
                                   c.HasMember("request") ? c["request"]["type"].GetString() : ""};
  }
  const std::map<std::string, std::tuple<std::string, bool, std::string>> expected{
      {"COMMANDS", {"framed", false, "none"}},  {"DAYTIME", {"framed", false, "none"}},
      {"DESCRIBE", {"framed", false, "bytes"}}, {"ECHO", {"framed", true, "bytes"}},
      {"HASH", {"line", false, "bytes"}},       {"HEALTH", {"framed", false, "none"}},
      {"INCR", {"framed", false, "bytes"}},     {"NAP", {"framed", false, "bytes"}},
      {"PING", {"framed", true, "none"}},       {"PROTO", {"framed", false, "object"}},
      {"PUBLISH", {"line", false, ""}},         {"REVERSE", {"stream", false, ""}},
      {"SLEEP", {"line", false, "bytes"}},      {"STATS", {"framed", false, "none"}},
      {"STRING", {"line", false, "bytes"}},     {"STRUCT", {"framed", false, "object"}},
      {"SUBSCRIBE", {"stream", false, ""}},     {"TALLY", {"framed", true, "bytes"}},
      {"THROW", {"framed", false, "bytes"}},
  };
  CHECK(seen == expected);
  for (const auto& c : doc["commands"].GetArray()) {
    const std::string name = c["name"].GetString();
    // Every demo command documents itself; the test-only ones do not.
    if (name == "PING" || name == "STRUCT" || name == "PROTO" || name == "HASH") {
      CHECK(c.HasMember("doc"));
    }
  }
}

TEST_CASE("DESCRIBE STRUCT is exactly its expected JSON") {
  test_server server;
  raw_socket s(server.port());
  CHECK(
      describe(s, "STRUCT") ==
      R"json({"commands":[{"name":"STRUCT","form":"framed","idempotent":false,"doc":"A recursive ComplexData (cereal); answers its Summary: depth, map entries, bytes of p, and the s of each level joined with /","request":{"type":"object","name":"cmdwire::demo::ComplexData","fields":[{"name":"n","schema":{"type":"integer","format":"int64"}},{"name":"s","schema":{"type":"string"}},{"name":"m","schema":{"type":"map","keys":{"type":"string"},"values":{"type":"integer","format":"int32"}}},{"name":"p","schema":{"type":"array","items":{"type":"integer","format":"uint8"}}},{"name":"c","schema":{"type":"ref","name":"cmdwire::demo::ComplexData","nullable":true}}]},"response":{"type":"object","name":"cmdwire::demo::Summary","fields":[{"name":"depth","schema":{"type":"integer","format":"uint32"}},{"name":"entries","schema":{"type":"integer","format":"uint64"}},{"name":"bytes","schema":{"type":"integer","format":"uint64"}},{"name":"names","schema":{"type":"string"}}]},"example":{"n":0,"s":"","m":{},"p":[],"c":null}}]})json");
}

TEST_CASE("DESCRIBE PROTO gives proto3 JSON shapes, an example and the .proto text") {
  test_server server;
  raw_socket s(server.port());
  rj::Document doc;
  doc.Parse(describe(s, "PROTO").c_str());
  REQUIRE_FALSE(doc.HasParseError());
  const rj::Value& c = doc["commands"][0];
  CHECK(to_text(c["request"]) ==
        R"({"type":"object","name":"cmdwire.demo.pb.Complex","fields":[)"
        R"({"name":"n","schema":{"type":"integer","format":"int64"}},)"
        R"({"name":"s","schema":{"type":"string"}},)"
        R"({"name":"m","schema":{"type":"map","keys":{"type":"string"},)"
        R"("values":{"type":"integer","format":"int64"}}},)"
        R"({"name":"p","schema":{"type":"bytes","format":"base64"}},)"
        R"({"name":"c","schema":{"type":"ref","name":"cmdwire.demo.pb.Complex"}}]})");
  CHECK(to_text(c["example"]) == R"({"n":"0","s":"","m":{},"p":""})");
  const std::string proto = c["proto"].GetString();
  CHECK_THAT(proto, Catch::Contains("message Complex {") &&
                        Catch::Contains("map<string, int64> m = 3;") &&
                        Catch::Contains("message Summary {"));
}

TEST_CASE("a raw-socket client builds valid STRUCT and PROTO requests from DESCRIBE alone") {
  test_server server;
  raw_socket s(server.port());
  for (const std::string name : {"PROTO", "STRUCT"}) {
    rj::Document doc;
    doc.Parse(describe(s, name).c_str());
    REQUIRE_FALSE(doc.HasParseError());
    rj::Value request;
    build(doc["commands"][0]["request"], request, doc.GetAllocator());
    const std::string body = to_text(request);
    INFO(name << " " << body);
    s.send(name + " json " + std::to_string(body.size()) + "\n" + body);
    const std::string reply = read_reply(s);
    REQUIRE(reply.starts_with("OK "));
    rj::Document summary;
    summary.Parse(reply.substr(reply.find('\n') + 1).c_str());
    REQUIRE_FALSE(summary.HasParseError());
    // proto3 JSON writes 64-bit integers as strings.
    const auto u64 = [](const rj::Value& v) {
      return v.IsString() ? std::stoull(v.GetString()) : v.GetUint64();
    };
    CHECK(u64(summary["depth"]) == 1);
    CHECK(u64(summary["entries"]) == 1);
    CHECK(u64(summary["bytes"]) == (name == "PROTO" ? 3 : 1));
    CHECK(summary["names"].GetString() == std::string("abc"));
  }
}

TEST_CASE("DESCRIBE of an unknown name, and DESCRIBE switched off") {
  {
    test_server server;
    raw_socket s(server.port());
    s.send("DESCRIBE 4\nNOPE");
    CHECK(read_reply(s) == "ERR unknown-command 29\nno command 'NOPE' to describe");
  }
  cmdwire::endpoint_options options;
  options.builtins.describe = false;
  test_server server(options);
  raw_socket s(server.port());
  s.send("DESCRIBE\n");
  CHECK(read_reply(s).starts_with("ERR unknown-command "));
}

TEST_CASE("cmdwire list and cmdwire describe") {
  using cmdwire::test::bin_path;
  test_server server;
  const auto list =
      cmdwire::test::run({bin_path("cmdwire"), "list", "--connect", server.address()});
  CHECK(list.exit_code == 0);
  CHECK_THAT(list.out, Catch::Contains("\nPING       framed  Answers PONG\n"));
  CHECK_THAT(list.out, Catch::Contains("\nSUBSCRIBE  stream\n"));
  CHECK(list.out.starts_with("COMMANDS "));

  const auto one = cmdwire::test::run(
      {bin_path("cmdwire"), "describe", "STRUCT", "--connect", server.address()});
  CHECK(one.exit_code == 0);
  rj::Document printed;
  printed.Parse(one.out.c_str());
  REQUIRE_FALSE(printed.HasParseError());
  raw_socket s(server.port());
  CHECK(to_text(printed) == describe(s, "STRUCT"));  // the same JSON, indented

  const auto unknown =
      cmdwire::test::run({bin_path("cmdwire"), "describe", "NOPE", "--connect", server.address()});
  CHECK(unknown.exit_code == 1);
  CHECK_THAT(unknown.err, Catch::Contains("no command 'NOPE' to describe"));
}
