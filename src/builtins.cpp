// HEALTH, STATS and DESCRIBE: answered from the endpoint's public state only.
#include "builtins.hpp"

#include <fmt/format.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace cmdwire::detail {

raw_handler health_handler(const endpoint& ep) {
  return [&ep](const request_context&, reply_writer& w) {
    w.body() = ep.draining() ? "DRAINING" : "SERVING";
  };
}

raw_handler stats_handler(const endpoint& ep) {
  return [&ep](const request_context&, reply_writer& w) { w.body() = to_json(ep.report()); };
}

raw_handler describe_handler(const endpoint& ep) {
  // Rendered once, by whichever worker asks first: the registry is fixed from start() on.
  struct rendered {
    std::once_flag once;
    std::vector<command_description> all;
    std::string json;
  };
  return [&ep, cache = std::make_shared<rendered>()](const request_context& rc, reply_writer& w) {
    std::call_once(cache->once, [&] {
      cache->all = ep.descriptions();
      cache->json = to_json(cache->all);
    });
    if (rc.body.empty()) {
      w.body() = cache->json;
      return;
    }
    for (const auto& d : cache->all) {
      if (d.name == rc.body) {
        w.body() = to_json(std::vector<command_description>{d});
        return;
      }
    }
    w.fail(errc::unknown_command, fmt::format("no command '{}' to describe", rc.body));
  };
}

}  // namespace cmdwire::detail
