// Runs the built `cmdwire` CLI against a live in-process server (and the built cmdwire-server
// as a child process) and checks what a user sees: output, one-line errors and exit codes.
#include <fmt/format.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include <cereal/types/string.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cmdwire/detail/rapidjson.hpp"
#include "support/process.hpp"
#include "support/test_server.hpp"

using cmdwire::test::bin_path;
using cmdwire::test::child_process;
using cmdwire::test::run_result;
using cmdwire::test::test_server;

namespace {

/// Runs the built binary `program` with `args`; stdout and stderr apart, all of it shown when a
/// check fails.
run_result run_built(const std::string& program, std::vector<std::string> args) {
  args.insert(args.begin(), bin_path(program));
  run_result r = cmdwire::test::run(args);
  std::string command;
  for (const auto& a : args) command += " " + a;
  UNSCOPED_INFO("$" << command << "\nexit " << r.exit_code << "\nstdout:\n"
                    << r.out << "\nstderr:\n"
                    << r.err);
  return r;
}

/// Runs `cmdwire args...`.
run_result cmdwire_cli(std::vector<std::string> args) {
  return run_built("cmdwire", std::move(args));
}

/// Runs `cmdwire args...` with `input` on its standard input (through a temporary file).
run_result cmdwire_cli_stdin(std::vector<std::string> args, const std::string& input) {
  static int files = 0;
  const std::string path = fmt::format("/tmp/cmdwire-cli-stdin-{}-{}", ::getpid(), ++files);
  {
    std::ofstream out(path, std::ios::binary);
    out << input;
  }
  args.insert(args.begin(), bin_path("cmdwire"));
  run_result r = cmdwire::test::run(args, cmdwire::test::stderr_mode::separate, path);
  std::remove(path.c_str());
  UNSCOPED_INFO("exit " << r.exit_code << "\nstderr:\n" << r.err);
  return r;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// One line, as the CLI promises for every failure: text, then exactly one LF at the end.
bool is_one_line(const std::string& text) {
  return !text.empty() && text.find('\n') == text.size() - 1;
}

}  // namespace

TEST_CASE("cmdwire call prints replies and exits 0", "[cli]") {
  test_server server;
  const std::string addr = server.address();

  // Not a terminal: one JSON value per reply, unless --output says otherwise.
  SECTION("PING") {
    const auto r = cmdwire_cli({"call", "--connect", addr, "PING"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "\"PONG\"\n");
    CHECK(r.err.empty());
  }
  SECTION("ECHO --data") {
    const auto r = cmdwire_cli({"call", "--connect", addr, "ECHO", "--data", "hello"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "\"hello\"\n");
  }
  SECTION("STRING as a line command") {
    const auto r = cmdwire_cli({"call", "--connect", addr, "STRING", "--line", "Additional data."});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "\"Thank you.\"\n");
  }
  SECTION("STRUCT --json: the JSON reply on one line") {
    const std::string json =
        R"({"n":1,"s":"root","m":{"a":1},"p":[1,2],"c":{"n":2,"s":"child","m":{},"p":[],"c":null}})";
    const auto r = cmdwire_cli({"call", "--connect", addr, "STRUCT", "--json", json});
    CHECK(r.exit_code == 0);
    CHECK(r.out == R"({"depth":2,"entries":1,"bytes":2,"names":"root/child"})"
                   "\n");
  }
  SECTION("STRUCT --json --output pretty indents the JSON reply") {
    const std::string json =
        R"({"n":1,"s":"root","m":{"a":1},"p":[1,2],"c":{"n":2,"s":"child","m":{},"p":[],"c":null}})";
    const auto r =
        cmdwire_cli({"call", "--connect", addr, "STRUCT", "--json", json, "--output", "pretty"});
    CHECK(r.exit_code == 0);
    CHECK(r.out ==
          "{\n"
          "  \"depth\": 2,\n"
          "  \"entries\": 1,\n"
          "  \"bytes\": 2,\n"
          "  \"names\": \"root/child\"\n"
          "}\n");
  }
}

TEST_CASE("cmdwire call reports error replies in one line with exit 1", "[cli]") {
  test_server server;
  const std::string addr = server.address();

  SECTION("unknown command") {
    const auto r = cmdwire_cli({"call", "--connect", addr, "NOPE"});
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(is_one_line(r.err));
    CHECK(contains(r.err, "unknown-command"));
    CHECK(contains(r.err, "NOPE"));
  }
  SECTION("undecodable body") {
    const auto r = cmdwire_cli({"call", "--connect", addr, "STRUCT", "--data", "garbage"});
    CHECK(r.exit_code == 1);
    CHECK(is_one_line(r.err));
    CHECK(contains(r.err, "bad-body"));
  }
}

TEST_CASE("cmdwire call --json with numbers that crashed rapidjson exits 1 cleanly",
          "[cli][json]") {
  test_server server;
  const std::string addr = server.address();
  for (const std::string& number :
       {"0." + std::string(445, '0'), std::string("5521.4555555555555554e-343"),
        std::string("1e99999999"), "-0." + std::string(400, '0') + "1"}) {
    for (const std::string command : {"STRUCT", "PROTO"}) {
      const auto r = cmdwire_cli(
          {"call", "--connect", addr, command, "--json", R"({"n":1,"zz":[{"a":)" + number + "}]}"});
      CHECK(r.exit_code == 1);
      CHECK(r.out.empty());
      CHECK(is_one_line(r.err));
      CHECK(contains(r.err, "bad-body"));
    }
  }
  // The server is still there.
  const auto r = cmdwire_cli({"call", "--connect", addr, "PING"});
  CHECK(r.out == "\"PONG\"\n");
}

TEST_CASE("cmdwire exits 3 when no server listens", "[cli]") {
  std::string addr;
  {
    test_server stopped;
    addr = stopped.address();
  }  // stopped and closed: nothing listens on that port now
  SECTION("call") {
    const auto r = cmdwire_cli({"call", "--connect", addr, "PING"});
    CHECK(r.exit_code == 3);
    CHECK(is_one_line(r.err));
    CHECK(contains(r.err, "cannot connect to " + addr));
    CHECK(contains(r.err, "is cmdwire-server running?"));
  }
  SECTION("demo") {
    const auto r = cmdwire_cli({"demo", "--connect", addr});
    CHECK(r.exit_code == 3);
    CHECK(contains(r.err, "is cmdwire-server running?"));
  }
}

TEST_CASE("cmdwire exits 2 on bad usage, before connecting", "[cli]") {
  // A server that is never reached: usage errors are found before any connection.
  test_server server;
  const std::string addr = server.address();

  SECTION("no command name") {
    const auto r = cmdwire_cli({"call", "--connect", addr});
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, "NAME is required"));
  }
  SECTION("--json with --data") {
    const auto r =
        cmdwire_cli({"call", "--connect", addr, "STRUCT", "--json", "{}", "--data", "x"});
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, "excludes"));
  }
  SECTION("--file that does not exist") {
    const std::string missing = "/nonexistent/cmdwire-cli-test-body";
    const auto r = cmdwire_cli({"call", "--connect", addr, "ECHO", "--file", missing});
    CHECK(r.exit_code == 2);
    CHECK(is_one_line(r.err));
    CHECK(contains(r.err, missing));
  }
  SECTION("no subcommand") { CHECK(cmdwire_cli({}).exit_code == 2); }
  SECTION("an address that is not HOST:PORT") {
    const auto r = cmdwire_cli({"call", "--connect", "no-port-here", "PING"});
    CHECK(r.exit_code == 2);
    CHECK(is_one_line(r.err));
  }
}

TEST_CASE("cmdwire demo runs the STRING, STRUCT and PROTO exchange", "[cli]") {
  test_server server;
  const auto r = cmdwire_cli({"demo", "--connect", server.address()});
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(contains(r.out, "<- Thank you.\n"));
  // STRUCT, then PROTO: both summaries of the two-level sample.
  const std::string summary = "<- depth=2 entries=4 bytes=8 names=level0/level1\n";
  const auto first = r.out.find(summary);
  REQUIRE(first != std::string::npos);
  CHECK(r.out.find(summary, first + 1) != std::string::npos);
}

TEST_CASE("cmdwire-server: port 0, the demo against it, SIGTERM exits 0", "[cli][server]") {
  child_process server({bin_path("cmdwire-server"), "--listen", "127.0.0.1:0", "--threads", "2"});
  const auto line = server.read_line();
  REQUIRE(line.has_value());
  const std::string prefix = "cmdwire-server listening on ";
  REQUIRE(line->starts_with(prefix));
  const std::string addr = line->substr(prefix.size());
  CHECK(addr.starts_with("127.0.0.1:"));
  CHECK(addr != "127.0.0.1:0");

  const auto demo = cmdwire_cli({"demo", "--connect", addr});
  CHECK(demo.exit_code == 0);
  CHECK(contains(demo.out, "Thank you."));
  CHECK(contains(demo.out, "depth=2"));

  server.signal(SIGTERM);
  const auto stopped = server.wait();
  INFO("server stderr:\n" << stopped.err);
  CHECK(stopped.exit_code == 0);
}

TEST_CASE("cmdwire-server refuses a bad --listen with exit 2", "[cli][server]") {
  const auto r = cmdwire::test::run({bin_path("cmdwire-server"), "--listen", "not-an-address"});
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
  CHECK(is_one_line(r.err));
}

TEST_CASE("cmdwire subscribe prints what cmdwire publish sends", "[cli][pubsub]") {
  test_server server;
  child_process sub({bin_path("cmdwire"), "subscribe", "--connect", server.address(), "news"});
  // The subscription is live once a publish reaches a receiver: probe until one does.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (server.ep().publish("news", "probe") == 0) {
    REQUIRE(std::chrono::steady_clock::now() < until);
    std::this_thread::yield();
  }
  // One message holding a newline stays one message: one JSON object per line.
  const auto pub = cmdwire_cli({"publish", "--connect", server.address(), "news", "two\nlines"});
  CHECK(pub.exit_code == 0);
  CHECK(contains(pub.out, "published to 1 subscriber"));
  std::optional<std::string> line;
  do {
    line = sub.read_line();  // the probes that found it first, then ours
  } while (line && *line == R"({"topic":"news","body":"probe"})");
  REQUIRE(line.has_value());
  CHECK(*line == R"({"topic":"news","body":"two\nlines"})");
  server.ep().stop();  // the server goes away: the subscriber says so in one line, exit 3
  const auto ended = sub.wait();
  CHECK(ended.exit_code == 3);
  CHECK(is_one_line(ended.err));
}

TEST_CASE(
    "cmdwire takes -c/--connect and -t/--timeout before or after the subcommand, and "
    "$CMDWIRE_ADDRESS then $PORT as the default",
    "[cli]") {
  test_server server;
  const std::string port = std::to_string(server.port());
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--connect", server.address(), "call", "PING"},
           {"call", "PING", "--connect", server.address()},
           {"-c", server.address(), "-t", "5", "call", "PING"},
           {"call", "-c", server.address(), "PING", "-t", "5"},
       }) {
    const auto r = cmdwire_cli(args);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "\"PONG\"\n");
  }
  struct env_var {  // set for the children this test starts, restored after
    std::string name;
    env_var(std::string n, const std::string& value) : name(std::move(n)) {
      ::setenv(name.c_str(), value.c_str(), 1);
    }
    ~env_var() { ::unsetenv(name.c_str()); }
  };
  {
    env_var address("CMDWIRE_ADDRESS", server.address());
    env_var wrong_port("PORT", "1");  // $CMDWIRE_ADDRESS comes first
    const auto r = cmdwire_cli({"call", "PING"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "\"PONG\"\n");
  }
  {
    env_var by_port("PORT", port);
    const auto r = cmdwire_cli({"call", "PING"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "\"PONG\"\n");
  }
  const auto bad = cmdwire_cli({"call", "PING", "-t", "-1", "-c", server.address()});
  CHECK(bad.exit_code == 2);
}

TEST_CASE("cmdwire call --output raw, json and pretty", "[cli]") {
  test_server server;
  const std::string addr = server.address();
  // 1,000 bytes of every value, NUL and newlines included.
  std::string bytes;
  for (int i = 0; i < 1000; ++i) bytes += static_cast<char>((i * 37) % 256);
  const std::string file = "/tmp/cmdwire-cli-output-" + std::to_string(::getpid());
  {
    std::ofstream out(file, std::ios::binary);
    out << bytes;
  }
  const auto raw = cmdwire_cli({"call", "-c", addr, "ECHO", "--file", file, "--output", "raw"});
  CHECK(raw.exit_code == 0);
  CHECK(raw.out == bytes);  // byte for byte: nothing added
  const auto json = cmdwire_cli({"call", "-c", addr, "ECHO", "--file", file, "-o", "json"});
  CHECK(json.exit_code == 0);
  std::string hex;
  for (const unsigned char b : bytes) hex += fmt::format("{:02x}", b);
  CHECK(json.out == "{\"hex\":\"" + hex + "\"}\n");  // not UTF-8 text: hex
  std::remove(file.c_str());

  const auto text =
      cmdwire_cli({"call", "-c", addr, "ECHO", "--data", "tab\there \"q\"", "-o", "json"});
  CHECK(text.out == "\"tab\\there \\\"q\\\"\"\n");
  const auto stats = cmdwire_cli({"call", "-c", addr, "STATS", "-o", "json"});
  CHECK(stats.out.starts_with("{\"version\":"));  // a JSON body stays JSON
  const auto pretty = cmdwire_cli({"call", "-c", addr, "PING", "-o", "pretty"});
  CHECK(pretty.out == "PONG\n");
  const auto bad = cmdwire_cli({"call", "-c", addr, "PING", "-o", "yaml"});
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Catch::Contains("pretty,json,raw"));
}

TEST_CASE("cmdwire call takes the body from --json @FILE, @-, a *.json --file, --file - and -e",
          "[cli]") {
  test_server server;
  const std::string addr = server.address();
  const std::string request = R"({"n":1,"s":"root","m":{},"p":[7],"c":null})";
  const std::string summary = R"({"depth":1,"entries":0,"bytes":1,"names":"root"})"
                              "\n";
  const std::string file = "/tmp/cmdwire-cli-input-" + std::to_string(::getpid()) + ".json";
  {
    std::ofstream out(file, std::ios::binary);
    out << request;
  }
  const auto at_file = cmdwire_cli({"call", "-c", addr, "STRUCT", "--json", "@" + file});
  CHECK(at_file.exit_code == 0);
  CHECK(at_file.out == summary);
  // A *.json file is sent as JSON without being told.
  const auto inferred = cmdwire_cli({"call", "-c", addr, "STRUCT", "--file", file});
  CHECK(inferred.exit_code == 0);
  CHECK(inferred.out == summary);
  const auto stated = cmdwire_cli({"call", "-c", addr, "STRUCT", "-e", "json", "--data", request});
  CHECK(stated.out == summary);
  // Told otherwise, it goes as binary, and the server says why it cannot decode it.
  const auto as_bin = cmdwire_cli({"call", "-c", addr, "STRUCT", "--file", file, "-e", "bin"});
  CHECK(as_bin.exit_code == 1);
  CHECK(contains(as_bin.err, "bad-body"));

  const std::string cli = bin_path("cmdwire");
  const auto piped_json = cmdwire::test::run(
      {"/bin/sh", "-c", "cat " + file + " | " + cli + " call -c " + addr + " STRUCT --json @-"});
  CHECK(piped_json.exit_code == 0);
  CHECK(piped_json.out == summary);
  const auto piped_bytes = cmdwire::test::run(
      {"/bin/sh", "-c",
       "printf 'two\\nlines' | " + cli + " call -c " + addr + " ECHO --file - -o raw"});
  CHECK(piped_bytes.exit_code == 0);
  CHECK(piped_bytes.out == "two\nlines");
  std::remove(file.c_str());
}

TEST_CASE("a usage error exits 2 in every binary, with the valid words for an enum", "[cli]") {
  std::vector<std::vector<std::string>> cases{
      {bin_path("cmdwire"), "--no-such-option"},
      {bin_path("cmdwire"), "call", "PING", "--output", "yaml"},
      {bin_path("cmdwire-server"), "--no-such-option"},
      {bin_path("cmdwire-server"), "--log-format", "xml"},
  };
#ifdef CMDWIRE_TEST_BENCH
  cases.push_back({bin_path("cmdwire-bench"), "--no-such-option"});
  cases.push_back({bin_path("cmdwire-caller-bench"), "--no-such-option"});
  cases.push_back({bin_path("cmdwire-baseline-echo"), "--no-such-option"});
  const std::string bench = bin_path("cmdwire-bench");
  cases.push_back({bench, "--rate", "0"});
  cases.push_back({bench, "--rate", "100", "--rate-steps", "1,2"});
  cases.push_back({bench, "--rate-steps", "5:1:1"});
  cases.push_back({bench, "--rate-steps", "10,,20"});
  cases.push_back({bench, "--mix", "PING:0"});
  cases.push_back({bench, "--mix", "PING,PING"});
  cases.push_back({bench, "--mix", "PING", "--command", "ECHO"});
  cases.push_back({bench, "--csv", "--json"});
#endif
  for (const auto& argv : cases) {
    const auto r = cmdwire::test::run(argv);
    INFO(argv[0] << " " << argv[1] << "\n" << r.err);
    CHECK(r.exit_code == 2);
  }
  const auto words = cmdwire::test::run({bin_path("cmdwire-server"), "--log-format", "xml"});
  CHECK((contains(words.err, "text") && contains(words.err, "json")));
}

#ifdef CMDWIRE_TEST_BENCH
namespace {

namespace rj = cmdwire::detail::rj;

/// Runs `cmdwire-bench args...`.
run_result bench_cli(std::vector<std::string> args) {
  return run_built("cmdwire-bench", std::move(args));
}

/// The one JSON object cmdwire-bench --json prints.
rj::Document bench_json(const std::string& out) {
  rj::Document doc;
  doc.Parse(out.c_str());
  REQUIRE_FALSE(doc.HasParseError());
  REQUIRE(doc.IsObject());
  return doc;
}

std::uint64_t u64(const rj::Value& object, const char* key) {
  REQUIRE(object.HasMember(key));
  REQUIRE(object[key].IsUint64());
  return object[key].GetUint64();
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(line);
  while (std::getline(in, part, sep)) parts.push_back(part);
  if (!line.empty() && line.back() == sep) parts.emplace_back();
  return parts;
}

}  // namespace

TEST_CASE("cmdwire-bench exits 3 at once when nothing listens", "[cli][bench]") {
  const std::string addr = "127.0.0.1:" + std::to_string(cmdwire::test::closed_port());
  const auto began = std::chrono::steady_clock::now();
  // A run that would take 30 s if it waited for its duration before giving up.
  const auto r = bench_cli({"--connect", addr, "--command", "PING", "--conns", "4", "--duration",
                            "30", "--warmup", "0"});
  const auto took = std::chrono::steady_clock::now() - began;
  CHECK(r.exit_code == 3);
  CHECK(r.err == "cmdwire-bench: cannot connect to " + addr + ": Connection refused\n");
  CHECK(r.out.empty());
  CHECK(took < std::chrono::seconds(10));
}

TEST_CASE("cmdwire-bench --rate sends at that rate, not as fast as it can", "[cli][bench]") {
  child_process server({bin_path("cmdwire-server"), "--listen", "127.0.0.1:0", "--threads", "1",
                        "--log-level", "warn"});
  const auto line = server.read_line();
  REQUIRE(line.has_value());
  const std::string prefix = "cmdwire-server listening on ";
  REQUIRE(line->starts_with(prefix));
  const std::string addr = line->substr(prefix.size());

  // 2,000 req/s for 1 s: a closed loop at 4 x 8 would answer well over 10,000.
  const auto r = bench_cli({"--connect", addr, "--command", "PING", "--rate", "2000", "--conns",
                            "4", "--depth", "8", "--duration", "1", "--warmup", "0.2", "--json"});
  CHECK(r.exit_code == 0);
  const auto doc = bench_json(r.out);
  CHECK(std::string(doc["mode"].GetString()) == "open");
  const std::uint64_t requests = u64(doc, "requests");
  const double seconds = doc["seconds"].GetDouble();
  const double expected = 2000 * seconds;
  CHECK(static_cast<double>(requests) >= 0.5 * expected);
  CHECK(static_cast<double>(requests) <= 1.1 * expected);
  // requests and replies count the same measured window; the warm-up only in its own field.
  CHECK(u64(doc, "replies") == requests);
  CHECK(u64(doc, "replies_with_warmup") > requests);
  CHECK(u64(doc, "errors") == 0);
  CHECK(doc["p99_us"].GetDouble() > 0);
  CHECK(doc["p9999_us"].GetDouble() >= doc["p99_us"].GetDouble());
  CHECK(doc["max_us"].GetDouble() >= doc["p9999_us"].GetDouble());

  server.signal(SIGTERM);
  CHECK(server.wait().exit_code == 0);
}

TEST_CASE("cmdwire-bench --mix reports each command and a total that is their sum",
          "[cli][bench]") {
  test_server server;
  const auto r = bench_cli({"--connect", server.address(), "--mix", "PING:1,ECHO:1", "--conns", "2",
                            "--depth", "4", "--duration", "0.3", "--warmup", "0", "--json"});
  CHECK(r.exit_code == 0);
  const auto doc = bench_json(r.out);
  REQUIRE(doc["commands"].IsArray());
  REQUIRE(doc["commands"].Size() == 2);
  std::uint64_t sum = 0;
  std::vector<std::string> names;
  for (const auto& c : doc["commands"].GetArray()) {
    names.emplace_back(c["command"].GetString());
    CHECK(u64(c, "requests") > 0);
    CHECK(u64(c, "errors") == 0);
    sum += u64(c, "requests");
  }
  CHECK(names == std::vector<std::string>{"PING", "ECHO"});
  CHECK(u64(doc, "requests") == sum);
  CHECK(u64(doc, "errors") == 0);
  // Equal weights: each connection alternates, so the counts differ by at most what was in
  // flight when the window closed.
  const auto ping = u64(doc["commands"][0], "requests");
  const auto echo = u64(doc["commands"][1], "requests");
  CHECK((ping > echo ? ping - echo : echo - ping) <= 2 * 4);
}

TEST_CASE("cmdwire-bench --csv prints a header and one row per command and step", "[cli][bench]") {
  test_server server;
  const std::string header =
      "step,target_rps,command,requests,ok,errors,wrong_replies,connection_errors,error_codes,"
      "seconds,rps,mb_per_s,p50_us,p90_us,p99_us,p999_us,p9999_us,max_us";
  const std::size_t columns = split(header, ',').size();

  SECTION("closed loop: the command and the total") {
    const auto r = bench_cli({"--connect", server.address(), "--command", "PING", "--duration",
                              "0.2", "--warmup", "0", "--csv"});
    CHECK(r.exit_code == 0);
    const auto lines = lines_of(r.out);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] == header);
    const auto ping = split(lines[1], ',');
    const auto total = split(lines[2], ',');
    REQUIRE(ping.size() == columns);
    REQUIRE(total.size() == columns);
    CHECK(ping[0] == "1");
    CHECK(ping[1] == "0");  // closed loop: no target rate
    CHECK(ping[2] == "PING");
    CHECK(total[2] == "total");
    CHECK(std::stoull(total[3]) > 0);
    CHECK(total[3] == ping[3]);
    CHECK(total[5] == "0");
  }
  SECTION("--rate-steps: the rows of each step, with its target rate") {
    const auto r = bench_cli({"--connect", server.address(), "--command", "PING", "--rate-steps",
                              "500:1000:500", "--conns", "2", "--depth", "4", "--duration", "0.3",
                              "--warmup", "0", "--csv"});
    CHECK(r.exit_code == 0);
    const auto lines = lines_of(r.out);
    REQUIRE(lines.size() == 5);
    CHECK(lines[0] == header);
    const std::vector<std::pair<std::string, std::string>> want{
        {"1", "500"}, {"1", "500"}, {"2", "1000"}, {"2", "1000"}};
    for (std::size_t i = 1; i < lines.size(); ++i) {
      const auto cells = split(lines[i], ',');
      REQUIRE(cells.size() == columns);
      CHECK(cells[0] == want[i - 1].first);
      CHECK(cells[1] == want[i - 1].second);
      CHECK(cells[2] == (i % 2 ? "PING" : "total"));
    }
    // The second step asked for twice the rate of the first, and got more.
    CHECK(std::stoull(split(lines[4], ',')[3]) > std::stoull(split(lines[2], ',')[3]));
  }
}

TEST_CASE("cmdwire-bench counts error replies by their ERR code", "[cli][bench]") {
  test_server server;
  // NOPE is no command of the server: every request is answered `ERR unknown-command`.
  SECTION("json") {
    const auto r = bench_cli({"--connect", server.address(), "--command", "NOPE", "--depth", "4",
                              "--duration", "0.2", "--warmup", "0", "--json"});
    CHECK(r.exit_code == 1);
    const auto doc = bench_json(r.out);
    const std::uint64_t requests = u64(doc, "requests");
    CHECK(requests > 0);
    REQUIRE(doc["error_codes"].IsObject());
    CHECK(doc["error_codes"].MemberCount() == 1);
    CHECK(u64(doc["error_codes"], "unknown-command") == requests);
    CHECK(u64(doc, "errors") == requests);
    CHECK(u64(doc, "ok") == 0);
    CHECK(u64(doc, "wrong_replies") == 0);
    CHECK(u64(doc, "connection_errors") == 0);
    CHECK(contains(doc["first_error"].GetString(), "ERR unknown-command to NOPE"));
  }
  SECTION("text, in a mix: only the unknown command's errors") {
    const auto r = bench_cli({"--connect", server.address(), "--mix", "PING:3,NOPE:1", "--duration",
                              "0.2", "--warmup", "0"});
    CHECK(r.exit_code == 1);
    CHECK(contains(r.out, "unknown-command="));
    CHECK(contains(r.out, "wrong reply 0  connection 0"));
  }
}
#endif  // CMDWIRE_TEST_BENCH

namespace {

/// A flat cereal request whose fields DESCRIBE types as integer, number, boolean and string:
/// a value of the wrong JSON type is a bad-body, so a passing call shows how --attr typed it.
struct Reading {
  std::int64_t count = 0;
  double level = 0;
  bool on = false;
  std::string label;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(cereal::make_nvp("count", count), cereal::make_nvp("level", level),
       cereal::make_nvp("on", on), cereal::make_nvp("label", label));
  }
};
struct Record {
  static constexpr std::string_view name = "RECORD";
  using request = Reading;
  using response = std::string;
};

/// The demo commands, RECORD, and JSONECHO: a raw handler (no types, so DESCRIBE has no
/// request shape for it) that answers its body.
class attr_server {
 public:
  attr_server() {
    cmdwire::demo::register_demo_commands(ep_);
    ep_.handle<Record>([](const Reading& r) {
      return fmt::format("count={} level={} on={} label={}", r.count, r.level, r.on, r.label);
    });
    ep_.handle_raw("JSONECHO", [](const cmdwire::request_context& rc, cmdwire::reply_writer& w) {
      w.body() = rc.body;
    });
    const auto port = ep_.listen("127.0.0.1", 0);
    if (!port) throw std::runtime_error(port.error().message);
    address_ = "127.0.0.1:" + std::to_string(*port);
    ep_.start();
  }
  [[nodiscard]] const std::string& address() const { return address_; }

 private:
  cmdwire::endpoint ep_;
  std::string address_;
};

}  // namespace

TEST_CASE("cmdwire call --attr builds the JSON body, typed by DESCRIBE", "[cli][attr]") {
  attr_server server;
  const std::string addr = server.address();

  SECTION("a number and a boolean where the schema says so, a string elsewhere") {
    // label=123 stays a string: sent as a number, cereal would refuse it.
    const auto r = cmdwire_cli({"call", "-c", addr, "RECORD", "--attr", "count=42", "--attr",
                                "level=1.5", "-a", "on=true", "-a", "label=123"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "\"count=42 level=1.5 on=true label=123\"\n");
  }
  SECTION(":= takes JSON as it is") {
    // Leading zeros are not JSON: the CLI drops them.
    const auto zeros = cmdwire_cli({"call", "-c", addr, "RECORD", "-a", "count=-007", "-a",
                                    "level=0", "-a", "on=false", "-a", "label="});
    CHECK(zeros.exit_code == 0);
    CHECK(zeros.out == "\"count=-7 level=0 on=false label=\"\n");
    const auto r = cmdwire_cli({"call", "-c", addr, "RECORD", "-a", "count:=-7", "-a",
                                "label:=\"two words\"", "-a", "on:=false", "-a", "level:=2e0"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "\"count=-7 level=2 on=false label=two words\"\n");
  }
  SECTION("dotted keys nest: a protobuf message three levels deep, and a map") {
    const auto r =
        cmdwire_cli({"call", "-c", addr, "PROTO", "-a", "s=root", "-a", "m.a=1", "-a", "m.b:=2",
                     "-a", "c.s=child", "-a", "c.c.s=leaf", "-a", "c.c.m.z=3"});
    CHECK(r.exit_code == 0);
    // 3 levels, 3 map entries, no bytes: what the server counted in the body we built.
    CHECK(r.out == R"({"depth":3,"entries":"3","bytes":"0","names":"root/child/leaf"})"
                   "\n");
  }
  SECTION("without a request shape: JSON if the value is JSON, else a string") {
    const auto r =
        cmdwire_cli({"call", "-c", addr, "JSONECHO", "-a", "n=3", "-a", "s=hi there", "-a",
                     "t=true", "-a", "x:=[1,2]", "-a", "a.b=c", "-a", "a.d:=null"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == R"({"n":3,"s":"hi there","t":true,"x":[1,2],"a":{"b":"c","d":null}})"
                   "\n");
  }
  SECTION("a field the schema does not have: exit 2, naming it and the valid ones") {
    const auto r = cmdwire_cli({"call", "-c", addr, "RECORD", "-a", "count=1", "-a", "colour=red"});
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(is_one_line(r.err));
    CHECK(contains(r.err, "'colour'"));
    CHECK(contains(r.err, "count, level, on, label"));
    const auto nested = cmdwire_cli({"call", "-c", addr, "PROTO", "-a", "c.zz=1"});
    CHECK(nested.exit_code == 2);
    CHECK(contains(nested.err, "'c.zz'"));
    CHECK(contains(nested.err, "n, s, m, p, c"));
  }
  SECTION("a value that is not of the field's type: exit 2") {
    const auto r = cmdwire_cli({"call", "-c", addr, "RECORD", "-a", "count=many"});
    CHECK(r.exit_code == 2);
    CHECK(is_one_line(r.err));
    CHECK(contains(r.err, "count"));
    CHECK(contains(r.err, "'many' is not an integer"));
    const auto flag = cmdwire_cli({"call", "-c", addr, "RECORD", "-a", "on=yes"});
    CHECK(flag.exit_code == 2);
    CHECK(contains(flag.err, "'yes' is not a boolean"));
    const auto raw = cmdwire_cli({"call", "-c", addr, "RECORD", "-a", "count:={"});
    CHECK(raw.exit_code == 2);
    CHECK(contains(raw.err, "not (a string is"));
  }
  SECTION("usage errors: no '=', a key given twice, a body that has no fields, with --json") {
    CHECK(cmdwire_cli({"call", "-c", addr, "RECORD", "-a", "count"}).exit_code == 2);
    const auto twice =
        cmdwire_cli({"call", "-c", addr, "RECORD", "-a", "on=true", "-a", "on=false"});
    CHECK(twice.exit_code == 2);
    CHECK(contains(twice.err, "given twice"));
    const auto echo = cmdwire_cli({"call", "-c", addr, "ECHO", "-a", "x=1"});
    CHECK(echo.exit_code == 2);
    CHECK(contains(echo.err, "not an object with fields"));
    const auto both = cmdwire_cli({"call", "-c", addr, "RECORD", "-a", "on=true", "--json", "{}"});
    CHECK(both.exit_code == 2);
    CHECK(contains(both.err, "excludes"));
  }
}

TEST_CASE("cmdwire call --stdin pipelines 1,000 lines and prints every reply in order",
          "[cli][stdin]") {
  test_server server;
  const std::string addr = server.address();

  SECTION("NAME BODY lines: text for ECHO, JSON for PROTO") {
    std::string input;
    std::vector<std::string> expected;
    for (int i = 0; i < 1000; ++i) {
      if (i % 2 == 0) {
        input += fmt::format("ECHO line {} of the batch\n", i);
        expected.push_back(fmt::format("\"line {} of the batch\"", i));
      } else {
        input += fmt::format("PROTO {{\"s\":\"p{}\",\"p\":\"{}\"}}\n", i, i % 3 == 0 ? "AQI=" : "");
        expected.push_back(fmt::format(R"({{"depth":1,"entries":"0","bytes":"{}","names":"p{}"}})",
                                       i % 3 == 0 ? 2 : 0, i));
      }
    }
    const auto r = cmdwire_cli_stdin({"call", "-c", addr, "--stdin"}, input);
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    const auto lines = lines_of(r.out);
    REQUIRE(lines.size() == expected.size());
    for (std::size_t i = 0; i < lines.size(); ++i) {
      INFO("line " << i + 1);
      CHECK(lines[i] == expected[i]);
    }
  }
  SECTION("call NAME --stdin: every line is a body") {
    std::string input;
    for (int i = 0; i < 1000; ++i) input += fmt::format("v{}\n", i * 7);
    const auto r = cmdwire_cli_stdin({"call", "-c", addr, "ECHO", "--stdin", "-o", "raw"}, input);
    CHECK(r.exit_code == 0);
    CHECK(r.out == input);  // raw: each body, then a newline
  }
  SECTION("bad lines report one error line each, and the rest still run") {
    const std::string input =
        "PING\n"
        "PROTO {\"s\":\n"     // not JSON: refused before sending
        "NOPE\n"              // the server does not know it
        "\n"                  // blank: skipped
        "PROTO {\"zz\":1}\n"  // the server refuses the field
        "b@d x\n"             // not a command name
        "ECHO after\n";
    const auto r = cmdwire_cli_stdin({"call", "-c", addr, "--stdin"}, input);
    CHECK(r.exit_code == 1);
    CHECK(is_one_line(r.err));
    CHECK(contains(r.err, "4 of 6 requests failed"));
    const auto lines = lines_of(r.out);
    REQUIRE(lines.size() == 6);
    CHECK(lines[0] == "\"PONG\"");
    CHECK(lines[1].starts_with(R"({"error":"bad-body","message":"PROTO takes a JSON body)"));
    CHECK(lines[2].starts_with(R"({"error":"unknown-command","message":)"));
    CHECK(lines[3].starts_with(R"({"error":"bad-body","message":)"));
    CHECK(lines[4].starts_with(R"({"error":"bad-request","message":"'b@d' is not)"));
    CHECK(lines[5] == "\"after\"");
  }
  SECTION("--stdin excludes a body option") {
    const auto r = cmdwire_cli_stdin({"call", "-c", addr, "ECHO", "--stdin", "--data", "x"}, "");
    CHECK(r.exit_code == 2);
  }
}

TEST_CASE("cmdwire shell reads piped lines without prompts: replies, errors, multi-line JSON",
          "[cli][shell]") {
  test_server server;
  const auto r = cmdwire_cli_stdin({"shell", "-c", server.address(), "--history", ""},
                                   "PING\n"
                                   "PROTO {\"s\": \"top\",\n"
                                   "  \"c\": {\"s\": \"kid\"}}\n"
                                   "NOPE\n"
                                   ".bogus\n"
                                   "ECHO two words\n"
                                   ".quit\n"
                                   "PING\n");  // after .quit: not run
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  const auto lines = lines_of(r.out);
  REQUIRE(lines.size() == 10);
  CHECK(lines[0] == "PONG");
  CHECK(lines[1] == "{");
  CHECK(lines[2] == "  \"depth\": 2,");
  CHECK(lines[5] == "  \"names\": \"top/kid\"");
  CHECK(lines[6] == "}");
  CHECK(lines[7] == "error: unknown-command: unknown command 'NOPE'");
  CHECK(lines[8] == "error: unknown shell command '.bogus': try .help");
  CHECK(lines[9] == "two words");
}
