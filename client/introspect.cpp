// `cmdwire health`, `stats`, `list` and `describe`: the server's built-in HEALTH, STATS and
// DESCRIBE (PROTOCOL.md §11).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <memory>
#include <string>

#include "client/cli.hpp"
#include "client/connect.hpp"
#include "client/json_pretty.hpp"

#include "cmdwire/detail/rapidjson.hpp"
namespace rj = cmdwire::detail::rj;

namespace cmdwire::cli {

namespace {

CLI::App* add_server_command(CLI::App& app, const char* name, const char* what) {
  return app.add_subcommand(name, what);
}

std::string ask(std::string_view command, std::string_view body = {}) {
  auto conn = connect_or_fail(target().address, target().timeout_s);
  auto reply = conn.call_raw(command, body);
  if (!reply) fail_call(command, reply.error());
  return std::move(*reply);
}

/// `NAME  form  doc` per command, from DESCRIBE's JSON.
void print_list(const std::string& json) {
  rj::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("commands") ||
      !doc["commands"].IsArray()) {
    throw failure(exit_error_reply, "DESCRIBE's reply is not the JSON PROTOCOL.md §11 describes");
  }
  std::size_t width = 4;
  for (const auto& c : doc["commands"].GetArray()) {
    if (c.HasMember("name") && c["name"].IsString()) {
      width = std::max<std::size_t>(width, c["name"].GetStringLength());
    }
  }
  for (const auto& c : doc["commands"].GetArray()) {
    const auto text = [&c](const char* key) -> std::string_view {
      return c.HasMember(key) && c[key].IsString() ? c[key].GetString() : "";
    };
    std::string line =
        fmt::format("{:<{}}  {:<6}  {}", text("name"), width, text("form"), text("doc"));
    line.erase(line.find_last_not_of(' ') + 1);
    fmt::print("{}\n", line);
  }
}

}  // namespace

void add_introspection_commands(CLI::App& app) {
  add_server_command(app, "list", "List the server's commands: name, form and doc (DESCRIBE)")
      ->callback([] { print_list(ask("DESCRIBE")); });
  auto name = std::make_shared<std::string>();
  auto* describe = add_server_command(
      app, "describe",
      "Print DESCRIBE's JSON for every command, or for NAME: its form, doc, request and response "
      "shapes and an example request");
  describe->add_option("NAME", *name, "one command, e.g. STRUCT");
  describe->callback([name] {
    const std::string body = ask("DESCRIBE", *name);
    const auto pretty = pretty_json(body);
    fmt::print("{}\n", pretty ? *pretty : body);
  });
  add_server_command(app, "health",
                     "Print the server's HEALTH: SERVING (exit 0) or DRAINING (exit 1, it is "
                     "shutting down)")
      ->callback([] {
        const std::string state = ask("HEALTH");
        fmt::print("{}\n", state);
        if (state != "SERVING") {
          throw failure(exit_error_reply, fmt::format("{} is {}, not SERVING", target().address,
                                                      state == "DRAINING" ? "draining" : state));
        }
      });
  add_server_command(app, "stats",
                     "Print the server's STATS (JSON: connections, bytes, and calls, errors and "
                     "latency per command)")
      ->callback([] {
        const std::string body = ask("STATS");
        const auto pretty = pretty_json(body);
        fmt::print("{}\n", pretty ? *pretty : body);
      });
}

}  // namespace cmdwire::cli
