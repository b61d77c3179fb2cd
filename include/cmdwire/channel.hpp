// A client that survives: several connections to one or more servers, each reconnected with
// backoff, calls sent on the least busy one, dead peers found by keepalive, safe retries.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cmdwire/caller.hpp"
#include "cmdwire/client.hpp"
#include "cmdwire/error.hpp"

namespace cmdwire {

/// Delay before reconnecting after the n-th failed attempt in a row:
/// min(max, initial × multiplier^(n-1)), then spread by ±jitter so that clients that lost the
/// same server do not all come back at the same moment.
struct backoff_options {
  std::chrono::milliseconds initial{100};
  std::chrono::milliseconds max{5000};
  double multiplier = 1.6;
  double jitter = 0.2;  ///< 0.2: each delay is drawn from [0.8, 1.2] × the delay
};

struct channel_options : client_options {
  /// Connections kept to each address (each resolved address of a DNS name).
  std::size_t connections_per_address = 1;
  backoff_options backoff;
  /// During an outage a call waits for a connection until its deadline (true), or fails at
  /// once with errc::not_connected (false). A call made while the first connections are
  /// still being made always waits. Per call: call_options::wait_for_ready.
  bool wait_for_ready = true;
  /// Times an idempotent call may be written in all, when connections break under it.
  unsigned max_attempts = 3;
};

/// One connection of a channel.
enum class connection_state : std::uint8_t { connecting, ready, backing_off };

struct channel_stats {
  struct address_stats {
    std::string address;  ///< as given: "127.0.0.1:61000", "unix:/run/app.sock", "db:7000"
    std::size_t connecting = 0;
    std::size_t ready = 0;
    std::size_t backing_off = 0;
    std::uint64_t connects = 0;          ///< connections that became ready
    std::uint64_t connect_failures = 0;  ///< attempts that failed
    std::uint64_t disconnects = 0;       ///< ready connections that broke
    std::string last_error;
  };
  std::vector<address_stats> addresses;
  std::uint64_t calls = 0;    ///< calls handed to the channel
  std::uint64_t retries = 0;  ///< written calls sent again after their connection broke
  /// Calls the channel itself failed: connection lost, no connection ready, or the deadline
  /// passed while waiting for one. Error replies from a server are not counted.
  std::uint64_t failures = 0;
  std::size_t waiting = 0;  ///< calls waiting for a connection now
};

/// Calls over a pool of connections. Same call API as `client` (see caller.hpp).
///
/// Failure semantics:
/// - A call not yet written when its connection breaks goes out on another connection.
/// - A call written but not answered fails with errc::connection_lost, unless its command is
///   idempotent (`static constexpr bool idempotent = true` in the descriptor, or
///   call_options::idempotent for raw calls): then it is sent again, within its deadline, up
///   to max_attempts writes in all. A call that is not idempotent is never sent twice.
/// - With no connection ready, a call waits for one until its deadline (wait_for_ready) or
///   fails at once with errc::not_connected.
/// - A call without a deadline (and no default_deadline) may wait for ever: set one.
class channel : public caller {
 public:
  /// Starts connecting to every address (HOST:PORT, [V6]:PORT, unix:PATH; a DNS name's
  /// resolved addresses share its connections) and returns at once. Fails only for an
  /// address that does not parse, or an empty list.
  [[nodiscard]] static result<channel> create(const std::vector<std::string>& addresses,
                                              channel_options options = {});
  [[nodiscard]] static result<channel> create(std::string_view address,
                                              channel_options options = {});

  channel(channel&&) noexcept;
  channel& operator=(channel&&) noexcept;
  ~channel();

  /// Per-address connection states and the call counters; safe from any thread.
  [[nodiscard]] channel_stats stats() const;
  /// Closes every connection; calls in flight or waiting fail with errc::not_connected.
  void close();

 private:
  explicit channel(std::shared_ptr<detail::call_core> core) noexcept;
};

}  // namespace cmdwire
