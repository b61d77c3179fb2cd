// The channel: a core with every address's connections, reconnecting.
#include "cmdwire/channel.hpp"

#include "call_core.hpp"
#include "cmdwire/address.hpp"

namespace cmdwire {

channel::channel(std::shared_ptr<detail::call_core> core) noexcept : caller(std::move(core)) {}
channel::channel(channel&&) noexcept = default;
channel& channel::operator=(channel&&) noexcept = default;
channel::~channel() { close(); }

result<channel> channel::create(const std::vector<std::string>& addresses,
                                channel_options options) {
  if (addresses.empty()) return make_error(errc::bad_address, "a channel needs an address");
  if (options.auth_token.find_first_of("\r\n") != std::string::npos) {
    return make_error(errc::bad_request, "auth token must be a single line");
  }
  std::vector<address> targets;
  std::vector<std::string> names;
  for (const auto& text : addresses) {
    auto where = parse_address(text);
    if (!where) return where.error();
    names.push_back(where->to_string());
    targets.push_back(std::move(*where));
  }
  auto core = std::make_shared<detail::call_core>(std::move(targets), std::move(names),
                                                  std::move(options), detail::call_core::mode{});
  core->start();
  return channel(std::move(core));
}

result<channel> channel::create(std::string_view address, channel_options options) {
  return create(std::vector<std::string>{std::string(address)}, std::move(options));
}

channel_stats channel::stats() const { return core_ ? core_->stats() : channel_stats{}; }

void channel::close() {
  if (core_) core_->shutdown();
}

}  // namespace cmdwire
