// The commands an endpoint registers itself (PROTOCOL.md §11): HEALTH for load balancers and
// STATS and DESCRIBE for people and scripts. Not installed.
#pragma once

#include "cmdwire/endpoint.hpp"

namespace cmdwire::detail {

inline constexpr std::string_view health_command = "HEALTH";
inline constexpr std::string_view stats_command = "STATS";
inline constexpr std::string_view describe_command = "DESCRIBE";

/// `SERVING`, or `DRAINING` once the endpoint's stop() has begun.
[[nodiscard]] raw_handler health_handler(const endpoint& ep);
/// The endpoint's report as JSON, whatever the request's encoding.
[[nodiscard]] raw_handler stats_handler(const endpoint& ep);
/// Every command's description as JSON; with a body, only the command it names.
[[nodiscard]] raw_handler describe_handler(const endpoint& ep);

}  // namespace cmdwire::detail
