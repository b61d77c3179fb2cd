// One connection: reads requests into a per-connection buffer, answers every complete request
// in it, and writes all the replies of one read in a single write (pipelining).
#include <fmt/format.h>
#include <fmt/ostream.h>
#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstring>
#include <optional>

#include "endpoint_impl.hpp"

namespace cmdwire::detail {

namespace {

using asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
// For socket reads and writes. The watchdog ends a session by closing its socket, so I/O never
// needs per-operation cancellation; a disconnected slot stops Asio from allocating a
// cancellation handler for each read and write, which the `run || watchdog` group would
// otherwise connect (steady-state mallocs once many connections interleave).
auto io_nothrow() { return asio::bind_cancellation_slot(asio::cancellation_slot(), nothrow); }

// A fresh connection gets a buffer for one maximal command line; it grows only for bigger
// bodies and shrinks back once idle, so thousands of idle connections stay cheap.
constexpr std::size_t initial_buffer_size = 4096;
constexpr std::size_t shrink_idle_buffer_above = 64 * 1024;

bool is_normal_close(const boost::system::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::operation_aborted ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::bad_descriptor;
}

}  // namespace

class session final : public stream {
 public:
  session(endpoint_state& state, worker& home, tcp::socket socket)
      : state_(state),
        handlers_(state.handlers),
        opt_(state.options),
        home_(home),
        socket_(std::move(socket)),
        buffer_(initial_buffer_size) {
    boost::system::error_code ec;
    peer_ = socket_.remote_endpoint(ec);
    home_.sessions.push_front(this);
    registration_ = home_.sessions.begin();
    account();
  }
  ~session() override {
    close();
    home_.sessions.erase(registration_);
    state_.buffered_bytes -= accounted_;
    --state_.connections;
    if (home_.sessions.empty() && home_.drain_deadline) home_.drain_deadline->cancel();
  }
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  asio::awaitable<void> run_commands(asio::ssl::context* tls);
  /// TLS server handshake, bounded by the request timeout. False: the session is over.
  asio::awaitable<bool> start_tls(asio::ssl::context& context);
  /// Closes the connection when the current deadline passes (idle, request, write).
  asio::awaitable<void> watchdog();
  /// `AUTH <token>` as the first line, when the endpoint requires it.
  asio::awaitable<bool> authenticate();
  asio::awaitable<void> run_raw(const connection_handler& fn, asio::ssl::context* tls) {
    // Not `tls && !co_await ...`: GCC 12 miscompiles co_await inside && (corrupts the frame).
    if (tls != nullptr) {
      const bool secured = co_await start_tls(*tls);
      if (!secured) co_return;
    }
    co_await fn(*this);
  }

  void set_idle_timeout(std::chrono::milliseconds timeout) noexcept override {
    idle_timeout_ = timeout;
  }

  /// Finish what has been read, then close; a session waiting for input closes now.
  void request_stop() noexcept {
    draining_ = true;
    if (reading_) close();
  }

  /// Ends the session: pending reads and writes complete with operation_aborted.
  void close() noexcept override {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  asio::awaitable<result<std::string_view>> async_read_line() override;
  asio::awaitable<result<std::string_view>> async_read_exact(std::size_t n) override;
  asio::awaitable<result<std::string_view>> async_read_some() override;
  asio::awaitable<result<void>> async_write(std::string_view bytes) override;
  [[nodiscard]] const tcp::endpoint& peer() const noexcept override { return peer_; }
  void log(log_level level, std::string_view what) const;

 private:
  [[nodiscard]] std::string_view pending() const noexcept {
    return {buffer_.data() + begin_, end_ - begin_};
  }
  /// Views into consumed bytes stay valid until the next read: reads are what reuse the space.
  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  /// Bytes of unparsed data needed before the request at the front can complete.
  [[nodiscard]] std::size_t bytes_needed() const noexcept;
  asio::awaitable<boost::system::error_code> read_more(std::size_t need);
  asio::awaitable<boost::system::error_code> flush();
  /// After a fatal error reply: stop sending, and read (and drop) what the peer already sent
  /// for a moment, so closing does not reset the connection and destroy the reply in flight.
  asio::awaitable<void> linger_close();

  void run_sync(const handler_entry& entry, const wire::request& req);
  asio::awaitable<void> run_async(const handler_entry& entry, const wire::request& req);
  asio::awaitable<void> run_stream(const handler_entry& entry, const wire::request& req);
  [[nodiscard]] request_context context_for(const wire::request& req) const noexcept;
  void append_reply(const request_context& rc, const reply_writer& writer);
  /// Call inside a catch block: turns the exception in flight into the error reply.
  void fail_from_exception(const request_context& rc, reply_writer& writer) const;
  [[nodiscard]] bool deadline_passed(const wire::request& req) const;

  // One read or write on whichever stream this connection speaks, plain or TLS.
  template <class Buffers>
  auto read_once(const Buffers& buffers) {
    return tls_ ? tls_->async_read_some(buffers, io_nothrow())
                : socket_.async_read_some(buffers, io_nothrow());
  }
  template <class Buffers>
  auto write_all(const Buffers& buffers) {
    return tls_ ? asio::async_write(*tls_, buffers, io_nothrow())
                : asio::async_write(socket_, buffers, io_nothrow());
  }

  /// Keeps the endpoint's count of buffered bytes equal to what this session holds.
  void account() noexcept {
    const std::size_t now = buffer_.capacity() + out_.capacity() + body_.capacity();
    state_.buffered_bytes += now - accounted_;  // unsigned wrap-around is the intended delta
    accounted_ = now;
  }
  void set_deadline(std::chrono::milliseconds from_now) {
    deadline_ = std::chrono::steady_clock::now() + from_now;
  }

  endpoint_state& state_;
  const handler_map& handlers_;
  const endpoint_options& opt_;
  worker& home_;
  tcp::socket socket_;
  /// Engaged for TLS listeners; wraps socket_, which stays the one TCP connection.
  std::optional<asio::ssl::stream<tcp::socket&>> tls_;
  tcp::endpoint peer_;
  std::list<session*>::iterator registration_;

  std::vector<char> buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::chrono::steady_clock::time_point last_read_{};
  std::string out_;   ///< replies not written yet, in request order.
  std::string body_;  ///< scratch for one reply body; reused.
  std::chrono::milliseconds idle_timeout_ = opt_.idle_timeout;
  std::size_t accounted_ = 0;
  /// When the watchdog closes the connection; time_point::max() while a handler runs.
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  /// When the first bytes of the request now being received arrived.
  std::optional<std::chrono::steady_clock::time_point> request_began_;
  bool reading_ = false;   ///< waiting for input: nothing owed to the peer right now
  bool draining_ = false;  ///< the endpoint is stopping: read nothing more
};

void session::log(log_level level, std::string_view what) const {
  if (!opt_.log) return;
  log_line(opt_, level, fmt::format("{}: {}", fmt::streamed(peer_), what));
}

std::size_t session::bytes_needed() const noexcept {
  const std::string_view data = pending();
  const wire::head_parse head = wire::parse_request_head(data, opt_.limits);
  if (head.state == wire::status::complete && head.head.length) {
    return std::max(head.line_size + *head.head.length, data.size() + 1);
  }
  return data.size() + 1;
}

asio::awaitable<boost::system::error_code> session::read_more(std::size_t need) {
  const std::size_t have = end_ - begin_;
  need = std::max(need, have + 1);
  if (buffer_.size() - begin_ < need) {
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, have);
      begin_ = 0;
      end_ = have;
    }
    if (buffer_.size() < need) {
      // Callers only ask for what the limits allow, so this is bounded by the limits too.
      const std::size_t frame_cap = 2 * opt_.limits.max_line + opt_.limits.max_body;
      buffer_.resize(std::max(need, std::min(2 * buffer_.size(), frame_cap)));
    }
  } else if (have == 0 && buffer_.size() > shrink_idle_buffer_above) {
    buffer_ = std::vector<char>(initial_buffer_size);
    begin_ = end_ = 0;
  }
  account();
  if (draining_) co_return asio::error::operation_aborted;
  if (have == 0) {
    request_began_.reset();
    if (idle_timeout_.count() > 0) {
      set_deadline(idle_timeout_);
    } else {
      deadline_ = std::chrono::steady_clock::time_point::max();
    }
  } else {
    if (!request_began_) request_began_ = last_read_;
    deadline_ = *request_began_ + opt_.request_timeout;
  }
  reading_ = true;
  auto [ec, n] = co_await read_once(asio::buffer(buffer_.data() + end_, buffer_.size() - end_));
  reading_ = false;
  deadline_ = std::chrono::steady_clock::time_point::max();
  end_ += n;
  last_read_ = std::chrono::steady_clock::now();
  co_return ec;
}

asio::awaitable<boost::system::error_code> session::flush() {
  if (out_.empty()) co_return boost::system::error_code{};
  set_deadline(opt_.write_timeout);
  auto [ec, n] = co_await write_all(asio::buffer(out_));
  deadline_ = std::chrono::steady_clock::time_point::max();
  out_.clear();
  // One huge reply must not pin its buffer for the rest of the connection.
  if (out_.capacity() > opt_.max_reply_backlog) out_ = std::string();
  account();
  co_return ec;
}

request_context session::context_for(const wire::request& req) const noexcept {
  request_context rc;
  rc.name = req.head.name;
  rc.enc = req.head.enc;
  rc.body = req.body;
  rc.line_form = req.line_form;
  rc.length = req.head.length;
  rc.id = req.head.id;
  rc.peer = &peer_;
  return rc;
}

bool session::deadline_passed(const wire::request& req) const {
  if (!req.head.deadline_ms) return false;
  return std::chrono::steady_clock::now() >
         last_read_ + std::chrono::milliseconds(*req.head.deadline_ms);
}

void session::append_reply(const request_context& rc, const reply_writer& writer) {
  if (const auto& failure = writer.failure()) {
    wire::append_error(out_, wire_code(failure->code), failure->message, rc.id);
    return;
  }
  if (rc.line_form) {
    // A line reply must stay one line, and must not look like an error frame.
    if (body_.find('\n') != std::string::npos) {
      wire::append_error(out_, errc::internal, "line handler returned more than one line", rc.id);
      return;
    }
    if (body_.starts_with("ERR ")) {
      wire::append_error(out_, errc::internal,
                         "line handler returned a line that reads as an error reply", rc.id);
      return;
    }
    wire::append_line(out_, body_);
    return;
  }
  wire::append_ok(out_, body_, rc.id);
}

void session::fail_from_exception(const request_context& rc, reply_writer& writer) const {
  // A thrown call_failed is a handler's way to choose the error reply; anything else is a bug
  // in the handler, reported as `internal` and logged.
  try {
    throw;
  } catch (const call_failed& e) {
    writer.fail(wire_code(e.failure().code), e.failure().message);
  } catch (const std::exception& e) {
    log(log_level::warn, fmt::format("handler for {} threw: {}", rc.name, e.what()));
    writer.fail(errc::internal, e.what());
  } catch (...) {
    log(log_level::warn, fmt::format("handler for {} threw a non-exception", rc.name));
    writer.fail(errc::internal, "handler failed");
  }
}

void session::run_sync(const handler_entry& entry, const wire::request& req) {
  const request_context rc = context_for(req);
  body_.clear();
  reply_writer writer(body_);
  try {
    entry.sync(rc, writer);
  } catch (...) {
    fail_from_exception(rc, writer);
  }
  append_reply(rc, writer);
}

asio::awaitable<void> session::run_async(const handler_entry& entry, const wire::request& req) {
  const request_context rc = context_for(req);
  body_.clear();
  reply_writer writer(body_);
  try {
    co_await entry.async(rc, writer);
  } catch (...) {
    fail_from_exception(rc, writer);
  }
  append_reply(rc, writer);
}

asio::awaitable<void> session::run_stream(const handler_entry& entry, const wire::request& req) {
  // The handler's reads may reuse the buffer the name lives in: keep a copy.
  const std::string name(req.head.name);
  request_context rc = context_for(req);
  rc.name = name;
  if (auto ec = co_await flush(); ec) co_return;
  co_await entry.stream(rc, *this);
}

asio::awaitable<void> session::run_commands(asio::ssl::context* tls) {
  // Not `tls && !co_await ...`: GCC 12 miscompiles co_await inside && (corrupts the frame).
  if (tls != nullptr) {
    const bool secured = co_await start_tls(*tls);
    if (!secured) co_return;
  }
  const handler_entry* entry = nullptr;
  auto rule_for = [&](std::string_view name) {
    const auto it = handlers_.find(name);
    entry = it == handlers_.end() ? nullptr : &it->second;
    return entry != nullptr ? entry->rule() : wire::body_rule::framed;
  };
  if (!co_await authenticate()) co_return;
  for (;;) {
    std::size_t need = 0;
    std::size_t answered = 0;
    for (;;) {  // every complete request already buffered
      if (answered >= opt_.max_pipelined || out_.size() >= opt_.max_reply_backlog) {
        // Backpressure: write what is owed before answering more of this read.
        if (auto ec = co_await flush(); ec) co_return;
        answered = 0;
      }
      entry = nullptr;
      const wire::request_parse parsed = wire::parse_request(pending(), opt_.limits, rule_for);
      if (parsed.state == wire::status::need_more) {
        consume(parsed.size);  // blank lines before an incomplete request
        need = bytes_needed();
        break;
      }
      if (parsed.state == wire::status::error) {
        // The framing is lost: say why, then close, since nothing after it can be trusted.
        log(log_level::info,
            fmt::format("closing after {}: {}", wire_name(parsed.error), parsed.detail));
        wire::append_error(out_, parsed.error, parsed.detail);
        if (!co_await flush()) co_await linger_close();
        co_return;
      }
      consume(parsed.size);
      ++answered;
      request_began_.reset();
      const wire::request& req = parsed.req;
      if (entry == nullptr) {
        wire::append_error(out_, errc::unknown_command,
                           fmt::format("unknown command '{}'", req.head.name), req.head.id);
      } else if (deadline_passed(req)) {
        wire::append_error(out_, errc::deadline_exceeded,
                           "deadline passed before the request could run", req.head.id);
      } else if (entry->sync) {
        run_sync(*entry, req);
      } else if (entry->async) {
        co_await run_async(*entry, req);
      } else {
        co_await run_stream(*entry, req);
        if (!socket_.is_open()) co_return;
      }
    }
    if (auto ec = co_await flush(); ec) {
      if (!is_normal_close(ec)) log(log_level::info, fmt::format("write failed: {}", ec.message()));
      co_return;
    }
    if (auto ec = co_await read_more(need); ec) {
      if (!is_normal_close(ec)) log(log_level::info, fmt::format("read failed: {}", ec.message()));
      co_return;
    }
  }
}

asio::awaitable<result<std::string_view>> session::async_read_line() {
  for (;;) {
    const wire::line_parse line = wire::parse_line(pending(), opt_.limits.max_line);
    if (line.state == wire::status::complete) {
      consume(line.size);
      co_return line.line;
    }
    if (line.state == wire::status::error) {
      co_return error{make_error_code(errc::too_large), "line longer than the line limit"};
    }
    if (auto ec = co_await flush(); ec) co_return error{ec, ec.message()};
    if (auto ec = co_await read_more(end_ - begin_ + 1); ec) co_return error{ec, ec.message()};
  }
}

asio::awaitable<result<std::string_view>> session::async_read_exact(std::size_t n) {
  if (n > opt_.limits.max_body) {
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

asio::awaitable<result<std::string_view>> session::async_read_some() {
  if (end_ == begin_) {
    if (auto ec = co_await flush(); ec) co_return error{ec, ec.message()};
    if (auto ec = co_await read_more(1); ec) co_return error{ec, ec.message()};
  }
  const std::string_view bytes = pending();
  consume(bytes.size());
  co_return bytes;
}

asio::awaitable<result<void>> session::async_write(std::string_view bytes) {
  boost::system::error_code ec;
  set_deadline(opt_.write_timeout);
  if (out_.empty()) {
    std::tie(ec, std::ignore) = co_await write_all(asio::buffer(bytes.data(), bytes.size()));
  } else {
    const std::array<asio::const_buffer, 2> both{asio::buffer(out_),
                                                 asio::buffer(bytes.data(), bytes.size())};
    std::tie(ec, std::ignore) = co_await write_all(both);
    out_.clear();
  }
  deadline_ = std::chrono::steady_clock::time_point::max();
  if (ec) co_return error{ec, ec.message()};
  co_return result<void>{};
}

asio::awaitable<void> session::linger_close() {
  // Bounded both ways: a peer that keeps sending is cut off after these bytes or this time.
  constexpr std::size_t max_discard = 1u << 20;
  constexpr auto max_linger = std::chrono::seconds(2);
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  deadline_ = std::chrono::steady_clock::now() +
              std::min<std::chrono::milliseconds>(max_linger, opt_.request_timeout);
  std::size_t discarded = 0;
  std::array<char, 4096> sink;
  while (discarded < max_discard) {
    auto [ec, n] = co_await read_once(asio::buffer(sink));
    if (ec) break;
    discarded += n;
  }
}

asio::awaitable<void> session::watchdog() {
  // Waking on a period rather than re-arming per operation keeps timers off the per-request
  // path; a timeout is enforced within a quarter of the shortest timeout.
  const auto shortest = std::min({opt_.idle_timeout, opt_.request_timeout, opt_.write_timeout});
  const auto period = std::max(shortest / 4, std::chrono::milliseconds(1));
  asio::steady_timer timer(socket_.get_executor());
  for (;;) {
    timer.expires_after(period);
    auto [ec] = co_await timer.async_wait(nothrow);
    if (ec) co_return;  // cancelled: the session ended first
    if (std::chrono::steady_clock::now() < deadline_) continue;
    ++state_.timed_out;
    log(log_level::info, request_began_ ? "request not completed in time: closing"
                         : out_.empty() ? "idle too long: closing"
                                        : "peer not reading replies: closing");
    close();
    co_return;
  }
}

namespace {
/// Compares without an early exit, so the time taken does not reveal how much matched.
bool equal_constant_time(std::string_view a, std::string_view b) {
  const std::size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}
}  // namespace

asio::awaitable<bool> session::authenticate() {
  if (opt_.auth_token.empty()) co_return true;
  set_deadline(opt_.request_timeout);
  auto line = co_await async_read_line();
  if (!line) {
    // An over-long AUTH line gets the same answer as any over-long line (PROTOCOL.md §4).
    if (line.error().code == errc::too_large) {
      log(log_level::warn, "AUTH line longer than the line limit: closing");
      wire::append_error(out_, errc::too_large, "AUTH line longer than max_line");
      if (!co_await flush()) co_await linger_close();
    }
    co_return false;
  }
  constexpr std::string_view prefix = "AUTH ";
  const bool ok = line->starts_with(prefix) &&
                  equal_constant_time(line->substr(prefix.size()), opt_.auth_token);
  if (!ok) {
    log(log_level::warn, "authentication failed: closing");
    wire::append_error(out_, errc::unauthorized,
                       "authentication required: send AUTH <token> as the first line");
    if (!co_await flush()) co_await linger_close();
    co_return false;
  }
  wire::append_ok(out_, "");
  co_return true;
}

asio::awaitable<bool> session::start_tls(asio::ssl::context& context) {
  tls_.emplace(socket_, context);
  set_deadline(opt_.request_timeout);
  auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::server, nothrow);
  deadline_ = std::chrono::steady_clock::time_point::max();
  if (ec) {
    // Plaintext clients on a TLS port end here too; the log says why they were dropped.
    log(log_level::info, fmt::format("TLS handshake failed: {}", ec.message()));
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> run_session(endpoint_state& state, worker& home, tcp::socket socket,
                                  const connection_handler* raw, asio::ssl::context* tls) {
  using namespace asio::experimental::awaitable_operators;
  session s(state, home, std::move(socket));
  if (home.stopping.load()) co_return;  // the destructor path closes the socket
  s.log(log_level::info, "connected");
  try {
    if (raw != nullptr) {
      co_await (s.run_raw(*raw, tls) || s.watchdog());
    } else {
      co_await (s.run_commands(tls) || s.watchdog());
    }
  } catch (const std::exception& e) {
    // Handlers' exceptions are caught per request; this is a bug in a stream handler or here.
    s.log(log_level::error, fmt::format("session ended by exception: {}", e.what()));
  }
  s.log(log_level::info, "disconnected");
}

void drain_sessions(worker& home, std::chrono::milliseconds timeout) {
  // request_stop may close a session, but it unregisters only when its coroutine resumes.
  for (session* s : home.sessions) s->request_stop();
  if (home.sessions.empty()) return;
  home.drain_deadline.emplace(home.context, timeout);
  home.drain_deadline->async_wait([&home](boost::system::error_code ec) {
    if (ec) return;
    // Peers see the close now; the abandoned coroutines are destroyed with the context.
    for (session* s : home.sessions) s->close();
    home.context.stop();
  });
}

}  // namespace cmdwire::detail
