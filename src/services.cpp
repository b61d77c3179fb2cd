// Echo, daytime and the chat room: connection and datagram handlers on top of the endpoint's
// listeners, so they share its threads, limits and stop().
#include "cmdwire/services.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <algorithm>
#include <boost/asio/this_coro.hpp>
#include <chrono>
#include <ctime>
#include <mutex>
#include <vector>

#include "outbox.hpp"

namespace cmdwire {

asio::awaitable<void> echo_session(stream& s) {
  for (;;) {
    // The view is valid until the next read, and the write completes before that.
    auto bytes = co_await s.async_read_some();
    if (!bytes) co_return;  // EOF or reset: the peer is done
    if (auto written = co_await s.async_write(*bytes); !written) co_return;
  }
}

std::string daytime_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[64];
  const std::size_t n = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S UTC", &utc);
  return {text, n};
}

asio::awaitable<void> daytime_session(stream& s) {
  // Returning closes the connection, which is how RFC 867 marks the end of the answer.
  (void)co_await s.async_write(daytime_now() + "\r\n");
}

std::optional<std::string> udp_echo_reply(std::string_view datagram,
                                          const asio::ip::udp::endpoint& /*from*/) {
  return std::string(datagram);
}

std::optional<std::string> udp_daytime_reply(std::string_view /*datagram*/,
                                             const asio::ip::udp::endpoint& /*from*/) {
  return daytime_now() + "\r\n";
}

struct chat_room::impl {
  chat_options options;
  mutable std::mutex mutex;  ///< guards members and evictions
  detail::fanout members;
  std::size_t evictions = 0;

  void log(log_level level, const stream& s, std::string_view what) const {
    if (options.log) options.log(level, fmt::format("{}: {}", s.peer_name(), what));
  }

  /// Copies `bytes` into every member's queue; never waits for a socket.
  void broadcast(std::string_view bytes) {
    std::lock_guard lock(mutex);
    evictions += members.deliver(bytes).evicted;
  }

  std::size_t join(detail::outbox& box) {
    std::lock_guard lock(mutex);
    members.add(box);
    return members.size();
  }

  std::size_t leave(detail::outbox& box) {
    std::lock_guard lock(mutex);
    members.remove(box);
    return members.size();
  }

  asio::awaitable<void> async_read_and_broadcast(stream& s) {
    for (;;) {
      auto bytes = co_await s.async_read_some();
      if (!bytes) co_return;
      broadcast(*bytes);
    }
  }
};

chat_room::chat_room(chat_options options) : impl_(std::make_unique<impl>()) {
  impl_->options = std::move(options);
}

chat_room::~chat_room() = default;

connection_handler chat_room::handler() {
  return [this](stream& s) { return async_serve(s); };
}

asio::awaitable<void> chat_room::async_serve(stream& s) {
  detail::outbox box(co_await asio::this_coro::executor, impl_->options.limits);
  const std::size_t joined = impl_->join(box);
  std::size_t left = 0;
  detail::leave_guard leave([&] { left = impl_->leave(box); });
  impl_->log(log_level::info, s, fmt::format("joined the chat ({} members)", joined));
  s.set_idle_timeout({});  // silent members are normal in a chat

  co_await detail::async_serve_pushed(s, box, impl_->async_read_and_broadcast(s));

  leave.now();
  if (box.evicted()) {
    impl_->log(log_level::warn, s,
               fmt::format("disconnected from the chat: not reading, {} ({} members)",
                           box.eviction_reason(), left));
  } else {
    impl_->log(log_level::info, s, fmt::format("left the chat ({} members)", left));
  }
}

std::size_t chat_room::members() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->members.size();
}

std::size_t chat_room::evictions() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->evictions;
}

}  // namespace cmdwire
