// The endpoint's publish/subscribe registry and its SUBSCRIBE and PUBLISH commands. Not
// installed.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cmdwire/endpoint.hpp"
#include "outbox.hpp"

namespace cmdwire::detail {

/// Topics and their subscribers' outboxes. Publishing copies the frame into each outbox under
/// one mutex and never waits for a socket; a subscriber whose outbox overflows is evicted and
/// dropped from its topic on the spot.
class broker {
 public:
  /// `opt` is read on every subscription (queue limit, logger) and must outlive the broker.
  explicit broker(const endpoint_options& opt) noexcept : opt_(opt) {}
  broker(const broker&) = delete;
  broker& operator=(const broker&) = delete;

  /// Queues `MSG topic length\nbody\n` for every subscriber of `topic`; any thread. Returns
  /// how many subscribers took it (evicted ones do not count).
  std::size_t publish(std::string_view topic, std::string_view body);

  /// The SUBSCRIBE stream handler: registers the connection, acknowledges, then pushes
  /// frames until the peer leaves or is evicted, and closes the connection.
  asio::awaitable<void> async_subscribe(const request_context& rc, stream& s);

  /// The PUBLISH raw handler: body `TOPIC [SP MESSAGE]`, reply the receiver count.
  void handle_publish(const request_context& rc, reply_writer& w);

 private:
  void add(const std::string& topic, outbox& box);
  void remove(const std::string& topic, outbox& box);

  const endpoint_options& opt_;
  std::mutex mutex_;  ///< guards topics_
  std::map<std::string, fanout, std::less<>> topics_;
};

/// Registers SUBSCRIBE and PUBLISH on `ep`, served by `b` (which must outlive `ep`'s workers).
void add_pubsub_commands(endpoint& ep, broker& b);

}  // namespace cmdwire::detail
