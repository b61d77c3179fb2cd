// One server connection, as the endpoint starts and stops it: run a session on an accepted
// socket, and drain a worker's sessions on shutdown. Defined in session.cpp. Not installed.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>

#include "endpoint_impl.hpp"

namespace cmdwire::detail {

/// Runs one accepted connection to completion on its worker.
/// `tls`: non-null for TLS listeners (the handshake comes first).
asio::awaitable<void> run_session(endpoint_state& state, worker& home, asio::ip::tcp::socket socket,
                                  const connection_handler* raw, asio::ssl::context* tls);

/// Asks every session on `home` to finish the requests it has read, flush their replies and
/// close; idle ones close at once. After `timeout` the worker stops regardless. Call on
/// home's thread.
void drain_sessions(worker& home, std::chrono::milliseconds timeout);

}  // namespace cmdwire::detail
