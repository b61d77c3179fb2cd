// The Redis pub/sub backplane: an Asio adapter for hiredis's async contexts, the PUBLISH link,
// the SUBSCRIBE link with one Redis subscription per locally subscribed topic, reconnection with
// backoff, and a watchdog for a Redis that stops answering.
#include "redis_backplane.hpp"

#include <fmt/format.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>

namespace cmdwire::detail {

namespace {

using clock = std::chrono::steady_clock;

// ---- the adapter: hiredis asks for read/write interest through hooks; Asio waits on the fd.

/// One hiredis context's descriptor. It owns itself (`keep`) while hiredis uses it, and each
/// pending wait holds it too, so a wait that completes after hiredis freed the context finds it
/// still there, sees `ac == nullptr`, and does nothing.
struct redis_watch {
  redisAsyncContext* ac;
  asio::posix::stream_descriptor fd;
  bool want_read = false;
  bool want_write = false;
  bool read_armed = false;
  bool write_armed = false;
  std::shared_ptr<redis_watch> keep;

  redis_watch(asio::io_context& context, redisAsyncContext* c) : ac(c), fd(context, c->c.fd) {}
};

void arm(const std::shared_ptr<redis_watch>& w, bool read) {
  bool& armed = read ? w->read_armed : w->write_armed;
  if (armed || w->ac == nullptr) return;
  armed = true;
  w->fd.async_wait(
      read ? asio::posix::stream_descriptor::wait_read : asio::posix::stream_descriptor::wait_write,
      [w, read](const boost::system::error_code& ec) {
        (read ? w->read_armed : w->write_armed) = false;
        if (ec || w->ac == nullptr || !(read ? w->want_read : w->want_write)) return;
        // Either call may free the context (cleanup then clears w->ac).
        if (read) {
          redisAsyncHandleRead(w->ac);
        } else {
          redisAsyncHandleWrite(w->ac);
        }
        if (w->ac != nullptr && (read ? w->want_read : w->want_write)) arm(w, read);
      });
}

void hook_add_read(void* p) {
  auto* w = static_cast<redis_watch*>(p);
  w->want_read = true;
  arm(w->keep, true);
}
void hook_del_read(void* p) { static_cast<redis_watch*>(p)->want_read = false; }
void hook_add_write(void* p) {
  auto* w = static_cast<redis_watch*>(p);
  w->want_write = true;
  arm(w->keep, false);
}
void hook_del_write(void* p) { static_cast<redis_watch*>(p)->want_write = false; }
void hook_cleanup(void* p) {
  auto* w = static_cast<redis_watch*>(p);
  w->ac = nullptr;
  boost::system::error_code ignored;
  w->fd.cancel(ignored);
  (void)w->fd.release();                 // hiredis closes the descriptor itself
  const auto last = std::move(w->keep);  // may be the last owner: w must not be used after
}

void attach(asio::io_context& context, redisAsyncContext* ac) {
  auto w = std::make_shared<redis_watch>(context, ac);
  w->keep = w;
  ac->ev.data = w.get();
  ac->ev.addRead = hook_add_read;
  ac->ev.delRead = hook_del_read;
  ac->ev.addWrite = hook_add_write;
  ac->ev.delWrite = hook_del_write;
  ac->ev.cleanup = hook_cleanup;
  // The connect is in progress: writable means connected (or failed), as hiredis's own
  // adapters start both waits at attach.
  hook_add_read(w.get());
  hook_add_write(w.get());
}

/// Every topic channel lives under the prefix; this one cannot be a topic (topics have no `#`).
/// The SUBSCRIBE link stays subscribed to it, so its subscription count never falls to 0:
/// hiredis 0.14 leaves subscribed mode at 0, and a SUBSCRIBE answered after that trips an
/// assert inside hiredis.
constexpr std::string_view anchor_suffix = "#anchor";

/// Marks a message with the instance that published it: `cmdwire-origin=<16 hex>\n` + body.
constexpr std::string_view origin_key = "cmdwire-origin=";
constexpr std::size_t origin_size = origin_key.size() + 16 + 1;

std::string reply_text(const redisReply* r) {
  return r == nullptr ? std::string() : std::string(r->str, r->len);
}

}  // namespace

struct redis_backplane::publish_op {
  /// Empty for a detached publish.
  std::optional<asio::any_completion_handler<void(publish_outcome)>> handler;
  asio::any_io_executor home;  ///< the caller's: where the handler runs
  std::string topic;
  clock::time_point sent{};
};

struct redis_backplane::join_op {
  asio::any_completion_handler<void(bool)> handler;
  asio::any_io_executor home;
};

namespace {
/// The caller's executor, counting as work while an op holds it: its io_context does not run
/// out of work (and return from run()) while a call waits on Redis.
asio::any_io_executor tracked(const asio::any_io_executor& ex) {
  return asio::prefer(ex, asio::execution::outstanding_work.tracked);
}

template <class Handler, class Value>
void complete_on(const asio::any_io_executor& home, Handler handler, Value value) {
  // The caller's coroutine resumes on its own worker, never on the backplane's thread.
  asio::post(home, [h = std::move(handler), v = std::move(value)]() mutable { std::move(h)(v); });
}
}  // namespace

redis_backplane::redis_backplane(const redis_backplane_options& options, logger log,
                                 deliver_fn deliver)
    : options_(options), log_(std::move(log)), deliver_(std::move(deliver)) {
  std::random_device entropy;
  const std::uint64_t id = (std::uint64_t{entropy()} << 32) | entropy();
  origin_ = fmt::format("{}{:016x}\n", origin_key, id);
  jitter_.seed(entropy());
}

redis_backplane::~redis_backplane() { stop(); }

void redis_backplane::start() {
  if (thread_.joinable()) return;
  asio::post(context_, [this] {
    connect();
    watchdog();
  });
  thread_ = std::thread([this] {
    auto busy = asio::make_work_guard(context_);
    context_.run();
  });
}

void redis_backplane::stop() {
  std::unique_lock lock(lifecycle_mutex_);
  stopped_.store(true);
  if (!thread_.joinable()) return;
  // Under the mutex: a call that got in before this lambda is posted runs before it.
  asio::post(context_, [this] {
    stopping_ = true;
    reconnect_timer_.cancel();
    watchdog_timer_.cancel();
    free_links();
    fail_all();
    context_.stop();
  });
  lock.unlock();
  thread_.join();
  state_.store(2);
}

void redis_backplane::log(log_level level, std::string_view what) const {
  if (log_) log_(level, fmt::format("redis {}:{}: {}", options_.host, options_.port, what));
}

// ---- connections

void redis_backplane::connect() {
  if (stopping_) return;
  state_.store(0);
  const auto open = [this]() -> redisAsyncContext* {
    redisAsyncContext* ac = redisAsyncConnect(options_.host.c_str(), options_.port);
    if (ac == nullptr) return nullptr;
    if (ac->err != 0) {
      log(log_level::warn, fmt::format("cannot connect: {}", ac->errstr));
      redisAsyncFree(ac);
      return nullptr;
    }
    ac->data = this;
    attach(context_, ac);
    redisAsyncSetConnectCallback(ac, connect_callback);
    redisAsyncSetDisconnectCallback(ac, disconnect_callback);
    if (!options_.password.empty()) {
      // Queued until the connection is up; Redis answers it before anything sent after it.
      redisAsyncCommand(ac, auth_callback, nullptr, "AUTH %b", options_.password.data(),
                        options_.password.size());
    }
    return ac;
  };
  pub_ = open();
  sub_ = pub_ != nullptr ? open() : nullptr;
  if (pub_ == nullptr || sub_ == nullptr) {
    drop_links("cannot connect");
    return;
  }
  const std::string anchor = options_.channel_prefix + std::string(anchor_suffix);
  redisAsyncCommand(sub_, subscription_callback, nullptr, "SUBSCRIBE %b", anchor.data(),
                    anchor.size());
  for (auto it = topics_.begin(); it != topics_.end();) {
    if (it->second.subscribers == 0) {
      it = topics_.erase(it);
      continue;
    }
    send_subscribe(it->first, it->second, true);
    ++it;
  }
}

void redis_backplane::connect_callback(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<redis_backplane*>(ac->data);
  if (status != REDIS_OK) {
    self->on_lost(ac, ac->errstr != nullptr ? ac->errstr : "connect failed");
    return;
  }
  if (ac == self->pub_) self->pub_ready_ = true;
  if (ac == self->sub_) self->sub_ready_ = true;
  if (self->pub_ready_ && self->sub_ready_) {
    ++self->connects_;
    self->backoff_ = std::chrono::milliseconds(0);
    self->log(log_level::info, "pub/sub backplane connected");
  }
  self->update_state();
}

void redis_backplane::disconnect_callback(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<redis_backplane*>(ac->data);
  self->on_lost(ac, status == REDIS_OK || ac->errstr == nullptr ? "connection closed" : ac->errstr);
}

void redis_backplane::on_lost(const redisAsyncContext* ac, std::string_view why) {
  // hiredis frees `ac` after this returns; the other link goes too, so both come back together.
  if (stopping_ || (ac != pub_ && ac != sub_)) return;
  if (ac == pub_) {
    pub_ = nullptr;
    pub_ready_ = false;
  } else {
    sub_ = nullptr;
    sub_ready_ = false;
  }
  drop_links(why);
}

void redis_backplane::free_links() {
  redisAsyncContext* p = pub_;
  redisAsyncContext* s = sub_;
  // Cleared first: the callbacks hiredis runs while freeing see links that are no longer ours.
  pub_ = sub_ = nullptr;
  pub_ready_ = sub_ready_ = false;
  // Their pending callbacks run now, with no reply: publishes waiting on them fail.
  if (p != nullptr) redisAsyncFree(p);
  if (s != nullptr) redisAsyncFree(s);
}

void redis_backplane::drop_links(std::string_view why) {
  free_links();
  state_.store(2);
  fail_all();
  if (stopping_) return;
  if (reconnect_pending_) return;
  reconnect_pending_ = true;
  const auto cap = options_.reconnect_max;
  backoff_ = backoff_.count() == 0 ? options_.reconnect_initial : std::min(cap, backoff_ * 2);
  // Half fixed, half random: instances that lost Redis together do not return in lockstep.
  const auto half = std::max<std::int64_t>(backoff_.count() / 2, 1);
  const auto delay = std::chrono::milliseconds(
      half + std::uniform_int_distribution<std::int64_t>(0, half)(jitter_));
  log(log_level::warn, fmt::format("pub/sub backplane down ({}); local delivery goes on, "
                                   "reconnecting in {} ms",
                                   why, delay.count()));
  reconnect_timer_.expires_after(delay);
  reconnect_timer_.async_wait([this](const boost::system::error_code& ec) {
    reconnect_pending_ = false;
    if (!ec) connect();
  });
}

void redis_backplane::fail_all() {
  for (auto& [topic, t] : topics_) {
    complete_joins(t, false);
    // No subscription survives the link: a join now must not be told "subscribed".
    t.phase = topic_phase::subscribing;
    t.since = {};
  }
  // Publishes still queued complete through their callbacks when their context is freed.
}

void redis_backplane::auth_callback(redisAsyncContext* ac, void* reply, void*) {
  auto* self = static_cast<redis_backplane*>(ac->data);
  const auto* r = static_cast<redisReply*>(reply);
  if (r == nullptr || r->type != REDIS_REPLY_ERROR) return;
  self->log(log_level::error, fmt::format("AUTH refused: {}", reply_text(r)));
  if (ac == self->pub_ || ac == self->sub_) self->drop_links("AUTH refused");
}

void redis_backplane::watchdog() {
  if (stopping_) return;
  const auto now = clock::now();
  const auto overdue = [&](clock::time_point since) {
    return since != clock::time_point{} && now - since > options_.command_timeout;
  };
  bool hung = !in_flight_.empty() && overdue(in_flight_.front()->sent);
  for (const auto& [topic, t] : topics_) {
    if (t.phase != topic_phase::subscribed && (pub_ != nullptr) && overdue(t.since)) hung = true;
  }
  if (hung) {
    log(log_level::warn,
        fmt::format("no answer in {} ms: reconnecting", options_.command_timeout.count()));
    drop_links("Redis did not answer in time");
  }
  watchdog_timer_.expires_after(
      std::max(options_.command_timeout / 4, std::chrono::milliseconds(10)));
  watchdog_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) watchdog();
  });
}

void redis_backplane::update_state() {
  const bool subscribed = std::all_of(topics_.begin(), topics_.end(), [](const auto& t) {
    return t.second.subscribers == 0 || t.second.phase == topic_phase::subscribed;
  });
  if (pub_ready_ && sub_ready_) {
    state_.store(subscribed ? 1 : 0);
  } else {
    state_.store(pub_ != nullptr ? 0 : 2);
  }
}

// ---- publishing

std::string redis_backplane::framed(std::string_view body) const {
  std::string payload;
  payload.reserve(origin_.size() + body.size());
  payload.append(origin_).append(body);
  return payload;
}

asio::awaitable<redis_backplane::publish_outcome> redis_backplane::async_publish(
    std::string_view topic, std::string_view body) {
  // Copied now: the views point into the publisher's receive buffer.
  auto op = std::make_unique<publish_op>();
  op->topic = std::string(topic);
  std::string payload = framed(body);
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(publish_outcome)>(
      [this](auto handler, std::unique_ptr<publish_op> op, std::string payload) {
        op->home = tracked(asio::get_associated_executor(handler));
        std::lock_guard lock(lifecycle_mutex_);
        if (stopped_.load()) {
          complete_on(op->home, std::move(handler), publish_outcome{"cmdwire is stopping", 0});
          return;
        }
        op->handler.emplace(std::move(handler));
        asio::post(context_, [this, op = std::move(op), payload = std::move(payload)]() mutable {
          send_publish(std::move(op), payload);
        });
      },
      asio::use_awaitable, std::move(op), std::move(payload));
}

void redis_backplane::publish_detached(std::string_view topic, std::string_view body) {
  auto op = std::make_unique<publish_op>();
  op->topic = std::string(topic);
  std::lock_guard lock(lifecycle_mutex_);
  if (stopped_.load()) return;
  asio::post(context_, [this, op = std::move(op), payload = framed(body)]() mutable {
    send_publish(std::move(op), payload);
  });
}

void redis_backplane::send_publish(std::unique_ptr<publish_op> op, const std::string& payload) {
  if (!pub_ready_) {
    finish_publish(std::move(op), {fmt::format("the Redis pub/sub backplane at {}:{} is down",
                                               options_.host, options_.port),
                                   0});
    return;
  }
  const std::string channel = options_.channel_prefix + op->topic;
  op->sent = clock::now();
  publish_op* raw = op.get();
  if (redisAsyncCommand(pub_, publish_callback, raw, "PUBLISH %b %b", channel.data(),
                        channel.size(), payload.data(), payload.size()) != REDIS_OK) {
    finish_publish(std::move(op), {"Redis refused the command", 0});
    return;
  }
  in_flight_.push_back(op.release());  // hiredis holds it until publish_callback
}

void redis_backplane::publish_callback(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* self = static_cast<redis_backplane*>(ac->data);
  std::unique_ptr<publish_op> op(static_cast<publish_op*>(privdata));
  auto& q = self->in_flight_;
  if (const auto it = std::find(q.begin(), q.end(), op.get()); it != q.end()) q.erase(it);
  const auto* r = static_cast<const redisReply*>(reply);
  publish_outcome out;
  if (r == nullptr) {
    out.error = fmt::format("lost the connection to the Redis pub/sub backplane at {}:{}",
                            self->options_.host, self->options_.port);
  } else if (r->type == REDIS_REPLY_ERROR) {
    out.error = fmt::format("the Redis pub/sub backplane refused it: {}", reply_text(r));
  } else if (r->type == REDIS_REPLY_INTEGER) {
    // Redis counts the instances subscribed to the channel; this one, if among them, has
    // delivered the message locally already.
    const auto t = self->topics_.find(op->topic);
    const bool here = t != self->topics_.end() && t->second.phase == topic_phase::subscribed;
    const long long others = r->integer - (here ? 1 : 0);
    out.instances = others > 0 ? static_cast<std::uint64_t>(others) : 0;
  }
  self->finish_publish(std::move(op), std::move(out));
}

void redis_backplane::finish_publish(std::unique_ptr<publish_op> op, publish_outcome out) {
  if (out.error.empty()) {
    ++published_;
  } else {
    ++publish_errors_;
  }
  if (op->handler) {
    complete_on(op->home, std::move(*op->handler), std::move(out));
  } else if (!out.error.empty()) {
    log(log_level::warn,
        fmt::format("publish to {} reached this instance only: {}", op->topic, out.error));
  }
}

// ---- subscribing

asio::awaitable<bool> redis_backplane::async_join(std::string topic) {
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(bool)>(
      [this](auto handler, std::string topic) {
        auto home = tracked(asio::get_associated_executor(handler));
        std::lock_guard lock(lifecycle_mutex_);
        if (stopped_.load()) {
          complete_on(home, std::move(handler), false);
          return;
        }
        auto op = std::make_unique<join_op>(join_op{std::move(handler), std::move(home)});
        asio::post(context_, [this, topic = std::move(topic), op = std::move(op)]() mutable {
          join_now(topic, std::move(op));
        });
      },
      asio::use_awaitable, std::move(topic));
}

void redis_backplane::join_now(const std::string& topic, std::unique_ptr<join_op> op) {
  auto [it, fresh] = topics_.try_emplace(topic);
  topic_state& t = it->second;
  ++t.subscribers;
  if (fresh && sub_ != nullptr) send_subscribe(topic, t, true);
  if (t.phase == topic_phase::subscribed) {
    complete_on(op->home, std::move(op->handler), true);
  } else if (sub_ == nullptr || stopping_) {
    // Down: the topic is subscribed in Redis when the backplane reconnects.
    complete_on(op->home, std::move(op->handler), false);
  } else {
    t.waiters.push_back(std::move(op));
  }
  update_state();
}

void redis_backplane::leave(std::string topic) {
  std::lock_guard lock(lifecycle_mutex_);
  if (stopped_.load()) return;
  asio::post(context_, [this, topic = std::move(topic)] {
    const auto it = topics_.find(topic);
    if (it == topics_.end() || it->second.subscribers == 0) return;
    topic_state& t = it->second;
    if (--t.subscribers > 0) return;
    if (sub_ == nullptr) {
      topics_.erase(it);  // nothing to undo in Redis: the next connect skips it
    } else if (t.phase == topic_phase::subscribed) {
      send_subscribe(topic, t, false);
    }
    // subscribing: unsubscribed when Redis confirms; unsubscribing: already on its way.
    update_state();
  });
}

void redis_backplane::send_subscribe(const std::string& topic, topic_state& t, bool subscribe) {
  // One SUBSCRIBE or UNSUBSCRIBE in flight per topic: hiredis 0.14 keeps one callback per
  // channel and drops it on an UNSUBSCRIBE reply, so overlapping ones would lose messages.
  const std::string channel = options_.channel_prefix + topic;
  t.phase = subscribe ? topic_phase::subscribing : topic_phase::unsubscribing;
  t.since = clock::now();
  redisAsyncCommand(sub_, subscription_callback, nullptr,
                    subscribe ? "SUBSCRIBE %b" : "UNSUBSCRIBE %b", channel.data(), channel.size());
}

void redis_backplane::complete_joins(topic_state& t, bool ok) {
  for (auto& op : t.waiters) complete_on(op->home, std::move(op->handler), ok);
  t.waiters.clear();
}

void redis_backplane::subscription_callback(redisAsyncContext* ac, void* reply, void*) {
  auto* self = static_cast<redis_backplane*>(ac->data);
  const auto* r = static_cast<const redisReply*>(reply);
  if (r == nullptr || ac != self->sub_) return;  // freed, or a link already dropped
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
      r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING) {
    return;
  }
  const std::string_view kind(r->element[0]->str, r->element[0]->len);
  std::string_view channel(r->element[1]->str, r->element[1]->len);
  if (!channel.starts_with(self->options_.channel_prefix)) return;
  channel.remove_prefix(self->options_.channel_prefix.size());
  self->on_subscription_event(kind, channel, r->element[2]);
}

void redis_backplane::on_subscription_event(std::string_view kind, std::string_view topic,
                                            const redisReply* value) {
  if (kind == "message") {
    if (value->type != REDIS_REPLY_STRING) return;
    std::string_view body(value->str, value->len);
    if (body.starts_with(origin_)) return;  // ours: delivered here when it was published
    // Another instance's, or a message some other program published on the channel as is.
    if (body.starts_with(origin_key) && body.size() >= origin_size &&
        body[origin_size - 1] == '\n') {
      body.remove_prefix(origin_size);
    }
    ++received_;
    deliver_(topic, body);
    return;
  }
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return;  // the anchor
  topic_state& t = it->second;
  if (kind == "subscribe" && t.phase == topic_phase::subscribing) {
    t.phase = topic_phase::subscribed;
    t.since = {};
    complete_joins(t, true);
    if (t.subscribers == 0) send_subscribe(it->first, t, false);
  } else if (kind == "unsubscribe" && t.phase == topic_phase::unsubscribing) {
    if (t.subscribers > 0) {
      send_subscribe(it->first, t, true);
    } else {
      topics_.erase(it);
    }
  }
  update_state();
}

endpoint_report::backplane_report redis_backplane::report() const {
  endpoint_report::backplane_report r;
  static constexpr std::string_view names[] = {"connecting", "ready", "down"};
  r.state = std::string(names[state_.load()]);
  r.connects = connects_.load();
  r.published = published_.load();
  r.publish_errors = publish_errors_.load();
  r.received = received_.load();
  return r;
}

}  // namespace cmdwire::detail
