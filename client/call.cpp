// `cmdwire call NAME [--json TEXT | --data TEXT | --file PATH]`: one command by hand.
#include <fmt/format.h>
#include <unistd.h>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>

#include "client/cli.hpp"
#include "client/connect.hpp"
#include "client/json_pretty.hpp"

namespace cmdwire::cli {

namespace {

struct call_args {
  std::string name;
  std::string json;
  std::string data;
  std::string file;
  std::string line;
  bool as_json = false;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw failure(exit_usage, fmt::format("cannot read '{}': no such file or no access", path));
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void print_body(const std::string& body, bool json) {
  if (json) {
    if (auto pretty = pretty_json(body)) {
      fmt::print("{}\n", *pretty);
      return;
    }
  }
  std::fwrite(body.data(), 1, body.size(), stdout);
  if (body.empty() || body.back() != '\n') std::fputc('\n', stdout);
}

void run_call(const call_args& args, const CLI::App& cmd) {
  const bool has_json = cmd.count("--json") > 0;
  const bool has_line = cmd.count("--line") > 0;
  std::string body;
  wire::encoding enc = args.as_json ? wire::encoding::json : wire::encoding::bin;
  if (has_json) {
    body = args.json;
    enc = wire::encoding::json;
  } else if (cmd.count("--data") > 0) {
    body = args.data;
  } else if (cmd.count("--file") > 0) {
    body = read_file(args.file);
  }
  auto conn = connect_or_fail(target().address, target().timeout_s);
  if (has_line) {
    auto reply = conn.call_line(args.name, args.line);
    if (!reply) fail_call(args.name, reply.error());
    print_body(*reply, false);
    return;
  }
  call_options opt;
  opt.enc = enc;
  auto reply = conn.call_raw(args.name, body, opt);
  if (!reply) fail_call(args.name, reply.error());
  print_body(*reply, enc == wire::encoding::json);
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
  auto* json = cmd->add_option("--json", args->json, "JSON body; the reply comes back as JSON");
  auto* data = cmd->add_option("--data", args->data, "body bytes as given");
  auto* file = cmd->add_option("--file", args->file, "read the body from a file");
  auto* line = cmd->add_option("--line", args->line,
                               "send as a line command (NAME\\nLINE\\n) and print the line back");
  json->excludes(data)->excludes(file)->excludes(line);
  data->excludes(file)->excludes(line);
  file->excludes(line);
  cmd->add_flag("--as-json", args->as_json, "mark a --data/--file body as JSON");
  cmd->callback([args, cmd] { run_call(*args, *cmd); });
}

}  // namespace cmdwire::cli
