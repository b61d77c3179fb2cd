// Publish/subscribe on the endpoint: a topic registry of subscriber outboxes, the SUBSCRIBE
// stream handler that turns a connection into a subscriber, and PUBLISH.
#include "broker.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <algorithm>
#include <boost/asio/this_coro.hpp>

#include "cmdwire/pubsub.hpp"
#include "endpoint_impl.hpp"
#include "outbox.hpp"

namespace cmdwire::detail {

broker::broker(const endpoint_options& opt) : opt_(opt) {}

broker::~broker() = default;

void broker::start() {
  // Made here, not in the constructor: the endpoint's options are final only at start.
  if (opt_.pubsub_redis && !backplane_) {
    backplane_ = std::make_unique<redis_backplane>(
        *opt_.pubsub_redis, opt_.log,
        [this](std::string_view topic, std::string_view body) { publish_local(topic, body); });
    backplane_->start();
  }
}

void broker::stop() {
  if (backplane_) backplane_->stop();
}

std::optional<endpoint_report::backplane_report> broker::backplane_report() const {
  if (!backplane_) return std::nullopt;
  return backplane_->report();
}

std::size_t broker::publish(std::string_view topic, std::string_view body) {
  if (backplane_) backplane_->publish_detached(topic, body);
  return publish_local(topic, body);
}

std::size_t broker::publish_local(std::string_view topic, std::string_view body) {
  const std::string head = fmt::format("MSG {} {}\n", topic, body.size());
  std::lock_guard lock(mutex_);
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return 0;
  // Evicted subscribers leave the topic here; their coroutines' remove() then finds nothing.
  const fanout::delivery d = it->second.deliver(head, body, std::string_view("\n"));
  if (it->second.empty()) topics_.erase(it);
  return d.delivered;
}

void broker::add(const std::string& topic, outbox& box) {
  std::lock_guard lock(mutex_);
  topics_[topic].add(box);
}

void broker::remove(const std::string& topic, outbox& box) {
  std::lock_guard lock(mutex_);
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return;
  it->second.remove(box);
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

  outbox box(co_await asio::this_coro::executor, opt_.subscriber_limits);
  add(topic, box);
  leave_guard leave([&] {
    remove(topic, box);
    if (backplane_) backplane_->leave(topic);
  });
  const auto log = [&](log_level level, std::string_view what) {
    if (opt_.log) log_line(opt_, level, fmt::format("{}: {} {}", s.peer_name(), what, topic));
  };
  if (backplane_) {
    // The ack promises that publishes from every instance reach this subscriber: it waits
    // until Redis has the subscription, unless Redis is down (then only local ones do, until
    // the backplane is back).
    const bool everywhere = co_await backplane_->async_join(topic);
    if (!everywhere) {
      log(log_level::warn, "pub/sub backplane down: until it is back, only local publishes reach");
    }
  }
  log(log_level::info, "subscribed to");

  // Registered before the acknowledgement, so a publish the peer makes after reading it
  // reaches this subscriber; the writer starts after it, so the OK comes before any MSG.
  std::string ack;
  wire::append_ok(ack, topic, rc.id);
  if (co_await s.async_write(ack)) co_await async_serve_pushed(s, box, async_discard_input(s));
  // Unregistered before the log line, so whoever reads the log sees publishes skip it.
  leave.now();
  if (box.evicted()) {
    log(log_level::warn,
        fmt::format("disconnected: not reading, {}, subscribed to", box.eviction_reason()));
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

asio::awaitable<void> broker::async_handle_publish(const request_context& rc, reply_writer& w) {
  std::string_view topic;
  std::string_view message;
  if (!pubsub::split_publish_body(rc.body, topic, message)) {
    handle_publish(rc, w);  // the same refusal
    co_return;
  }
  const std::size_t here = publish_local(topic, message);
  const redis_backplane::publish_outcome there = co_await backplane_->async_publish(topic, message);
  if (!there.error.empty()) {
    if (opt_.log) {
      log_line(opt_, log_level::warn,
               fmt::format("PUBLISH {}: delivered to {} local subscribers "
                           "only: {}",
                           topic, here, there.error));
    }
    w.fail(errc::unavailable,
           fmt::format("delivered to {} subscribers on this instance only: {}", here, there.error));
    co_return;
  }
  fmt::format_to(std::back_inserter(w.body()), "{}", here + there.instances);
}

void add_pubsub_commands(endpoint& ep, broker& b) {
  ep.handle_stream("SUBSCRIBE",
                   [&b](const request_context& rc, stream& s) { return b.async_subscribe(rc, s); });
  if (b.has_backplane()) {
    ep.handle_raw_async(
        "PUBLISH",
        [&b](const request_context& rc, reply_writer& w) { return b.async_handle_publish(rc, w); },
        /*line=*/true);
  } else {
    ep.handle_raw(
        "PUBLISH", [&b](const request_context& rc, reply_writer& w) { b.handle_publish(rc, w); },
        /*line=*/true);
  }
}

}  // namespace cmdwire::detail
