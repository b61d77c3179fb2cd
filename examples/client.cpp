// Example client: adds two items through the ADD command from inventory.hpp.
// Usage: example-client HOST:PORT
#include <cstdio>

#include "cmdwire/client.hpp"
#include "inventory.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr,
                 "Usage: example-client HOST:PORT\nExample: example-client 127.0.0.1:7000\n");
    return 2;
  }
  auto conn = cmdwire::client::connect(argv[1]);
  if (!conn) {
    std::fprintf(stderr, "example-client: %s\n", conn.error().message.c_str());
    return 3;
  }
  for (const inventory::Item& item : {inventory::Item{"apple", 3}, inventory::Item{"pear", 4}}) {
    auto stock = conn->call<inventory::Add>(item);
    if (!stock) {
      std::fprintf(stderr, "example-client: %s\n", stock.error().to_string().c_str());
      return 1;
    }
    std::printf("added %s x%d: %zu items, total %lld\n", item.sku.c_str(), item.quantity,
                stock->items.size(), static_cast<long long>(stock->total));
  }
}
