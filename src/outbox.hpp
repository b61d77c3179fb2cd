// A bounded outgoing queue for one pushed-to connection (a chat member, a subscriber): any
// thread appends, the connection's own writer coroutine drains it. Not installed.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>

#include "cmdwire/endpoint.hpp"

namespace cmdwire::detail {

/// Bytes waiting for one slow reader. `push` never blocks and never waits for the socket: when
/// the queue would pass `max_bytes` the outbox is *evicted* instead (queue dropped, writer and
/// watcher woken), so one client that stops reading cannot hold up the others or grow memory.
/// Lives in the connection's coroutine frame; registries that hand it to other threads must
/// unregister it (under their own lock) before it is destroyed.
class outbox {
 public:
  outbox(const asio::any_io_executor& ex, std::size_t max_bytes)
      : max_bytes_(max_bytes), doorbell_(ex, 1), evicted_signal_(ex, 1) {}
  outbox(const outbox&) = delete;
  outbox& operator=(const outbox&) = delete;

  /// Appends the concatenation of `parts`. Any thread. Returns false if the outbox is (now)
  /// evicted and the bytes were dropped.
  template <class... Parts>
  bool push(const Parts&... parts) {
    const std::size_t n = (std::string_view(parts).size() + ...);
    std::lock_guard lock(mutex_);
    if (evicted_) return false;
    if (pending_.size() + n > max_bytes_) {
      evicted_ = true;
      pending_ = std::string();  // the reader is gone for us: free the memory now
      // Both channels hold one token, and completions are posted, never run inline, so
      // ringing under the caller's registry lock cannot re-enter it.
      (void)evicted_signal_.try_send(boost::system::error_code{});
      (void)doorbell_.try_send(boost::system::error_code{});
      return false;
    }
    (pending_.append(std::string_view(parts)), ...);
    (void)doorbell_.try_send(boost::system::error_code{});
    return true;
  }

  [[nodiscard]] bool evicted() const {
    std::lock_guard lock(mutex_);
    return evicted_;
  }

  /// Writes queued bytes to `s` as they come. Completes on eviction, on a write error, or when
  /// cancelled. Run on the connection's executor; only one at a time.
  asio::awaitable<void> async_drain_to(stream& s) {
    constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
    std::string writing;  // swapped with pending_, so the two buffers are reused
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        if (evicted_) co_return;
        writing.swap(pending_);
      }
      if (writing.empty()) {
        auto [ec] = co_await doorbell_.async_receive(nothrow);
        if (ec) co_return;
        continue;
      }
      if (auto written = co_await s.async_write(writing); !written) co_return;
      writing.clear();
    }
  }

  /// Completes when the outbox is evicted (or cancelled). Run through async_then_close next to
  /// the writer, it ends a write that a non-reading peer keeps blocked forever.
  asio::awaitable<void> async_wait_evicted() {
    constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
    (void)co_await evicted_signal_.async_receive(nothrow);
  }

 private:
  using signal = asio::experimental::concurrent_channel<void(boost::system::error_code)>;

  const std::size_t max_bytes_;
  mutable std::mutex mutex_;  ///< guards pending_ and evicted_
  std::string pending_;
  bool evicted_ = false;
  signal doorbell_;        ///< "pending_ is not empty (or evicted)"; one token at most
  signal evicted_signal_;  ///< rung once, on eviction
};

/// Runs `op`, then closes `s`. The session's reads and writes ignore per-operation cancellation
/// (it stops them by closing the socket), so in a `reader || writer || watcher` group the
/// branch that ends first must close the stream for the others to end too.
inline asio::awaitable<void> async_then_close(asio::awaitable<void> op, stream& s) {
  co_await std::move(op);
  s.close();
}

/// Reads and drops whatever the peer sends until it closes or the read fails: a pushed-to
/// connection has nothing more to say, but its EOF is how we learn it left.
inline asio::awaitable<void> async_discard_input(stream& s) {
  for (;;) {
    if (auto bytes = co_await s.async_read_some(); !bytes) co_return;
  }
}

}  // namespace cmdwire::detail
