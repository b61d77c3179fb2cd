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

namespace {
/// What a client must stay within, so that one written from PROTOCOL.md can size its
/// requests without knowing how the server was started (§11).
endpoint_report::limits_report limits_of(const endpoint_options& o) {
  endpoint_report::limits_report l;
  l.max_line = o.limits.max_line;
  l.max_body = o.limits.max_body;
  l.max_depth = o.decode.max_depth;
  l.max_pipelined = o.max_pipelined;
  l.max_concurrent = o.max_concurrent;
  l.idle_timeout_ms = static_cast<std::uint64_t>(o.idle_timeout.count());
  l.request_timeout_ms = static_cast<std::uint64_t>(o.request_timeout.count());
  return l;
}
}  // namespace

raw_handler stats_handler(const endpoint& ep) {
  return [&ep](const request_context&, reply_writer& w) {
    endpoint_report r = ep.report();
    r.limits = limits_of(ep.options());
    w.body() = to_json(r);
  };
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
