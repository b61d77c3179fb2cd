// The classic small-network services, built on an endpoint's listeners: RFC 862 echo and
// RFC 867 daytime over TCP and UDP, and a broadcast chat room with bounded per-client queues.
//
//   cmdwire::endpoint ep;
//   cmdwire::chat_room room({.log = my_logger});        // declared first: it must outlive ep
//   (void)ep.serve("127.0.0.1", 7, cmdwire::echo_session);
//   (void)ep.serve_udp("127.0.0.1", 13, cmdwire::udp_daytime_reply);
//   (void)ep.serve("127.0.0.1", 6000, room.handler());
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cmdwire/endpoint.hpp"

namespace cmdwire {

/// RFC 862 echo over TCP: every byte back, unchanged, until the peer closes. A connection
/// handler for `endpoint::serve`.
asio::awaitable<void> echo_session(stream& s);

/// RFC 867 daytime over TCP: writes `daytime_now()` and CRLF, then closes.
asio::awaitable<void> daytime_session(stream& s);

/// The current UTC time as daytime sends it: "Tue, 07 May 2024 12:34:56 UTC" (RFC 867 leaves
/// the form open; this is RFC 1123's, which people and parsers both read).
[[nodiscard]] std::string daytime_now();

/// RFC 862 echo over UDP: the datagram itself. A datagram handler for `endpoint::serve_udp`.
[[nodiscard]] std::optional<std::string> udp_echo_reply(std::string_view datagram,
                                                        const asio::ip::udp::endpoint& from);

/// RFC 867 daytime over UDP: any datagram gets `daytime_now()` and CRLF.
[[nodiscard]] std::optional<std::string> udp_daytime_reply(std::string_view datagram,
                                                           const asio::ip::udp::endpoint& from);

/// Prometheus metrics over HTTP/1.1: `GET /metrics` answers `to_prometheus(ep.report())`
/// (text format 0.0.4); other paths get 404, other methods 405. A connection handler:
/// `ep.serve("127.0.0.1", 9464, cmdwire::metrics_http(ep))`. `ep` must outlive the listener.
[[nodiscard]] connection_handler metrics_http(const endpoint& ep);

struct chat_options {
  /// Bytes a member may have waiting to be written to it. A member past these is
  /// disconnected: one client that stops reading must not hold up the room or grow the
  /// server's memory without bound.
  push_limits limits;
  logger log;  ///< joins, leaves and evictions; empty: none.
};

/// A broadcast chat room: every byte a member sends is copied to every member, the sender
/// included. Serve it with `endpoint::serve(host, port, room.handler())`; members may sit on
/// any worker thread. Must outlive the endpoints serving it. Thread-safe.
class chat_room {
 public:
  explicit chat_room(chat_options options = {});
  ~chat_room();
  chat_room(const chat_room&) = delete;
  chat_room& operator=(const chat_room&) = delete;

  /// The connection handler; it refers to this room.
  [[nodiscard]] connection_handler handler();

  /// Serves one member until it leaves, fails or is evicted, then closes its connection.
  asio::awaitable<void> async_serve(stream& s);

  /// Members connected now.
  [[nodiscard]] std::size_t members() const;
  /// Members disconnected so far because their queue overflowed.
  [[nodiscard]] std::size_t evictions() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace cmdwire
