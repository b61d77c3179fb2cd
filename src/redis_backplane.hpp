// The Redis pub/sub backplane: carries an endpoint's publishes to the other instances sharing
// one Redis, and theirs to its local subscribers. Not installed.
//
// hiredis's async API does the RESP work; it is driven from an io_context on a thread of the
// backplane's own (the adapter in redis_backplane.cpp), so a slow or absent Redis never blocks
// a worker. Every member below runs on that thread unless it says "any thread".
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cmdwire/endpoint.hpp"
#include "cmdwire/metrics.hpp"

struct redisAsyncContext;
struct redisReply;

namespace cmdwire::detail {

class redis_backplane {
 public:
  /// Delivers a message from another instance to this one's subscribers; called on the
  /// backplane's thread.
  using deliver_fn = std::function<void(std::string_view topic, std::string_view body)>;

  /// What a publish did beyond this instance.
  struct publish_outcome {
    std::string error;            ///< empty: Redis took it
    std::uint64_t instances = 0;  ///< other instances with subscribers that received it
  };

  redis_backplane(const redis_backplane_options& options, logger log, deliver_fn deliver);
  ~redis_backplane();  ///< stops and joins the thread, dropping the connections
  redis_backplane(const redis_backplane&) = delete;
  redis_backplane& operator=(const redis_backplane&) = delete;

  /// Starts the thread and the first connection; any thread.
  void start();
  /// Drops the connections and joins the thread; waiting calls fail. Any thread but its own.
  void stop();

  /// Publishes to the other instances, in call order; completes on the caller's executor.
  /// Any thread.
  asio::awaitable<publish_outcome> async_publish(std::string_view topic, std::string_view body);
  /// Publishes without waiting for Redis's answer (failures are logged); any thread.
  void publish_detached(std::string_view topic, std::string_view body);
  /// One more local subscriber on `topic`: completes true once Redis has confirmed the
  /// subscription (at once if it already had), false if Redis is down or does not answer in
  /// time (messages from other instances then start when it is back). Any thread.
  asio::awaitable<bool> async_join(std::string topic);
  /// One local subscriber fewer on `topic`; the last one unsubscribes in Redis. Any thread.
  void leave(std::string topic);

  /// State and counters for STATS; any thread.
  [[nodiscard]] endpoint_report::backplane_report report() const;

 private:
  struct publish_op;
  struct join_op;
  enum class topic_phase : std::uint8_t { subscribing, subscribed, unsubscribing };
  struct topic_state {
    std::size_t subscribers = 0;
    topic_phase phase = topic_phase::subscribing;
    /// When the SUBSCRIBE or UNSUBSCRIBE in flight was sent; the watchdog bounds it.
    std::chrono::steady_clock::time_point since{};
    std::vector<std::unique_ptr<join_op>> waiters;
  };

  void log(log_level level, std::string_view what) const;
  void connect();
  void on_lost(const redisAsyncContext* ac, std::string_view why);
  /// Frees both links; what waits on them fails.
  void free_links();
  /// Frees both links (failing what waits on them) and schedules a reconnect with backoff.
  void drop_links(std::string_view why);
  /// Fails the joins waiting on Redis; every topic must be subscribed again.
  void fail_all();
  void watchdog();
  void update_state();
  [[nodiscard]] std::string framed(std::string_view body) const;
  void send_publish(std::unique_ptr<publish_op> op, const std::string& payload);
  void finish_publish(std::unique_ptr<publish_op> op, publish_outcome out);
  void join_now(const std::string& topic, std::unique_ptr<join_op> op);
  void send_subscribe(const std::string& topic, topic_state& t, bool subscribe);
  void complete_joins(topic_state& t, bool ok);
  void on_subscription_event(std::string_view kind, std::string_view topic,
                             const redisReply* value);

  static void connect_callback(const redisAsyncContext* ac, int status);
  static void disconnect_callback(const redisAsyncContext* ac, int status);
  static void publish_callback(redisAsyncContext* ac, void* reply, void* privdata);
  static void subscription_callback(redisAsyncContext* ac, void* reply, void* privdata);
  static void auth_callback(redisAsyncContext* ac, void* reply, void* privdata);

  const redis_backplane_options options_;
  const logger log_;
  const deliver_fn deliver_;
  /// Tags this instance's own messages, which Redis sends back to it: they were delivered
  /// locally already.
  std::string origin_;

  asio::io_context context_{1};
  std::thread thread_;
  bool stopping_ = false;  ///< on the thread: stop() has begun
  bool reconnect_pending_ = false;
  std::atomic<bool> stopped_{false};  ///< any thread: calls complete at once
  /// Orders stop() against calls from other threads: a call either posts before stop()'s own
  /// post (and runs), or sees stopped_ and completes at once.
  std::mutex lifecycle_mutex_;

  redisAsyncContext* pub_ = nullptr;  ///< PUBLISH (a subscribed connection can do nothing else)
  redisAsyncContext* sub_ = nullptr;  ///< SUBSCRIBE/UNSUBSCRIBE and the messages
  bool pub_ready_ = false;
  bool sub_ready_ = false;
  std::deque<publish_op*> in_flight_;  ///< on pub_, in send order (Redis answers in order)
  std::map<std::string, topic_state, std::less<>> topics_;
  asio::steady_timer reconnect_timer_{context_};
  asio::steady_timer watchdog_timer_{context_};
  std::chrono::milliseconds backoff_{0};
  std::minstd_rand jitter_;

  std::atomic<int> state_{0};  ///< 0 connecting, 1 ready, 2 down
  std::atomic<std::uint64_t> connects_{0};
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> publish_errors_{0};
  std::atomic<std::uint64_t> received_{0};
};

}  // namespace cmdwire::detail
