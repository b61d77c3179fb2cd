// Publish/subscribe on the endpoint: a topic registry of subscriber outboxes, the SUBSCRIBE
// stream handler that turns a connection into a subscriber, and PUBLISH.
#include "broker.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <algorithm>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>

#include "cmdwire/pubsub.hpp"
#include "endpoint_impl.hpp"
#include "outbox.hpp"

namespace cmdwire::detail {

std::size_t broker::publish(std::string_view topic, std::string_view body) {
  const std::string head = fmt::format("MSG {} {}\n", topic, body.size());
  std::size_t receivers = 0;
  std::lock_guard lock(mutex_);
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return 0;
  std::vector<outbox*>& boxes = it->second;
  // An evicted subscriber leaves the topic now, so later publishes skip it even before its
  // connection has noticed; its coroutine's remove() then finds nothing to do.
  std::erase_if(boxes, [&](outbox* box) {
    if (box->push(head, body, std::string_view("\n"))) {
      ++receivers;
      return false;
    }
    return true;
  });
  if (boxes.empty()) topics_.erase(it);
  return receivers;
}

void broker::add(const std::string& topic, outbox& box) {
  std::lock_guard lock(mutex_);
  topics_[topic].push_back(&box);
}

void broker::remove(const std::string& topic, outbox& box) {
  std::lock_guard lock(mutex_);
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return;
  std::erase(it->second, &box);
  if (it->second.empty()) topics_.erase(it);
}

asio::awaitable<void> broker::async_subscribe(const request_context& rc, stream& s) {
  // The topic is the body: LENGTH bytes when given, else the next line (`SUBSCRIBE\nnews\n`).
  result<std::string_view> body = std::string_view{};
  if (rc.length) {
    body = co_await s.async_read_exact(*rc.length);
  } else {
    body = co_await s.async_read_line();
  }
  if (!body) {
    s.close();  // the framing is lost (or the peer left): nothing after it can be trusted
    co_return;
  }
  s.set_idle_timeout({});  // a subscriber may hear nothing for hours; that is not idleness
  const std::string topic(*body);
  if (!pubsub::valid_topic(topic)) {
    std::string reply;
    wire::append_error(reply, errc::bad_body,
                       "a topic is 1-64 bytes of ASCII letters, digits and _ - . : /", rc.id);
    (void)co_await s.async_write(reply);
    co_return;  // the body was read whole, so the connection can go on with commands
  }

  outbox box(co_await asio::this_coro::executor, opt_.max_subscriber_queue);
  add(topic, box);
  struct leave_on_exit {  // also when the frame is destroyed by a stopping worker
    broker& self;
    const std::string& topic;
    outbox& box;
    bool left = false;
    void now() {
      if (!left) self.remove(topic, box);
      left = true;
    }
    ~leave_on_exit() { now(); }
  } leave{*this, topic, box};
  const auto log = [&](log_level level, std::string_view what) {
    if (opt_.log)
      log_line(opt_, level, fmt::format("{}: {} {}", fmt::streamed(s.peer()), what, topic));
  };
  log(log_level::info, "subscribed to");

  // Registered before the acknowledgement, so a publish the peer makes after reading it
  // reaches this subscriber; the writer starts after it, so the OK comes before any MSG.
  std::string ack;
  wire::append_ok(ack, topic, rc.id);
  if (co_await s.async_write(ack)) {
    using namespace asio::experimental::awaitable_operators;
    co_await (async_then_close(async_discard_input(s), s) ||
              async_then_close(box.async_drain_to(s), s) ||
              async_then_close(box.async_wait_evicted(), s));
  }
  // Unregistered before the log line, so whoever reads the log sees publishes skip it.
  leave.now();
  if (box.evicted()) {
    log(log_level::warn, fmt::format("disconnected: not reading, over {} bytes queued for",
                                     opt_.max_subscriber_queue));
  } else {
    log(log_level::info, "unsubscribed from");
  }
  s.close();
}

void broker::handle_publish(const request_context& rc, reply_writer& w) {
  std::string_view topic;
  std::string_view message;
  if (!pubsub::split_publish_body(rc.body, topic, message)) {
    w.fail(errc::bad_body,
           "PUBLISH body is TOPIC [SP MESSAGE]; a topic is 1-64 bytes of ASCII letters, digits "
           "and _ - . : /");
    return;
  }
  fmt::format_to(std::back_inserter(w.body()), "{}", publish(topic, message));
}

void add_pubsub_commands(endpoint& ep, broker& b) {
  ep.handle_stream("SUBSCRIBE",
                   [&b](const request_context& rc, stream& s) { return b.async_subscribe(rc, s); });
  ep.handle_raw(
      "PUBLISH", [&b](const request_context& rc, reply_writer& w) { b.handle_publish(rc, w); },
      /*line=*/true);
}

}  // namespace cmdwire::detail
