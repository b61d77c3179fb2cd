// `cmdwire subscribe TOPIC` and `cmdwire publish TOPIC TEXT`: publish/subscribe by hand.
#include <fmt/format.h>
#include <unistd.h>
#include <cstdio>
#include <future>
#include <memory>

#include "client/cli.hpp"
#include "client/connect.hpp"
#include "client/json_pretty.hpp"

namespace cmdwire::cli {

namespace {

struct pubsub_args {
  std::string topic;
  std::string text;
  std::string output;  ///< subscribe: pretty, json or raw; empty: pretty on a terminal, else json
};

/// One message, framed so that a message holding newlines stays one message: `raw` is the
/// wire's own `MSG topic length` frame, `json` one object per line, `pretty` the body with
/// continuation lines indented under a `topic:` header line.
void print_message(std::string_view mode, std::string_view topic, std::string_view body) {
  if (mode == "raw") {
    std::string frame = fmt::format("MSG {} {}\n", topic, body.size());
    frame.append(body).append(1, '\n');
    std::fwrite(frame.data(), 1, frame.size(), stdout);
  } else if (mode == "json") {
    fmt::print("{{\"topic\":{},\"body\":{}}}\n", json_value_of(topic), json_value_of(body));
  } else {
    std::string text = fmt::format("{}:\n  ", topic);
    for (const char ch : body) {
      text += ch;
      if (ch == '\n') text += "  ";
    }
    text += '\n';
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  std::fflush(stdout);  // a pipe reader sees each message at once
}

void run_subscribe(const pubsub_args& args) {
  auto conn = connect_or_fail(target().address, target().timeout_s);
  std::promise<cmdwire::error> ended;
  const std::string mode =
      !args.output.empty() ? args.output : (::isatty(STDOUT_FILENO) ? "pretty" : "json");
  auto subscribed = conn.subscribe(
      args.topic,
      [&mode](std::string_view topic, std::string_view body) { print_message(mode, topic, body); },
      [&ended](const cmdwire::error& why) { ended.set_value(why); });
  if (!subscribed) fail_call("SUBSCRIBE", subscribed.error());
  // Runs until interrupted (SIGINT ends the process) or until the server drops us.
  const cmdwire::error why = ended.get_future().get();
  throw failure(exit_connection,
                fmt::format("subscription to {} ended: {}", args.topic, why.message));
}

void run_publish(const pubsub_args& args) {
  auto conn = connect_or_fail(target().address, target().timeout_s);
  auto receivers = conn.publish(args.topic, args.text);
  if (!receivers) fail_call("PUBLISH", receivers.error());
  fmt::print("published to {} subscriber{}\n", *receivers, *receivers == 1 ? "" : "s");
}

void add_common(CLI::App* cmd, pubsub_args& args) {
  cmd->add_option("topic", args.topic, "topic: 1-64 of A-Z a-z 0-9 _ - . : /")->required();
}

}  // namespace

void add_pubsub_commands(CLI::App& app) {
  auto sub_args = std::make_shared<pubsub_args>();
  CLI::App* sub = app.add_subcommand(
      "subscribe",
      "Print every message published to TOPIC as it arrives, until interrupted.\n"
      "Example: cmdwire subscribe news");
  add_common(sub, *sub_args);
  sub->add_option("-o,--output", sub_args->output,
                  "pretty (the default on a terminal: TOPIC: then the body, indented), json (the "
                  "default otherwise: {\"topic\",\"body\"} per line) or raw (MSG TOPIC LENGTH "
                  "frames)")
      ->check(CLI::IsMember({"pretty", "json", "raw"}));
  sub->callback([sub_args] { run_subscribe(*sub_args); });

  auto pub_args = std::make_shared<pubsub_args>();
  CLI::App* pub =
      app.add_subcommand("publish",
                         "Send TEXT to every subscriber of TOPIC and print how many received it.\n"
                         "Example: cmdwire publish news 'hello all'");
  add_common(pub, *pub_args);
  pub->add_option("text", pub_args->text, "the message")->required();
  pub->callback([pub_args] { run_publish(*pub_args); });
}

}  // namespace cmdwire::cli
