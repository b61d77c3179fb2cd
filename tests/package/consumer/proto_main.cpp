// A server and a client of two .proto services, in one process, through the descriptors that
// the installed protoc-gen-cmdwire wrote: greeter.cmdwire.h, and api/tally/tally.cmdwire.h from
// a .proto in a subfolder. Exits 0 and prints the greeting and the sum only if both round trips
// are right.
#include <cmdwire/client.hpp>
#include <cmdwire/endpoint.hpp>
#include <cstdio>
#include <string>

#include "api/tally/tally.cmdwire.h"
#include "greeter.cmdwire.h"

using Greet = consumer::Greeter::Greet;
static_assert(Greet::name == "Greeter.Greet");
static_assert(Greet::idempotent);
using Add = consumer::tally::Tally::Add;
static_assert(Add::name == "Tally.Add");

int main() {
  cmdwire::endpoint ep;
  ep.handle<Greet>([](const consumer::Name& who) {
    consumer::Greeting g;
    g.set_text("Hello, " + who.name());
    return g;
  });
  ep.handle<Add>([](const consumer::tally::Numbers& in) {
    consumer::tally::Sum s;
    for (const auto v : in.values()) s.set_total(s.total() + v);
    return s;
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
  consumer::tally::Numbers numbers;
  for (const auto v : {2, 3, 37}) numbers.add_values(v);
  const auto sum = conn->call<Add>(numbers);
  ep.stop();
  if (!reply) {
    std::fprintf(stderr, "proto_consumer: %s\n", reply.error().to_string().c_str());
    return 1;
  }
  if (!sum) {
    std::fprintf(stderr, "proto_consumer: %s\n", sum.error().to_string().c_str());
    return 1;
  }
  std::printf("%s -> %s\n", std::string(Greet::name).c_str(), reply->text().c_str());
  std::printf("%s -> %lld\n", std::string(Add::name).c_str(), static_cast<long long>(sum->total()));
  return 0;
}
