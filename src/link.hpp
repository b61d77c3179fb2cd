// One client connection and the calls on it: framing at write time, a writer that batches, a
// reader that pairs replies with calls (by id once out-of-order replies are granted, else by
// order), per-call deadlines, keepalive, and one subscription. Not installed.
//
// A link runs on its owner's strand and never reconnects: when its connection ends it hands
// the calls it still holds back, split into those never written and those written but not
// answered, and the owner (src/call_core.cpp) decides what happens to each.
#pragma once

#include <atomic>
#include <boost/asio/any_completion_executor.hpp>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "cmdwire/caller.hpp"
#include "cmdwire/client.hpp"
#include "connection.hpp"

namespace cmdwire::detail {

using strand_type = asio::strand<asio::any_io_executor>;
using clock = std::chrono::steady_clock;

/// One call from the moment it is handed over until its handler has run.
struct call {
  outgoing request;
  asio::any_completion_handler<raw_call_signature> done;  ///< empty once completed
  asio::any_completion_executor work;  ///< keeps the caller's executor busy while we wait
  clock::time_point deadline = clock::time_point::max();
  unsigned attempts = 0;  ///< how many times it was written to a connection

  call(outgoing r, asio::any_completion_handler<raw_call_signature> handler,
       const asio::any_io_executor& fallback);
  call(call&&) noexcept = default;
  // Boost 1.81's any_completion_handler move assignment recurses for ever: never assign.
  call& operator=(call&&) = delete;
  [[nodiscard]] bool completed() const noexcept { return !done; }
  /// Runs the handler (once) on its associated executor.
  void complete(std::error_code ec, std::string body);
  void fail(const error& why) { complete(why.code, why.message); }
};

/// The calls a link gives back when its connection ends.
struct link_end {
  error why;
  std::vector<call> unsent;   ///< never written: safe to send anywhere
  std::vector<call> written;  ///< written, no reply: the server may have run them
};

class link : public std::enable_shared_from_this<link> {
 public:
  using end_callback = std::function<void(link&, link_end)>;

  /// `in_flight` counts the calls of every link of one owner that are not answered yet.
  link(strand_type strand, connection::socket_type socket, const connection_options& conn_options,
       const client_options& options, std::string address,
       std::shared_ptr<std::atomic<std::size_t>> in_flight, end_callback on_end);
  link(const link&) = delete;
  link& operator=(const link&) = delete;

  /// Starts reading replies. Everything below runs on the strand.
  void start();
  /// Queues a call; it is framed when the writer next runs.
  void send(call c);
  /// Pairs replies by id from now on (HELLO granted `ooo`); set before any framed call.
  void use_out_of_order() noexcept { out_of_order_ = true; }
  [[nodiscard]] bool out_of_order() const noexcept { return out_of_order_; }
  /// Sends `PING` after `interval` without receiving anything, and ends the connection when
  /// no reply (any reply: an endpoint without PING answers unknown-command) comes within
  /// `timeout`. With replies in order a PING would wait behind slow calls, so it is sent
  /// only while nothing else is outstanding.
  void start_keepalive(std::chrono::milliseconds interval, std::chrono::milliseconds timeout);
  /// Dedicates the connection to `topic`: `ack` completes when the server confirmed.
  void subscribe(call ack, client::message_handler on_message, client::end_handler on_end);
  /// Ends the connection; the calls go back through the end callback. Idempotent.
  void end(const error& why);

  [[nodiscard]] bool usable() const noexcept { return !ended_ && !subscribed_; }
  [[nodiscard]] bool ended() const noexcept { return ended_; }
  /// Calls not answered yet, written or not: what least-outstanding picking compares.
  [[nodiscard]] std::size_t outstanding() const noexcept { return unanswered_; }
  [[nodiscard]] const std::string& address() const noexcept { return address_; }
  [[nodiscard]] connection& conn() noexcept { return conn_; }
  /// Keeps `p` (a TLS context) alive as long as the connection.
  void keep(std::shared_ptr<void> p) { kept_ = std::move(p); }

 private:
  struct slot {
    call c;
    bool line_reply = false;
    bool answered = false;  ///< its reply came, or it was dropped unsent; the slot goes once
                            ///< those before it do, so in-order pairing stays right
  };

  static asio::awaitable<void> write_queued(std::shared_ptr<link> self);
  static asio::awaitable<void> read_replies(std::shared_ptr<link> self);
  static asio::awaitable<void> keepalive(std::shared_ptr<link> self,
                                         std::chrono::milliseconds interval,
                                         std::chrono::milliseconds timeout);
  /// Completes every call whose reply is complete in the buffer; returns the bytes needed for
  /// the next one, or nothing once the link has ended.
  std::optional<std::size_t> take_replies();
  slot* slot_for(const std::optional<std::uint64_t>& id);
  /// Frames the calls queued since the last write; false when there was nothing to send.
  bool frame_queued();
  void mark_answered(slot& s);
  void arm_timer(clock::time_point at);
  void on_timer();
  void schedule_write();

  strand_type strand_;
  std::shared_ptr<void> kept_;  ///< declared before conn_, so it outlives the TLS stream
  connection conn_;
  const client_options options_;  // a copy: a link may outlive its owner by a few handlers
  std::string address_;
  std::shared_ptr<std::atomic<std::size_t>> in_flight_;
  end_callback on_end_;

  /// In the order queued; a call's sequence number is its id on the wire once out of order.
  std::deque<slot> pending_;
  std::uint64_t front_seq_ = 0;     ///< sequence number of pending_.front()
  std::uint64_t unframed_seq_ = 0;  ///< first call not yet framed
  std::size_t unanswered_ = 0;
  bool out_of_order_ = false;
  bool writer_running_ = false;
  bool ended_ = false;

  using deadline_entry = std::pair<clock::time_point, std::uint64_t>;
  std::priority_queue<deadline_entry, std::vector<deadline_entry>, std::greater<>> deadlines_;
  asio::steady_timer timer_;
  clock::time_point timer_at_ = clock::time_point::max();
  std::optional<asio::steady_timer> keepalive_timer_;
  bool ping_out_ = false;

  bool subscribed_ = false;
  client::message_handler on_message_;
  client::end_handler on_sub_end_;
};

}  // namespace cmdwire::detail
