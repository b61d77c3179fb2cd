// Example server: keeps an inventory and serves the ADD command from inventory.hpp.
// Usage: example-server [PORT]   (prints "listening on PORT"; port 0 picks a free one)
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "cmdwire/endpoint.hpp"
#include "inventory.hpp"

int main(int argc, char** argv) {
  const auto port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 0);
  cmdwire::endpoint ep;
  std::mutex mutex;  // handlers run on several I/O threads
  inventory::Stock stock;
  ep.handle<inventory::Add>([&](const inventory::Item& item) {
    std::lock_guard lock(mutex);
    stock.items.push_back(item);
    stock.total += item.quantity;
    return stock;
  });
  auto bound = ep.listen("127.0.0.1", port);
  if (!bound) {
    std::fprintf(stderr, "example-server: %s\n", bound.error().message.c_str());
    return 1;
  }
  // Catch SIGINT/SIGTERM before announcing the port: whoever reads that line may signal at once.
  boost::asio::io_context signals_context;
  boost::asio::signal_set signals(signals_context, SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) { ep.stop(); });
  std::printf("listening on %u\n", static_cast<unsigned>(*bound));
  std::fflush(stdout);
  ep.start();
  signals_context.run();
}
