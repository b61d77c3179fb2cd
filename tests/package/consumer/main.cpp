// A server and a client of one command with a recursive payload, in one process, built against
// an installed cmdwire. Exits 0 and prints the count only if the round trip is right.
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cmdwire/client.hpp>
#include <cmdwire/command.hpp>
#include <cmdwire/endpoint.hpp>
#include <cmdwire/version.hpp>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

struct Tree {
  std::string name;
  std::vector<Tree> children;
  template <class A>
  void serialize(A& ar) {
    ar(CEREAL_NVP(name), CEREAL_NVP(children));
  }
};

struct Count {
  std::uint64_t nodes = 0;
  template <class A>
  void serialize(A& ar) {
    ar(CEREAL_NVP(nodes));
  }
};

struct CountNodes {
  static constexpr std::string_view name = "COUNT";
  using request = Tree;
  using response = Count;
};

static std::uint64_t count(const Tree& t) {
  std::uint64_t n = 1;
  for (const auto& c : t.children) n += count(c);
  return n;
}

int main() {
  cmdwire::endpoint ep;
  ep.handle<CountNodes>([](const Tree& t) { return Count{count(t)}; });
  const auto port = ep.listen("127.0.0.1", 0);
  if (!port) {
    std::fprintf(stderr, "consumer: %s\n", port.error().message.c_str());
    return 1;
  }
  ep.start();
  Tree tree{"root", {Tree{"a", {Tree{"a1", {}}, Tree{"a2", {}}}}, Tree{"b", {}}}};
  auto conn = cmdwire::client::connect("127.0.0.1:" + std::to_string(*port));
  if (!conn) {
    std::fprintf(stderr, "consumer: %s\n", conn.error().message.c_str());
    return 1;
  }
  const auto reply = conn->call<CountNodes>(tree);
  ep.stop();
  if (!reply || reply->nodes != 5) {
    std::fprintf(stderr, "consumer: wrong reply\n");
    return 1;
  }
  std::printf("cmdwire %s: COUNT -> %llu\n", CMDWIRE_VERSION_STRING,
              static_cast<unsigned long long>(reply->nodes));
  return 0;
}
