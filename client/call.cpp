// `cmdwire call NAME [--json TEXT | --data TEXT | --file PATH]`: one command by hand.
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

namespace cmdwire::cli {

namespace {

enum class output_mode { pretty, json, raw };

struct call_args {
  std::string name;
  std::string json;
  std::string data;
  std::string file;
  std::string line;
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

/// How a reply is printed (--output): `raw` writes the body's bytes exactly; `json` always
/// writes one valid JSON value and a newline (a JSON body as it is, compacted; anything else
/// as a string); `pretty` indents a JSON body and writes other text with a final newline.
void print_body(const std::string& body, bool json_reply, output_mode mode) {
  // A body is taken as JSON when it was asked for as JSON, or is an object or array (STATS).
  const bool looks_json =
      json_reply || (!body.empty() && (body.front() == '{' || body.front() == '['));
  switch (mode) {
    case output_mode::raw:
      std::fwrite(body.data(), 1, body.size(), stdout);
      return;
    case output_mode::json: {
      std::optional<std::string> as_json;
      if (looks_json) as_json = compact_json(body);
      fmt::print("{}\n", as_json ? *as_json : json_value_of(body));
      return;
    }
    case output_mode::pretty:
      if (looks_json) {
        if (auto pretty = pretty_json(body)) {
          fmt::print("{}\n", *pretty);
          return;
        }
      }
      std::fwrite(body.data(), 1, body.size(), stdout);
      if (body.empty() || body.back() != '\n') std::fputc('\n', stdout);
      return;
  }
}

void run_call(const call_args& args, const CLI::App& cmd) {
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
  const output_mode mode =
      args.output.value_or(::isatty(STDOUT_FILENO) ? output_mode::pretty : output_mode::json);
  auto conn = connect_or_fail(target().address, target().timeout_s);
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
  CLI::App* cmd =
      app.add_subcommand("call",
                         "Send one command and print the reply (JSON replies pretty-printed).\n"
                         "Examples: cmdwire call PING | cmdwire call ECHO --data hello | "
                         "cmdwire call STRING --line 'Additional data.'");
  cmd->add_option("NAME", args->name, "command name, e.g. PING")->required();
  auto* json = cmd->add_option("--json", args->json,
                               "JSON body, or @FILE, or @- for standard input; the reply comes "
                               "back as JSON");
  auto* data = cmd->add_option("--data", args->data, "body bytes as given");
  auto* file = cmd->add_option("--file", args->file, "read the body from a file (- for stdin)");
  auto* line = cmd->add_option("--line", args->line,
                               "send as a line command (NAME\\nLINE\\n) and print the line back");
  json->excludes(data)->excludes(file)->excludes(line);
  data->excludes(file)->excludes(line);
  file->excludes(line);
  cmd->add_flag("--as-json", args->as_json, "mark a --data/--file body as JSON (= -e json)");
  cmd->add_option_function<std::string>(
         "-e,--encoding",
         [args](const std::string& word) {
           args->encoding = word == "json" ? wire::encoding::json : wire::encoding::bin;
         },
         "bin or json: how the --data/--file body is encoded (default: json for a *.json "
         "file, else bin)")
      ->check(CLI::IsMember({"bin", "json"}));
  cmd->add_option_function<std::string>(
         "-o,--output",
         [args](const std::string& word) {
           args->output = word == "raw"    ? output_mode::raw
                          : word == "json" ? output_mode::json
                                           : output_mode::pretty;
         },
         "pretty (the default on a terminal), json (the default otherwise: one JSON value per "
         "reply) or raw (the body's bytes exactly)")
      ->check(CLI::IsMember({"pretty", "json", "raw"}));
  cmd->callback([args, cmd] { run_call(*args, *cmd); });
}

}  // namespace cmdwire::cli
