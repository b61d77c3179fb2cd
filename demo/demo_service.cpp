// The demo commands' handlers.
#include "demo/demo_service.hpp"

#include <fmt/format.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

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
  ep.handle<Sleep>([](const std::string& line) -> asio::awaitable<cmdwire::result<std::string>> {
    const auto ms = parse_sleep(line);
    if (!ms) co_return ms.error();
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(*ms));
    // Cancelling the call (deadline, client gone) cancels this wait: it throws
    // operation_aborted and the endpoint answers, or not, for the reason it cancelled.
    co_await timer.async_wait(asio::use_awaitable);
    co_return fmt::format("slept {} ms", *ms);
  });
  ep.handle<Hash>([](const std::string& line,
                     const cmdwire::call_context& call) { return hash_rounds(line, &call); },
                  cmdwire::offload);
  ep.handle<Commands>([&ep](none) {
    std::string list;
    for (const auto& name : ep.command_names()) list.append(name).push_back('\n');
    if (!list.empty()) list.pop_back();
    return list;
  });
}

}  // namespace cmdwire::demo
