// A bounded outgoing queue for one pushed-to connection (a chat member, a subscriber): any
// thread appends, the connection's own writer coroutine drains it. Not installed.
#pragma once

#include <fmt/format.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cmdwire/endpoint.hpp"
#include "nothrow.hpp"

namespace cmdwire::detail {

/// Bytes waiting for one slow reader. `push` never blocks and never waits for the socket: when
/// the queue passes its `push_limits` the outbox is *evicted* instead (queue dropped, writer and
/// watcher woken), so one client that stops reading cannot hold up the others or grow memory.
/// Lives in the connection's coroutine frame; registries that hand it to other threads must
/// unregister it (under their own lock) before it is destroyed.
class outbox {
 public:
  using clock = std::chrono::steady_clock;

  outbox(const asio::any_io_executor& ex, const push_limits& limits)
      : limits_(limits), doorbell_(ex, 1), evicted_signal_(ex, 1) {}
  outbox(const outbox&) = delete;
  outbox& operator=(const outbox&) = delete;

  /// Appends the concatenation of `parts`. Any thread. Returns false if the outbox is (now)
  /// evicted and the bytes were dropped.
  template <class... Parts>
  bool push(const Parts&... parts) {
    const std::size_t n = (std::string_view(parts).size() + ...);
    std::lock_guard lock(mutex_);
    if (evicted_) return false;
    // Counts the bytes waiting for the writer, not the batch it is writing now: a reader that
    // keeps up always has one batch in flight. Memory per outbox stays under 2 x hard_bytes.
    const std::size_t queued = pending_.size() + n;
    if (queued > limits_.hard_bytes)
      return evict(fmt::format("over {} bytes queued", limits_.hard_bytes));
    if (queued > limits_.soft_bytes) {
      const auto now = clock::now();
      if (!over_soft_since_) {
        over_soft_since_ = now;
      } else if (now - *over_soft_since_ >= limits_.soft_for) {
        return evict(fmt::format("over {} bytes queued for {} ms", limits_.soft_bytes,
                                 limits_.soft_for.count()));
      }
    }
    (pending_.append(std::string_view(parts)), ...);
    (void)doorbell_.try_send(boost::system::error_code{});
    return true;
  }

  [[nodiscard]] bool evicted() const {
    std::lock_guard lock(mutex_);
    return evicted_;
  }

  /// Why the outbox was evicted ("over 33554432 bytes queued"); empty while it is not.
  [[nodiscard]] std::string eviction_reason() const {
    std::lock_guard lock(mutex_);
    return reason_;
  }

  /// Writes queued bytes to `s` as they come. Completes on eviction, on a write error, or when
  /// cancelled. Run on the connection's executor; only one at a time.
  asio::awaitable<void> async_drain_to(stream& s) {
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
      std::lock_guard lock(mutex_);
      // The queue fell back under the soft limit: the reader caught up, the clock restarts.
      if (pending_.size() <= limits_.soft_bytes) over_soft_since_.reset();
    }
  }

  /// Completes when the outbox is evicted (or cancelled). Run through async_then_close next to
  /// the writer, it ends a write that a non-reading peer keeps blocked forever.
  asio::awaitable<void> async_wait_evicted() {
    (void)co_await evicted_signal_.async_receive(nothrow);
  }

 private:
  using signal = asio::experimental::concurrent_channel<void(boost::system::error_code)>;

  /// Called with mutex_ held. Always returns false (the push that caused it is dropped).
  bool evict(std::string why) {
    evicted_ = true;
    reason_ = std::move(why);
    pending_ = std::string();  // the reader is gone for us: free the memory now
    // Both channels hold one token, and completions are posted, never run inline, so ringing
    // under the caller's registry lock cannot re-enter it.
    (void)evicted_signal_.try_send(boost::system::error_code{});
    (void)doorbell_.try_send(boost::system::error_code{});
    return false;
  }

  const push_limits limits_;
  mutable std::mutex mutex_;  ///< guards everything below
  std::string pending_;
  std::optional<clock::time_point> over_soft_since_;
  bool evicted_ = false;
  std::string reason_;
  signal doorbell_;        ///< "pending_ is not empty (or evicted)"; one token at most
  signal evicted_signal_;  ///< rung once, on eviction
};

/// The outboxes one message is copied into: a topic's subscribers, or a chat room's members.
/// Shared by the broker and the chat room. Not locked itself: its owner's registry lock guards it.
class fanout {
 public:
  struct delivery {
    std::size_t delivered = 0;  ///< outboxes that took the message
    std::size_t evicted = 0;    ///< outboxes evicted by it (they have left the fanout)
  };

  void add(outbox& box) { boxes_.push_back(&box); }
  void remove(outbox& box) { std::erase(boxes_, &box); }
  [[nodiscard]] std::size_t size() const noexcept { return boxes_.size(); }
  [[nodiscard]] bool empty() const noexcept { return boxes_.empty(); }

  /// Queues the concatenation of `parts` in every outbox; never waits for a socket. An evicted
  /// outbox leaves at once, so the next message skips it even before its connection notices.
  template <class... Parts>
  delivery deliver(const Parts&... parts) {
    delivery d;
    std::erase_if(boxes_, [&](outbox* box) {
      if (box->push(parts...)) {
        ++d.delivered;
        return false;
      }
      ++d.evicted;
      return true;
    });
    return d;
  }

 private:
  std::vector<outbox*> boxes_;
};

/// Runs `fn` when it goes out of scope (a frame destroyed by a stopping worker included), or
/// earlier through now(); once either way. How a pushed-to connection leaves its fanout.
template <class F>
class leave_guard {
 public:
  explicit leave_guard(F fn) : fn_(std::move(fn)) {}
  leave_guard(const leave_guard&) = delete;
  leave_guard& operator=(const leave_guard&) = delete;
  ~leave_guard() { now(); }
  void now() {
    if (!done_) fn_();
    done_ = true;
  }

 private:
  F fn_;
  bool done_ = false;
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

/// Serves a pushed-to connection until it ends: `reader` handles what the peer sends, the
/// outbox's writer sends what is queued, and a watcher ends both on eviction. A peer that
/// half-closes is gone as far as its fanout is concerned, so whichever ends first closes the
/// connection for all three.
inline asio::awaitable<void> async_serve_pushed(stream& s, outbox& box,
                                                asio::awaitable<void> reader) {
  using namespace asio::experimental::awaitable_operators;
  co_await (async_then_close(std::move(reader), s) || async_then_close(box.async_drain_to(s), s) ||
            async_then_close(box.async_wait_evicted(), s));
}

}  // namespace cmdwire::detail
