// The buffered connection: receive buffer management, deadlines, queued writes, TLS.
#include "connection.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <tuple>

#include "nothrow.hpp"

namespace cmdwire::detail {

namespace {

using asio::ip::tcp;
// For socket reads and writes. A connection is ended by closing its socket (watch(), close()),
// so I/O never needs per-operation cancellation; a disconnected slot stops Asio from
// allocating a cancellation handler for each read and write, which an enclosing `a || b`
// group would otherwise connect (steady-state mallocs once many connections interleave).
auto io_nothrow() { return asio::bind_cancellation_slot(asio::cancellation_slot(), nothrow); }

steady_clock::time_point after(std::chrono::milliseconds timeout) {
  return timeout.count() > 0 ? steady_clock::now() + timeout : steady_clock::time_point::max();
}

}  // namespace

bool is_normal_close(const boost::system::error_code& ec) noexcept {
  return ec == asio::error::eof || ec == asio::error::operation_aborted ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::bad_descriptor;
}

namespace {

template <class Endpoint>
Endpoint convert(const asio::generic::stream_protocol::endpoint& from) {
  Endpoint to;
  if (from.size() > to.capacity()) return to;
  std::memcpy(to.data(), from.data(), from.size());
  to.resize(from.size());
  return to;
}

/// "unix:/path (uid 1000, pid 4242)": the path is the server's, whichever side asks.
std::string unix_peer_name(asio::generic::stream_protocol::socket& socket) {
  boost::system::error_code ec;
  using local = asio::local::stream_protocol::endpoint;
  std::string path = convert<local>(socket.remote_endpoint(ec)).path();
  if (path.empty()) path = convert<local>(socket.local_endpoint(ec)).path();
  ucred cred{};
  socklen_t size = sizeof cred;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &size) != 0) {
    return "unix:" + path;
  }
  return fmt::format("unix:{} (uid {}, pid {})", path, cred.uid, cred.pid);
}

}  // namespace

connection::connection(socket_type socket, const connection_options& options)
    : options_(options), socket_(std::move(socket)), buffer_(options.initial_buffer) {
  boost::system::error_code ec;
  if (socket_.is_open() && socket_.local_endpoint(ec).protocol().family() == AF_UNIX) {
    peer_name_ = unix_peer_name(socket_);
  } else {
    peer_ = convert<tcp::endpoint>(socket_.remote_endpoint(ec));
    peer_name_ = fmt::format("{}", fmt::streamed(peer_));
  }
  account();
}

connection::~connection() {
  close();
  if (options_.buffered_bytes != nullptr) *options_.buffered_bytes -= accounted_;
}

template <class Buffers>
auto connection::async_read_some(const Buffers& buffers) {
  return tls_ ? tls_->async_read_some(buffers, io_nothrow())
              : socket_.async_read_some(buffers, io_nothrow());
}

template <class Buffers>
auto connection::async_write_all(const Buffers& buffers) {
  return tls_ ? asio::async_write(*tls_, buffers, io_nothrow())
              : asio::async_write(socket_, buffers, io_nothrow());
}

void connection::close() noexcept {
  boost::system::error_code ec;
  socket_.shutdown(socket_type::shutdown_both, ec);
  socket_.close(ec);
}

void connection::stop_reading() noexcept {
  stop_reading_ = true;
  if (!reading_) return;
  // Wakes the pending read with end of input and leaves the sending side to flush replies.
  boost::system::error_code ec;
  socket_.shutdown(socket_type::shutdown_receive, ec);
  if (ec) close();
}

void connection::account() noexcept {
  if (options_.buffered_bytes == nullptr) return;
  const std::size_t now = buffer_.capacity() + queued_.capacity() + writing_.capacity() + extra_;
  if (now == accounted_) return;                 // the common case: no shared cache line touched
  *options_.buffered_bytes += now - accounted_;  // unsigned wrap-around is the intended delta
  accounted_ = now;
}

asio::awaitable<connection::error_code> connection::start_tls(
    asio::ssl::context& context, asio::ssl::stream_base::handshake_type side,
    const std::string& host) {
  tls_.emplace(socket_, context);
  if (side == asio::ssl::stream_base::client && !host.empty()) {
    // SNI, so a server with several names picks the right certificate.
    SSL_set_tlsext_host_name(tls_->native_handle(), host.c_str());
    tls_->set_verify_callback(asio::ssl::host_name_verification(host));
  }
  read_deadline_ = after(options_.request_timeout);
  auto [ec] = co_await tls_->async_handshake(side, nothrow);
  read_deadline_ = steady_clock::time_point::max();
  co_return ec;
}

void connection::make_room(std::size_t need) {
  const std::size_t have = end_ - begin_;
  const std::size_t frame_cap = 2 * options_.limits.max_line + options_.limits.max_body;
  need = std::max(need, have + 1);
  if (last_read_filled_) {
    // The last read took all the room there was, so the peer is likely sending faster than
    // we read (a pipelined burst): read ahead more at once, up to read_ahead, rather than
    // paying a system call per few requests.
    last_read_filled_ = false;
    need = std::max(need, std::min({2 * buffer_.size(), options_.read_ahead, frame_cap}));
  }
  if (buffer_.size() - begin_ < need) {
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, have);
      begin_ = 0;
      end_ = have;
    }
    if (buffer_.size() < need) {
      buffer_.resize(std::max(need, std::min(2 * buffer_.size(), frame_cap)));
    }
  } else if (have == 0 && buffer_.size() > options_.shrink_above) {
    buffer_ = std::vector<char>(options_.initial_buffer);
    begin_ = end_ = 0;
  }
  account();
}

asio::awaitable<connection::error_code> connection::read_more(std::size_t need) {
  make_room(need);
  if (stop_reading_) co_return asio::error::operation_aborted;
  if (end_ == begin_) {
    frame_began_.reset();
    read_deadline_ = after(options_.idle_timeout);
  } else {
    if (!frame_began_) frame_began_ = last_read_;
    read_deadline_ = options_.request_timeout.count() > 0 ? *frame_began_ + options_.request_timeout
                                                          : steady_clock::time_point::max();
  }
  reading_ = true;
  const std::size_t room = buffer_.size() - end_;
  auto [ec, n] = co_await async_read_some(asio::buffer(buffer_.data() + end_, room));
  read_done(n);
  last_read_filled_ = n == room;
  co_return ec;
}

void connection::read_done(std::size_t n) noexcept {
  reading_ = false;
  read_deadline_ = steady_clock::time_point::max();
  end_ += n;
  if (options_.bytes_in != nullptr) options_.bytes_in->add(n);
  last_read_ = steady_clock::now();
}

asio::awaitable<connection::error_code> connection::read_preface(
    std::size_t limit, steady_clock::time_point deadline) {
  if (end_ - begin_ >= limit) co_return error_code{};
  make_room(limit);
  if (stop_reading_) co_return asio::error::operation_aborted;
  if (!frame_began_) frame_began_ = steady_clock::now();  // the watchdog's log says "request"
  read_deadline_ = deadline;
  reading_ = true;
  auto [ec, n] = co_await socket_.async_read_some(
      asio::buffer(buffer_.data() + end_, limit - (end_ - begin_)), io_nothrow());
  read_done(n);
  co_return ec;
}

void connection::set_proxied_peer(const asio::ip::tcp::endpoint& client) {
  peer_name_ = fmt::format("{} (via {})", fmt::streamed(client), peer_name_);
  peer_ = client;
}

asio::awaitable<result<std::string_view>> connection::read_line() {
  for (;;) {
    const wire::line_parse line = wire::parse_line(pending(), options_.limits.max_line);
    if (line.state == wire::status::complete) {
      consume(line.size);
      co_return line.value;
    }
    if (line.state == wire::status::error) {
      co_return error{make_error_code(errc::too_large), "line longer than the line limit"};
    }
    // Whatever the owner queued goes out before we wait for the peer.
    if (auto ec = co_await flush(); ec) co_return error{ec, ec.message()};
    if (auto ec = co_await read_more(line.need); ec) co_return error{ec, ec.message()};
  }
}

asio::awaitable<result<std::string_view>> connection::read_exact(std::size_t n) {
  if (n > options_.limits.max_body) {
    co_return error{make_error_code(errc::too_large), "read larger than the body limit"};
  }
  while (end_ - begin_ < n) {
    if (auto ec = co_await flush(); ec) co_return error{ec, ec.message()};
    if (auto ec = co_await read_more(n); ec) co_return error{ec, ec.message()};
  }
  const std::string_view bytes = pending().substr(0, n);
  consume(n);
  co_return bytes;
}

asio::awaitable<result<std::string_view>> connection::read_some() {
  if (end_ == begin_) {
    if (auto ec = co_await flush(); ec) co_return error{ec, ec.message()};
    if (auto ec = co_await read_more(1); ec) co_return error{ec, ec.message()};
  }
  const std::string_view bytes = pending();
  consume(bytes.size());
  co_return bytes;
}

void connection::write_started() noexcept {
  writing_now_ = true;
  write_deadline_ = after(options_.write_timeout);
}

void connection::write_finished() noexcept {
  writing_now_ = false;
  write_deadline_ = steady_clock::time_point::max();
  writing_.clear();
  // One huge frame must not pin its buffer for the rest of the connection.
  if (writing_.capacity() > options_.keep_write_buffer) writing_ = std::string();
  if (queued_.empty() && queued_.capacity() > options_.keep_write_buffer) queued_ = std::string();
  account();
}

asio::awaitable<connection::error_code> connection::flush() {
  if (writing_now_) co_return error_code{};  // that writer sends what is queued now, too
  while (!queued_.empty()) {
    if (write_failed_) {
      queued_.clear();  // nobody will read it
      co_return write_failed_;
    }
    std::swap(queued_, writing_);
    write_started();
    auto [ec, n] = co_await async_write_all(asio::buffer(writing_));
    if (options_.bytes_out != nullptr) options_.bytes_out->add(n);
    write_finished();
    if (ec) {
      write_failed_ = ec;
      co_return ec;
    }
  }
  co_return error_code{};
}

asio::awaitable<connection::error_code> connection::write(std::string_view bytes) {
  if (write_failed_) co_return write_failed_;
  std::swap(queued_, writing_);
  write_started();
  const std::array<asio::const_buffer, 2> both{asio::buffer(writing_),
                                               asio::buffer(bytes.data(), bytes.size())};
  auto [ec, n] = co_await async_write_all(both);
  if (options_.bytes_out != nullptr) options_.bytes_out->add(n);
  write_finished();
  if (ec) write_failed_ = ec;
  co_return ec;
}

connection::overdue connection::check(steady_clock::time_point now) const noexcept {
  if (now >= read_deadline_) return overdue::read;
  if (now >= write_deadline_) return overdue::write;
  return overdue::none;
}

asio::awaitable<connection::overdue> connection::watch(std::chrono::milliseconds period) {
  // Waking on a period rather than re-arming per operation keeps timers off the per-request
  // path; a deadline is enforced within one period of passing.
  asio::steady_timer timer(socket_.get_executor());
  for (;;) {
    timer.expires_after(period);
    auto [ec] = co_await timer.async_wait(nothrow);
    if (ec) co_return overdue::none;  // cancelled: the connection's owner finished first
    if (const overdue which = check(steady_clock::now()); which != overdue::none) {
      co_return which;
    }
  }
}

asio::awaitable<void> connection::linger_close() {
  // Bounded both ways: a peer that keeps sending is cut off after these bytes or this time.
  constexpr std::size_t max_discard = 1u << 20;
  constexpr auto max_linger = std::chrono::seconds(2);
  boost::system::error_code ignored;
  socket_.shutdown(socket_type::shutdown_send, ignored);
  read_deadline_ = steady_clock::now() +
                   (options_.request_timeout.count() > 0
                        ? std::min<std::chrono::milliseconds>(max_linger, options_.request_timeout)
                        : std::chrono::milliseconds(max_linger));
  std::size_t discarded = 0;
  std::array<char, 4096> sink;
  while (discarded < max_discard) {
    auto [ec, n] = co_await async_read_some(asio::buffer(sink));
    if (ec) break;
    discarded += n;
  }
}

}  // namespace cmdwire::detail
