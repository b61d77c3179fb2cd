// What a handler knows about the call it answers: who asked, the request's id and encoding, by
// when the answer is wanted, and whether it still is (deadline passed, peer gone, shutdown).
#pragma once

#include <atomic>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "cmdwire/wire.hpp"

namespace cmdwire {

namespace asio = boost::asio;

/// Why a call was cancelled.
enum class cancel_reason : std::uint8_t {
  none,
  deadline,   ///< the request's deadline-ms passed: the reply is `ERR deadline`.
  peer_gone,  ///< the client closed the connection: no reply is sent.
  shutdown,   ///< the endpoint's drain timed out: no reply is sent.
};

/// A typed handler may take one as its second parameter (`const call_context&`); a raw handler
/// finds it in `request_context::call`. It lives as long as the handler runs.
///
/// An awaiting handler is cancelled through Asio's per-operation cancellation: the endpoint
/// binds the handler's coroutine to `cancellation_slot()`, so an operation it awaits with
/// `use_awaitable` fails with `operation_aborted` (thrown) once the call is cancelled.
/// A handler that does its own work in a loop can poll `cancelled()`.
class call_context {
 public:
  using clock = std::chrono::steady_clock;

  call_context(const asio::ip::tcp::endpoint& peer, std::optional<std::uint64_t> id,
               wire::encoding enc, std::optional<clock::time_point> deadline,
               std::string_view peer_name = {}) noexcept
      : peer_(&peer), peer_name_(peer_name), id_(id), enc_(enc), deadline_(deadline) {}
  call_context(const call_context&) = delete;
  call_context& operator=(const call_context&) = delete;

  /// The client's IP address and port; unspecified (0.0.0.0:0) over a Unix-domain socket.
  [[nodiscard]] const asio::ip::tcp::endpoint& peer() const noexcept { return *peer_; }
  /// The client for logs: "127.0.0.1:50000", or "unix:/path (uid 1000, pid 4242)".
  [[nodiscard]] std::string_view peer_name() const noexcept { return peer_name_; }
  [[nodiscard]] std::optional<std::uint64_t> id() const noexcept { return id_; }
  [[nodiscard]] wire::encoding encoding() const noexcept { return enc_; }
  /// When the client stops waiting (from the request's `deadline-ms`); none if it sent none.
  [[nodiscard]] std::optional<clock::time_point> deadline() const noexcept { return deadline_; }
  /// Time left before the deadline, zero once it has passed; milliseconds::max() without one.
  [[nodiscard]] std::chrono::milliseconds remaining() const noexcept {
    if (!deadline_) return std::chrono::milliseconds::max();
    const auto left = *deadline_ - clock::now();
    if (left <= clock::duration::zero()) return std::chrono::milliseconds(0);
    // Rounded up: 0.4 ms left is still time, and must not read as "passed".
    return std::chrono::ceil<std::chrono::milliseconds>(left);
  }
  /// Safe to poll from any thread (an offloaded handler runs on the handler pool).
  [[nodiscard]] bool cancelled() const noexcept { return why_cancelled() != cancel_reason::none; }
  [[nodiscard]] cancel_reason why_cancelled() const noexcept {
    return reason_.load(std::memory_order_acquire);
  }
  /// Fires (terminal cancellation) when the call is cancelled.
  [[nodiscard]] asio::cancellation_slot cancellation_slot() noexcept { return signal_.slot(); }

  /// For the endpoint: records why and emits the signal. Only the first reason counts.
  /// Call on the connection's thread (the signal is not thread-safe).
  void cancel(cancel_reason why) noexcept {
    cancel_reason none = cancel_reason::none;
    if (why == cancel_reason::none ||
        !reason_.compare_exchange_strong(none, why, std::memory_order_acq_rel)) {
      return;
    }
    signal_.emit(asio::cancellation_type::terminal);
  }

 private:
  const asio::ip::tcp::endpoint* peer_;
  std::string_view peer_name_;
  std::optional<std::uint64_t> id_;
  wire::encoding enc_;
  std::optional<clock::time_point> deadline_;
  std::atomic<cancel_reason> reason_{cancel_reason::none};
  asio::cancellation_signal signal_;
};

}  // namespace cmdwire
