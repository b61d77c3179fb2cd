// `cmdwire call NAME [--json TEXT | --data TEXT | --file PATH | --attr K=V...]`: one command
// by hand; `cmdwire call [NAME] --stdin`: one request per line of standard input, pipelined.
#include <fmt/format.h>
#include <unistd.h>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>

#include "client/cli.hpp"
#include "client/connect.hpp"
#include "client/json_pretty.hpp"
#include "client/reply_output.hpp"
#include "client/request_build.hpp"
#include "client/stdin_batch.hpp"

namespace cmdwire::cli {

namespace {

struct call_args {
  std::string name;
  std::string json;
  std::string data;
  std::string file;
  std::string line;
  std::vector<std::string> attrs;  ///< --attr, in order
  bool from_stdin = false;
  bool as_json = false;
  std::optional<wire::encoding> encoding;  ///< --encoding, when stated
  /// Unset: pretty on a terminal, json otherwise.
  std::optional<output_mode> output;
};

/// The whole file, or standard input for "-".
std::string read_file(const std::string& path) {
  if (path == "-") {
    std::ios::sync_with_stdio(false);
    return {std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw failure(exit_usage, fmt::format("cannot read '{}': no such file or no access", path));
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void run_call(const call_args& args, const CLI::App& cmd) {
  if (args.name.empty() && !args.from_stdin) {
    throw failure(exit_usage,
                  "call: NAME is required (e.g. cmdwire call PING), unless --stdin reads "
                  "`NAME BODY` lines");
  }
  const output_mode mode = output_or_default(args.output ? &*args.output : nullptr);
  if (args.from_stdin) {
    auto conn = connect_or_fail(target().address, target().timeout_s);
    std::optional<wire::encoding> enc = args.encoding;
    if (args.as_json) enc = wire::encoding::json;
    run_stdin_batch(conn, args.name, enc, mode);
    return;
  }
  const bool has_json = cmd.count("--json") > 0;
  const bool has_line = cmd.count("--line") > 0;
  std::string body;
  // Stated (--encoding, --as-json), else inferred: --json and a *.json --file are JSON.
  std::optional<wire::encoding> enc = args.encoding;
  if (args.as_json) enc = wire::encoding::json;
  if (has_json) {
    // --json TEXT, or --json @FILE, or --json @- for standard input.
    body = args.json.starts_with('@') ? read_file(args.json.substr(1)) : args.json;
    enc = wire::encoding::json;
  } else if (cmd.count("--data") > 0) {
    body = args.data;
  } else if (cmd.count("--file") > 0) {
    body = read_file(args.file);
    if (!enc && args.file.ends_with(".json")) enc = wire::encoding::json;
  }
  auto conn = connect_or_fail(target().address, target().timeout_s);
  if (!args.attrs.empty()) {
    // The fields' types come from DESCRIBE; a server without it gets JSON-if-valid-else-text.
    std::optional<cmdwire::error> failed;
    const auto described = fetch_catalog(conn, args.name, &failed);
    if (failed && failed->code != errc::unknown_command) fail_call("DESCRIBE", *failed);
    const command_info* info = described ? described->find(args.name) : nullptr;
    auto json = json_from_attrs(args.name, args.attrs, info);
    if (!json) throw failure(exit_usage, json.error().message);
    body = std::move(*json);
    enc = wire::encoding::json;
  }
  if (has_line) {
    auto reply = conn.call_line(args.name, args.line);
    if (!reply) fail_call(args.name, reply.error());
    print_body(*reply, false, mode);
    return;
  }
  call_options opt;
  opt.enc = enc.value_or(wire::encoding::bin);
  auto reply = conn.call_raw(args.name, body, opt);
  if (!reply) fail_call(args.name, reply.error());
  print_body(*reply, opt.enc == wire::encoding::json, mode);
}

}  // namespace

void add_call_command(CLI::App& app) {
  auto args = std::make_shared<call_args>();
  CLI::App* cmd = app.add_subcommand(
      "call",
      "Send one command and print the reply (JSON replies pretty-printed), or with "
      "--stdin one per line of standard input.\n"
      "Examples: cmdwire call PING | cmdwire call ECHO --data hello | "
      "cmdwire call STRING --line 'Additional data.' | cmdwire call PROTO "
      "-a s=root -a m.a=1 -a c.s=child | printf 'PING\\nECHO hi\\n' | "
      "cmdwire call --stdin");
  cmd->add_option("NAME", args->name,
                  "command name, e.g. PING (required, except with --stdin: then each line "
                  "names its command unless NAME is given)");
  auto* json = cmd->add_option("--json", args->json,
                               "JSON body, or @FILE, or @- for standard input; the reply comes "
                               "back as JSON");
  auto* data = cmd->add_option("--data", args->data, "body bytes as given");
  auto* file = cmd->add_option("--file", args->file, "read the body from a file (- for stdin)");
  auto* line = cmd->add_option("--line", args->line,
                               "send as a line command (NAME\\nLINE\\n) and print the line back");
  auto* attr = cmd->add_option(
      "-a,--attr", args->attrs,
      "build a JSON object body, one member per --attr (repeatable): KEY=VALUE takes VALUE as "
      "the field's type in DESCRIBE (a string, or a number or boolean where the field is one; a "
      "server without DESCRIBE: JSON if VALUE is valid JSON, else a string), KEY:=JSON takes "
      "JSON as it is (numbers, arrays, objects, null), and A.B=VALUE nests (A an object or "
      "map); a field not in DESCRIBE is refused");
  auto* from_stdin = cmd->add_flag(
      "--stdin", args->from_stdin,
      "read one request per line from standard input, `NAME` or `NAME BODY` (just BODY when "
      "NAME is given), and send them all on one connection without waiting for each reply; "
      "prints one reply per line in order, an error as one line (json mode: "
      "{\"error\":CODE,\"message\":TEXT}); exit 1 if any failed. BODY: JSON for a command "
      "that takes JSON, the text as it is for string and line commands (DESCRIBE says which; "
      "without it, JSON if it is a JSON object or array); -e forces one encoding for all");
  json->excludes(data)->excludes(file)->excludes(line)->excludes(attr)->excludes(from_stdin);
  data->excludes(file)->excludes(line)->excludes(attr)->excludes(from_stdin);
  file->excludes(line)->excludes(attr)->excludes(from_stdin);
  line->excludes(attr)->excludes(from_stdin);
  attr->excludes(from_stdin);
  cmd->add_flag("--as-json", args->as_json, "mark a --data/--file body as JSON (= -e json)");
  cmd->add_option_function<std::string>(
         "-e,--encoding",
         [args](const std::string& word) {
           args->encoding = word == "json" ? wire::encoding::json : wire::encoding::bin;
         },
         "bin or json: how the --data/--file body is encoded (default: json for a *.json "
         "file, else bin); with --stdin, every BODY as typed")
      ->check(CLI::IsMember({"bin", "json"}));
  cmd->add_option_function<std::string>(
         "-o,--output",
         [args](const std::string& word) {
           args->output = word == "raw"    ? output_mode::raw
                          : word == "json" ? output_mode::json
                                           : output_mode::pretty;
         },
         "pretty (the default on a terminal), json (the default otherwise: one JSON value per "
         "reply) or raw (the body's bytes exactly; with --stdin, each followed by a newline)")
      ->check(CLI::IsMember({"pretty", "json", "raw"}));
  cmd->callback([args, cmd] { run_call(*args, *cmd); });
}

}  // namespace cmdwire::cli
