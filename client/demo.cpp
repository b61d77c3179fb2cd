// `cmdwire demo`: what the original Go client did — a STRING line, then a recursive struct —
// plus the same struct as a protobuf message.
#include <fmt/format.h>
#include <memory>

#include "client/cli.hpp"
#include "client/connect.hpp"
#include "client/json_pretty.hpp"
#include "cmdwire/command.hpp"
#include "demo/demo_commands.hpp"

namespace cmdwire::cli {

namespace {

std::string as_pretty_json(const auto& value) {
  std::string json;
  codec<std::decay_t<decltype(value)>>::encode(value, wire::encoding::json, json);
  return pretty_json(json).value_or(json);
}

void run_demo(const std::string& address, double timeout_s) {
  auto conn = connect_or_fail(address, timeout_s);
  fmt::print("connected to {}\n\n", conn.address());

  fmt::print("-> STRING (line command)\n   Additional data.\n");
  auto thanks = conn.call_line(demo::String::name, "Additional data.");
  if (!thanks) fail_call("STRING", thanks.error());
  fmt::print("<- {}\n\n", *thanks);

  const demo::ComplexData data = demo::make_sample(2);
  fmt::print("-> STRUCT (cereal portable binary), this value:\n{}\n", as_pretty_json(data));
  auto summary = conn.call<demo::Struct>(data);
  if (!summary) fail_call("STRUCT", summary.error());
  fmt::print("<- depth={} entries={} bytes={} names={}\n\n", summary->depth, summary->entries,
             summary->bytes, summary->names);

  const demo::pb::Complex message = demo::make_sample_proto(2);
  fmt::print("-> PROTO (protobuf binary), this message:\n{}\n", as_pretty_json(message));
  auto reply = conn.call<demo::Proto>(message);
  if (!reply) fail_call("PROTO", reply.error());
  fmt::print("<- depth={} entries={} bytes={} names={}\n", reply->depth(), reply->entries(),
             reply->bytes(), reply->names());
}

}  // namespace

void add_demo_command(CLI::App& app) {
  CLI::App* cmd =
      app.add_subcommand("demo",
                         "Run the demo exchange: STRING, a recursive STRUCT, and PROTO.\n"
                         "Example: cmdwire demo --connect 127.0.0.1:61000");
  cmd->callback([] { run_demo(target().address, target().timeout_s); });
}

}  // namespace cmdwire::cli
