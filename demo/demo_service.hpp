// Registers the demo commands (STRING, STRUCT, PROTO, ECHO, PING, DAYTIME, SLEEP, HASH,
// COMMANDS) on an endpoint through the public API, exactly as a user registers their own.
#pragma once

#include "cmdwire/endpoint.hpp"

namespace cmdwire::demo {

/// Call before `ep.start()`. COMMANDS lists whatever is registered on `ep` when it runs.
void register_demo_commands(cmdwire::endpoint& ep);

}  // namespace cmdwire::demo
