// The endpoint's publish/subscribe registry and its SUBSCRIBE and PUBLISH commands. Not
// installed.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cmdwire/endpoint.hpp"
#include "outbox.hpp"
#include "redis_backplane.hpp"

namespace cmdwire::detail {

/// Topics and their subscribers' outboxes. Publishing copies the frame into each outbox under
/// one mutex and never waits for a socket; a subscriber whose outbox overflows is evicted and
/// dropped from its topic on the spot.
class broker {
 public:
  /// `opt` is read on every subscription (queue limit, logger) and must outlive the broker.
  /// With `opt.pubsub_redis`, publishes also go through that Redis (redis_backplane.hpp).
  explicit broker(const endpoint_options& opt);
  ~broker();
  broker(const broker&) = delete;
  broker& operator=(const broker&) = delete;

  /// Queues `MSG topic length\nbody\n` for every subscriber of `topic` here, and hands it
  /// to the backplane for the other instances without waiting; any thread. Returns how many
  /// subscribers here took it (evicted ones do not count).
  std::size_t publish(std::string_view topic, std::string_view body);
  /// Only this instance's subscribers.
  std::size_t publish_local(std::string_view topic, std::string_view body);

  /// Connects the backplane, if any (endpoint::start, before any session); any thread.
  void start();
  /// Disconnects it (after the workers have stopped); any thread but the workers'.
  void stop();
  /// The backplane's state, if there is one.
  [[nodiscard]] std::optional<endpoint_report::backplane_report> backplane_report() const;

  /// The SUBSCRIBE stream handler: registers the connection, acknowledges, then pushes
  /// frames until the peer leaves or is evicted, and closes the connection.
  asio::awaitable<void> async_subscribe(const request_context& rc, stream& s);

  /// The PUBLISH raw handler: body `TOPIC [SP MESSAGE]`, reply the receiver count.
  void handle_publish(const request_context& rc, reply_writer& w);
  /// PUBLISH with a backplane: local delivery, then Redis's answer for the other instances.
  asio::awaitable<void> async_handle_publish(const request_context& rc, reply_writer& w);
  [[nodiscard]] bool has_backplane() const noexcept { return opt_.pubsub_redis.has_value(); }

 private:
  void add(const std::string& topic, outbox& box);
  void remove(const std::string& topic, outbox& box);

  const endpoint_options& opt_;
  std::mutex mutex_;  ///< guards topics_
  std::map<std::string, fanout, std::less<>> topics_;
  std::unique_ptr<redis_backplane> backplane_;
};

/// Registers SUBSCRIBE and PUBLISH on `ep`, served by `b` (which must outlive `ep`'s workers).
void add_pubsub_commands(endpoint& ep, broker& b);

}  // namespace cmdwire::detail
