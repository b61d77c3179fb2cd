// HEALTH and STATS: answered from the endpoint's public state only.
#include "builtins.hpp"

namespace cmdwire::detail {

raw_handler health_handler(const endpoint& ep) {
  return [&ep](const request_context&, reply_writer& w) {
    w.body() = ep.draining() ? "DRAINING" : "SERVING";
  };
}

raw_handler stats_handler(const endpoint& ep) {
  return [&ep](const request_context&, reply_writer& w) { w.body() = to_json(ep.report()); };
}

}  // namespace cmdwire::detail
