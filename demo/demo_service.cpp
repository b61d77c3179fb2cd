// The demo commands' handlers.
#include "demo/demo_service.hpp"

#include "demo/demo_commands.hpp"

namespace cmdwire::demo {

void register_demo_commands(cmdwire::endpoint& ep) {
  // The original Go STRING handler read one line and answered with a fixed thank-you.
  ep.handle<String>([](const std::string&) { return std::string("Thank you."); });
  ep.handle<Struct>([](const ComplexData& data) { return summarize(data); });
  ep.handle<Proto>([](const pb::Complex& data) { return summarize(data); });
  ep.handle<Echo>([](std::string_view body) { return body; });
  ep.handle<Ping>([](none) { return std::string("PONG"); });
  ep.handle<Daytime>([](none) { return daytime_now(); });
  ep.handle<Commands>([&ep](none) {
    std::string list;
    for (const auto& name : ep.command_names()) list.append(name).push_back('\n');
    if (!list.empty()) list.pop_back();
    return list;
  });
}

}  // namespace cmdwire::demo
