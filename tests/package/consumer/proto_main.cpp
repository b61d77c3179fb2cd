// A server and a client of a .proto service, in one process, through the descriptors that the
// installed protoc-gen-cmdwire wrote (greeter.cmdwire.h). Exits 0 and prints the greeting only
// if the round trip is right.
#include <cmdwire/client.hpp>
#include <cmdwire/endpoint.hpp>
#include <cstdio>
#include <string>

#include "greeter.cmdwire.h"

using Greet = consumer::Greeter::Greet;
static_assert(Greet::name == "Greeter.Greet");
static_assert(Greet::idempotent);

int main() {
  cmdwire::endpoint ep;
  ep.handle<Greet>([](const consumer::Name& who) {
    consumer::Greeting g;
    g.set_text("Hello, " + who.name());
    return g;
  });
  const auto port = ep.listen("127.0.0.1", 0);
  if (!port) {
    std::fprintf(stderr, "proto_consumer: %s\n", port.error().message.c_str());
    return 1;
  }
  ep.start();
  auto conn = cmdwire::client::connect("127.0.0.1:" + std::to_string(*port));
  if (!conn) {
    std::fprintf(stderr, "proto_consumer: %s\n", conn.error().message.c_str());
    return 1;
  }
  consumer::Name who;
  who.set_name("consumer");
  const auto reply = conn->call<Greet>(who);
  ep.stop();
  if (!reply) {
    std::fprintf(stderr, "proto_consumer: %s\n", reply.error().to_string().c_str());
    return 1;
  }
  std::printf("%s -> %s\n", std::string(Greet::name).c_str(), reply->text().c_str());
  return 0;
}
