// `cmdwire subscribe TOPIC` and `cmdwire publish TOPIC TEXT`: publish/subscribe by hand.
#include <fmt/format.h>
#include <cstdio>
#include <future>
#include <memory>

#include "client/cli.hpp"
#include "client/connect.hpp"

namespace cmdwire::cli {

namespace {

struct pubsub_args {
  std::string topic;
  std::string text;
};

void run_subscribe(const pubsub_args& args) {
  auto conn = connect_or_fail(target().address, target().timeout_s);
  std::promise<cmdwire::error> ended;
  auto subscribed = conn.subscribe(
      args.topic,
      [](std::string_view, std::string_view body) {
        // One message per line as it arrives; a pipe reader sees each at once.
        std::fwrite(body.data(), 1, body.size(), stdout);
        if (body.empty() || body.back() != '\n') std::fputc('\n', stdout);
        std::fflush(stdout);
      },
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
