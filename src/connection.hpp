// A buffered byte stream over one connection (TCP or Unix domain, plain or TLS): the receive
// buffer and its limits, queued writes, and one deadline for reading and one for writing.
// Not installed.
//
// The server's sessions and the client both run on it. The socket is Asio's generic stream
// socket, so TCP and Unix-domain connections share every line below the transport.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cmdwire/error.hpp"
#include "cmdwire/wire.hpp"
#include "owned_counter.hpp"

namespace cmdwire::detail {

namespace asio = boost::asio;
using steady_clock = std::chrono::steady_clock;

struct connection_options {
  /// `max_line` bounds a line read; the receive buffer never grows past 2 × max_line + max_body.
  wire::limits limits;
  /// A fresh connection's receive buffer. It grows only for bigger frames and shrinks back to
  /// this once it is empty and over `shrink_above`, so idle connections stay cheap.
  std::size_t initial_buffer = 4096;
  std::size_t shrink_above = 64 * 1024;
  /// After a read that filled all the room it had, the buffer grows towards this (never past
  /// shrink_above), so a pipelined burst is read in few system calls.
  std::size_t read_ahead = 16 * 1024;
  /// After a flush, a write buffer bigger than this is released rather than kept.
  std::size_t keep_write_buffer = 1u << 20;
  /// With nothing received, a read may wait this long (0: forever).
  std::chrono::milliseconds idle_timeout{0};
  /// Once a frame has begun to arrive, the rest must come within this (0: no limit).
  std::chrono::milliseconds request_timeout{0};
  /// A write must complete within this (0: no limit).
  std::chrono::milliseconds write_timeout{0};
  /// Receives the change in this connection's buffer capacity, so an endpoint can bound the
  /// memory all its connections hold. May be null.
  std::atomic<std::size_t>* buffered_bytes = nullptr;
  /// Receive the bytes read and written (the endpoint's per-worker totals). May be null.
  owned_counter* bytes_in = nullptr;
  owned_counter* bytes_out = nullptr;
};

class connection {
 public:
  using error_code = boost::system::error_code;

  using socket_type = asio::generic::stream_protocol::socket;

  /// A TCP or Unix-domain socket, connected. TCP sockets convert implicitly:
  /// `connection(socket_type(std::move(tcp_socket)), options)`.
  connection(socket_type socket, const connection_options& options);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // ---- transport

  /// Puts TLS on top of the TCP connection, bounded by the request timeout. As a client,
  /// `host` is sent as SNI and checked against the server's certificate.
  asio::awaitable<error_code> start_tls(asio::ssl::context& context,
                                        asio::ssl::stream_base::handshake_type side,
                                        const std::string& host = {});
  /// The peer's IP address and port; unspecified (0.0.0.0:0) on a Unix-domain socket.
  [[nodiscard]] const asio::ip::tcp::endpoint& peer() const noexcept { return peer_; }
  /// The peer for people: "127.0.0.1:61000", or "unix:/run/x.sock (uid 1000, pid 4242)" with
  /// the credentials the kernel gives (SO_PEERCRED).
  [[nodiscard]] const std::string& peer_name() const noexcept { return peer_name_; }
  /// Replaces the peer with the client a proxy speaks for (PROXY protocol); `via` is the
  /// proxy, kept in peer_name() for the logs.
  void set_proxied_peer(const asio::ip::tcp::endpoint& client);
  [[nodiscard]] bool is_open() const noexcept { return socket_.is_open(); }
  [[nodiscard]] asio::any_io_executor executor() noexcept { return socket_.get_executor(); }
  /// Ends the connection: pending reads and writes complete with operation_aborted.
  void close() noexcept;
  /// Reads nothing more: a read in progress ends as at end of input (the receive side is shut
  /// down), later reads fail with operation_aborted. Writes still go out (the endpoint's drain).
  void stop_reading() noexcept;
  /// After a fatal error reply: stop sending, and read (and drop) what the peer already sent
  /// for a moment, so closing does not reset the connection and destroy the reply in flight.
  asio::awaitable<void> linger_close();

  // ---- reading

  /// Received bytes not consumed yet. Views into consumed bytes stay valid until the next
  /// read: reads are what reuse the space.
  [[nodiscard]] std::string_view pending() const noexcept {
    return {buffer_.data() + begin_, end_ - begin_};
  }
  /// Drops `n` bytes from the front; a frame's worth ends that frame's request timeout.
  void consume(std::size_t n) noexcept {
    if (n == 0) return;
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
    frame_began_.reset();
  }
  /// Reads at least one more byte, first making room for `need` pending bytes in all (callers
  /// pass a parser's `need`, which the limits already bound). Applies the read deadline:
  /// idle with nothing pending, else the request timeout from the frame's first bytes.
  asio::awaitable<error_code> read_more(std::size_t need);
  /// One line of at most max_line bytes (CR LF or LF), without its end.
  asio::awaitable<result<std::string_view>> read_line();
  /// Exactly `n` bytes, at most max_body.
  asio::awaitable<result<std::string_view>> read_exact(std::size_t n);
  /// Reads more bytes from the socket itself (under TLS, if started later), never letting
  /// pending() pass `limit` bytes: for a preface such as a PROXY header, where reading past it
  /// would swallow a TLS handshake. The watchdog closes the connection at `deadline`, one
  /// deadline for the whole preface. Returns at once if `limit` bytes are pending already.
  asio::awaitable<error_code> read_preface(std::size_t limit, steady_clock::time_point deadline);
  /// Whatever is pending, or else what the next read brings.
  asio::awaitable<result<std::string_view>> read_some();
  [[nodiscard]] bool reading() const noexcept { return reading_; }
  /// When the last read completed.
  [[nodiscard]] steady_clock::time_point last_read() const noexcept { return last_read_; }
  void set_idle_timeout(std::chrono::milliseconds timeout) noexcept {
    options_.idle_timeout = timeout;
  }

  // ---- writing

  /// The queue of bytes to send: append frames here, then flush().
  [[nodiscard]] std::string& out() noexcept { return queued_; }
  /// Writes everything queued, including what is queued while it writes. If a flush is
  /// already running, returns at once: that one sends these bytes too.
  asio::awaitable<error_code> flush();
  /// Writes what is queued followed by `bytes`, in one gather write and without copying
  /// `bytes`. Only one writer at a time may use it.
  asio::awaitable<error_code> write(std::string_view bytes);
  [[nodiscard]] bool writing() const noexcept { return writing_now_; }

  // ---- deadlines and memory

  enum class overdue : std::uint8_t { none, read, write };
  /// Which deadline has passed at `now`, if any; a watchdog polls this.
  [[nodiscard]] overdue check(steady_clock::time_point now) const noexcept;
  /// Returns as soon as a deadline passes (polling every `period`), saying which; `none` when
  /// cancelled first. The caller counts and logs it, then closes the connection.
  asio::awaitable<overdue> watch(std::chrono::milliseconds period);
  /// Whether bytes of an incomplete frame are pending (a request is on its way).
  [[nodiscard]] bool frame_in_progress() const noexcept { return frame_began_.has_value(); }
  /// Counts `bytes` of the owner's scratch memory with this connection's buffers.
  void account_also(std::size_t bytes) noexcept {
    extra_ = bytes;
    account();
  }

 private:
  template <class Buffers>
  auto async_read_some(const Buffers& buffers);
  template <class Buffers>
  auto async_write_all(const Buffers& buffers);
  void make_room(std::size_t need);
  /// After a read of `n` bytes: the buffer, the counters and the deadline.
  void read_done(std::size_t n) noexcept;
  void account() noexcept;
  void write_started() noexcept;
  void write_finished() noexcept;

  connection_options options_;
  socket_type socket_;
  /// Engaged once start_tls() ran; wraps socket_, which stays the one connection.
  std::optional<asio::ssl::stream<socket_type&>> tls_;
  asio::ip::tcp::endpoint peer_;
  std::string peer_name_;

  std::vector<char> buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  steady_clock::time_point last_read_{};
  bool last_read_filled_ = false;  ///< the last read_more() took all the room it had
  /// When the first bytes of the frame now arriving came in; empty between frames.
  std::optional<steady_clock::time_point> frame_began_;
  bool reading_ = false;
  bool stop_reading_ = false;
  steady_clock::time_point read_deadline_ = steady_clock::time_point::max();

  std::string queued_;   ///< appended to by the owner
  std::string writing_;  ///< what the socket is writing now
  bool writing_now_ = false;
  /// The first write that failed. The stream is dead from then on, and no write is tried
  /// again: Asio's reactor, having seen the socket's error once, would wait for it to become
  /// writable for ever (until the write timeout), keeping the connection open.
  error_code write_failed_;
  steady_clock::time_point write_deadline_ = steady_clock::time_point::max();

  std::size_t extra_ = 0;
  std::size_t accounted_ = 0;
};

/// True for the ways a peer ends a connection that are not worth a log line.
[[nodiscard]] bool is_normal_close(const boost::system::error_code& ec) noexcept;

}  // namespace cmdwire::detail
