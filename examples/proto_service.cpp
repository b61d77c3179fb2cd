// Example: a protobuf service served and called through the descriptors that protoc-gen-cmdwire
// writes. proto/demo.proto's `service Demo` becomes proto/demo.cmdwire.h, one descriptor per rpc
// in namespace cmdwire::demo::pb::Demo (wire names "Demo.Summarize", "Demo.Deepest"). This
// program serves both on 127.0.0.1 (a free port) and calls each once through cmdwire::client.
// Usage: example-proto-service
#include <cstdio>
#include <string>

#include "cmdwire/client.hpp"
#include "cmdwire/endpoint.hpp"
#include "demo/demo_commands.hpp"  // summarize(): what the PROTO command answers
#include "proto/demo.cmdwire.h"

namespace pb = cmdwire::demo::pb;

int main(int argc, char**) {
  if (argc != 1) {
    std::fprintf(stderr, "Usage: example-proto-service\nExample: example-proto-service\n");
    return 2;
  }
  cmdwire::endpoint ep;
  ep.handle<pb::Demo::Summarize>(
      [](const pb::Complex& chain) { return cmdwire::demo::summarize(chain); });
  ep.handle<pb::Demo::Deepest>([](const pb::Complex& chain) {
    const pb::Complex* level = &chain;
    while (level->has_c()) level = &level->c();
    return *level;  // the last level has no child
  });
  const auto port = ep.listen("127.0.0.1", 0);
  if (!port) {
    std::fprintf(stderr, "example-proto-service: %s\n", port.error().message.c_str());
    return 1;
  }
  ep.start();

  auto conn = cmdwire::client::connect("127.0.0.1:" + std::to_string(*port));
  if (!conn) {
    std::fprintf(stderr, "example-proto-service: %s\n", conn.error().message.c_str());
    return 1;
  }
  // A chain of three levels, "a" -> "b" -> "c", each with one map entry.
  pb::Complex chain;
  pb::Complex* level = &chain;
  for (int i = 1; i <= 3; ++i) {
    if (i > 1) level = level->mutable_c();
    level->set_n(i);
    level->set_s(std::string(1, static_cast<char>('a' + i - 1)));
    (*level->mutable_m())["level"] = i;
  }

  const auto summary = conn->call<pb::Demo::Summarize>(chain);
  if (!summary) {
    std::fprintf(stderr, "example-proto-service: %s\n", summary.error().to_string().c_str());
    return 1;
  }
  std::printf("%s: depth %u, entries %llu, names %s\n",
              std::string(pb::Demo::Summarize::name).c_str(), summary->depth(),
              static_cast<unsigned long long>(summary->entries()), summary->names().c_str());

  const auto deepest = conn->call<pb::Demo::Deepest>(chain);
  if (!deepest) {
    std::fprintf(stderr, "example-proto-service: %s\n", deepest.error().to_string().c_str());
    return 1;
  }
  std::printf("%s: n %lld, s %s, child %s\n", std::string(pb::Demo::Deepest::name).c_str(),
              static_cast<long long>(deepest->n()), deepest->s().c_str(),
              deepest->has_c() ? "yes" : "none");
  ep.stop();
}
