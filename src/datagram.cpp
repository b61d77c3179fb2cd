// The receive/answer loop of a UDP service: one datagram at a time, on the socket's worker.
#include "datagram.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <vector>

#include "endpoint_impl.hpp"
#include "nothrow.hpp"

namespace cmdwire::detail {

namespace {
// The largest UDP payload over IPv4 is 65507 bytes; a buffer this size never truncates one.
constexpr std::size_t max_datagram = 64 * 1024;
}  // namespace

asio::awaitable<void> run_datagram_service(datagram_service& svc, const endpoint_options& opt) {
  std::vector<char> buffer(max_datagram);
  asio::ip::udp::endpoint from;
  for (;;) {
    auto [ec, n] = co_await svc.socket.async_receive_from(asio::buffer(buffer), from, nothrow);
    if (ec == asio::error::operation_aborted || !svc.socket.is_open()) co_return;
    if (ec) {
      // e.g. an ICMP "port unreachable" for an earlier reply: that peer's problem, not ours.
      log_line(opt, log_level::debug, fmt::format("udp receive failed: {}", ec.message()));
      continue;
    }
    std::optional<std::string> reply;
    try {
      reply = svc.fn(std::string_view(buffer.data(), n), from);
    } catch (const std::exception& e) {
      log_line(opt, log_level::warn,
               fmt::format("{}: datagram handler threw: {}", fmt::streamed(from), e.what()));
      continue;
    }
    if (!reply) continue;
    auto [send_ec, sent] = co_await svc.socket.async_send_to(asio::buffer(*reply), from, nothrow);
    if (send_ec == asio::error::operation_aborted) co_return;
    if (send_ec) {
      log_line(opt, log_level::debug,
               fmt::format("{}: udp reply failed: {}", fmt::streamed(from), send_ec.message()));
    }
  }
}

}  // namespace cmdwire::detail
