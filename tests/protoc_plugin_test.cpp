// protoc-gen-cmdwire as protoc runs it: the exact headers it writes for the test files in
// tests/proto/ (golden files), and the one-line protoc error for each rpc it cannot map.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "support/process.hpp"

namespace fs = std::filesystem;
using cmdwire::test::bin_path;
using cmdwire::test::run_result;

namespace {

const fs::path proto_dir = CMDWIRE_TEST_PROTO_DIR;

/// A fresh empty folder for protoc's output, removed with everything in it.
struct out_dir {
  fs::path path;
  out_dir() {
    std::string pattern = (fs::temp_directory_path() / "cmdwire-protoc-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~out_dir() { fs::remove_all(path); }
  out_dir(const out_dir&) = delete;
  out_dir& operator=(const out_dir&) = delete;
};

run_result protoc(const std::string& proto, const fs::path& out, const std::string& options = "") {
  return cmdwire::test::run({CMDWIRE_PROTOC,
                             "--plugin=protoc-gen-cmdwire=" + bin_path("protoc-gen-cmdwire"),
                             "--cmdwire_out=" + options + out.string(), "-I" + proto_dir.string(),
                             (proto_dir / proto).string()});
}

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

// The golden files were written by the plugin and read line by line; after a deliberate change
// to the output, regenerate them with the protoc line above and review the diff.
TEST_CASE("protoc-gen-cmdwire writes the expected header for nested and imported types",
          "[protoc-plugin]") {
  for (const std::string name : {"nested", "pkgless"}) {
    INFO(name << ".proto");
    out_dir out;
    const auto r = protoc(name + ".proto", out.path);
    INFO("protoc stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(slurp(out.path / (name + ".cmdwire.h")) ==
          slurp(proto_dir / "golden" / (name + ".cmdwire.h")));
  }
}

TEST_CASE("protoc-gen-cmdwire writes a header for a file without services", "[protoc-plugin]") {
  // cmdwire_protobuf_generate lists the .cmdwire.h as an output of every .proto.
  out_dir out;
  const auto r = protoc("sub/no_service.proto", out.path);
  INFO("protoc stderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string header = slurp(out.path / "sub" / "no_service.cmdwire.h");
  CHECK(header.find("#include \"sub/no_service.pb.h\"\n") != std::string::npos);
  CHECK(header.find("namespace") == std::string::npos);
}

TEST_CASE("protoc-gen-cmdwire refuses what a command cannot express, naming the rpc",
          "[protoc-plugin]") {
  struct refused {
    std::string file;
    std::string message;
  };
  const refused cases[] = {
      {"server_streaming.proto",
       "--cmdwire_out: server_streaming.proto: rpc cmdwire.test.bad.Clock.Watch is "
       "server-streaming, but a cmdwire command takes one request and sends one reply; make it "
       "unary\n"},
      {"client_streaming.proto",
       "--cmdwire_out: client_streaming.proto: rpc cmdwire.test.bad.Clock.Upload is "
       "client-streaming, but a cmdwire command takes one request and sends one reply; make it "
       "unary\n"},
      {"bidi_streaming.proto",
       "--cmdwire_out: bidi_streaming.proto: rpc cmdwire.test.bad.Clock.Chat is "
       "bidirectional-streaming, but a cmdwire command takes one request and sends one reply; "
       "make it unary\n"},
      {"long_name.proto",
       "--cmdwire_out: long_name.proto: rpc "
       "cmdwire.test.bad.AVeryLongServiceNameThatTakesUpMostOfTheBudget.OverTheLimit012345: "
       "command name \"AVeryLongServiceNameThatTakesUpMostOfTheBudget.OverTheLimit012345\" has "
       "65 characters, more than cmdwire's limit of 64; shorten the service or method name\n"},
      {"keyword_clash.proto",
       "--cmdwire_out: keyword_clash.proto: rpc cmdwire.test.bad.Clock.new_ and rpc "
       "cmdwire.test.bad.Clock.new would both be C++ struct new_; rename one\n"},
  };
  for (const auto& c : cases) {
    INFO(c.file);
    out_dir out;
    const auto r = protoc(c.file, out.path);
    CHECK(r.exit_code == 1);
    CHECK(r.err == c.message);
    CHECK(fs::is_empty(out.path));  // nothing half-written
  }
}

TEST_CASE("protoc-gen-cmdwire takes no options", "[protoc-plugin]") {
  out_dir out;
  const auto r = protoc("nested.proto", out.path, "lite:");
  CHECK(r.exit_code == 1);
  CHECK(r.err ==
        "--cmdwire_out: nested.proto: protoc-gen-cmdwire takes no options, got \"lite\"\n");
}
