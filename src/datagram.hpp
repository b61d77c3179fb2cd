// UDP services of an endpoint: one socket and its datagram handler, answered on worker 0.
// Not installed.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>

#include "cmdwire/endpoint.hpp"

namespace cmdwire::detail {

struct datagram_service {
  asio::ip::udp::socket socket;
  datagram_handler fn;
};

/// Receives datagrams and sends back what `svc.fn` answers, until the socket is closed.
asio::awaitable<void> run_datagram_service(datagram_service& svc, const endpoint_options& opt);

}  // namespace cmdwire::detail
