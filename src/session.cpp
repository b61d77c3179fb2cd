// One server connection: answers every complete request in the connection's receive buffer,
// and writes all the replies of one read in a single write (pipelining).
#include <fmt/format.h>
#include <fmt/ostream.h>

#include <algorithm>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <optional>

#include "connection.hpp"
#include "session.hpp"

namespace cmdwire::detail {

using asio::ip::tcp;

class session final : public stream {
 public:
  session(endpoint_state& state, worker& home, tcp::socket socket)
      : state_(state),
        handlers_(state.handlers),
        opt_(state.options),
        home_(home),
        conn_(std::move(socket), connection_options_for(state)) {
    home_.sessions.push_front(this);
    registration_ = home_.sessions.begin();
  }
  ~session() override {
    conn_.close();
    home_.sessions.erase(registration_);
    --state_.connections;
    if (home_.sessions.empty() && home_.drain_deadline) home_.drain_deadline->cancel();
  }
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  asio::awaitable<void> run_commands(asio::ssl::context* tls);
  asio::awaitable<void> run_raw(const connection_handler& fn, asio::ssl::context* tls) {
    // Not `tls && !co_await ...`: GCC 12 miscompiles co_await inside && (corrupts the frame).
    if (tls != nullptr) {
      const bool secured = co_await start_tls(*tls);
      if (!secured) co_return;
    }
    co_await fn(*this);
  }
  /// Closes the connection when a read or write deadline passes (idle, request, write).
  asio::awaitable<void> watchdog();

  /// Finish what has been read, then close; a session waiting for input closes now.
  void request_stop() noexcept { conn_.stop_reading(); }

  // ---- stream, for stream and connection handlers
  void set_idle_timeout(std::chrono::milliseconds timeout) noexcept override {
    conn_.set_idle_timeout(timeout);
  }
  void close() noexcept override { conn_.close(); }
  asio::awaitable<result<std::string_view>> async_read_line() override { return conn_.read_line(); }
  asio::awaitable<result<std::string_view>> async_read_exact(std::size_t n) override {
    return conn_.read_exact(n);
  }
  asio::awaitable<result<std::string_view>> async_read_some() override { return conn_.read_some(); }
  asio::awaitable<result<void>> async_write(std::string_view bytes) override;
  [[nodiscard]] const tcp::endpoint& peer() const noexcept override { return conn_.peer(); }
  void log(log_level level, std::string_view what) const;

 private:
  static connection_options connection_options_for(endpoint_state& state) {
    const endpoint_options& opt = state.options;
    connection_options c;
    c.limits = opt.limits;
    c.keep_write_buffer = opt.max_reply_backlog;
    c.idle_timeout = opt.idle_timeout;
    c.request_timeout = opt.request_timeout;
    c.write_timeout = opt.write_timeout;
    c.buffered_bytes = &state.buffered_bytes;
    return c;
  }

  /// TLS server handshake, bounded by the request timeout. False: the session is over.
  asio::awaitable<bool> start_tls(asio::ssl::context& context);
  /// `AUTH <token>` as the first line, when the endpoint requires it.
  asio::awaitable<bool> authenticate();
  /// Answers `message` with the error reply that ends the connection, and closes it.
  asio::awaitable<void> fail_and_close(errc code, std::string_view message);
  /// Every complete request already buffered; returns the bytes needed for the next one, or
  /// nothing when the session is over.
  asio::awaitable<std::optional<std::size_t>> answer_buffered();

  void run_sync(const handler_entry& entry, const wire::request& req);
  asio::awaitable<void> run_async(const handler_entry& entry, const wire::request& req);
  asio::awaitable<void> run_stream(const handler_entry& entry, const wire::request& req);
  [[nodiscard]] request_context context_for(const wire::request& req) const noexcept;
  void append_reply(const request_context& rc, const reply_writer& writer);
  /// Call inside a catch block: turns the exception in flight into the error reply.
  void fail_from_exception(const request_context& rc, reply_writer& writer) const;
  [[nodiscard]] bool deadline_passed(const wire::request& req) const;

  endpoint_state& state_;
  const handler_map& handlers_;
  const endpoint_options& opt_;
  worker& home_;
  connection conn_;
  std::list<session*>::iterator registration_;
  std::string body_;  ///< scratch for one reply body; reused.
};

void session::log(log_level level, std::string_view what) const {
  if (!opt_.log) return;
  log_line(opt_, level, fmt::format("{}: {}", fmt::streamed(conn_.peer()), what));
}

request_context session::context_for(const wire::request& req) const noexcept {
  request_context rc;
  rc.name = req.head.name;
  rc.enc = req.head.enc;
  rc.body = req.body;
  rc.line_form = req.line_form;
  rc.length = req.head.length;
  rc.id = req.head.id;
  rc.peer = &conn_.peer();
  return rc;
}

bool session::deadline_passed(const wire::request& req) const {
  if (!req.head.deadline_ms) return false;
  return std::chrono::steady_clock::now() >
         conn_.last_read() + std::chrono::milliseconds(*req.head.deadline_ms);
}

void session::append_reply(const request_context& rc, const reply_writer& writer) {
  if (const auto& failure = writer.failure()) {
    wire::append_error(conn_.out(), wire_code(failure->code), failure->message, rc.id);
    return;
  }
  if (rc.line_form) {
    // A line reply must stay one line, and must not look like an error frame.
    if (body_.find('\n') != std::string::npos) {
      wire::append_error(conn_.out(), errc::internal, "line handler returned more than one line",
                         rc.id);
      return;
    }
    if (body_.starts_with("ERR ")) {
      wire::append_error(conn_.out(), errc::internal,
                         "line handler returned a line that reads as an error reply", rc.id);
      return;
    }
    wire::append_line(conn_.out(), body_);
    return;
  }
  wire::append_ok(conn_.out(), body_, rc.id);
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
  if (auto ec = co_await conn_.flush(); ec) co_return;
  co_await entry.stream(rc, *this);
}

asio::awaitable<std::optional<std::size_t>> session::answer_buffered() {
  std::size_t answered = 0;
  for (;;) {
    if (answered >= opt_.max_pipelined || conn_.out().size() >= opt_.max_reply_backlog) {
      // Backpressure: write what is owed before answering more of this read.
      if (auto ec = co_await conn_.flush(); ec) co_return std::nullopt;
      answered = 0;
    }
    // Parse once, straight down: the head, then its handler, then the body that handler's
    // rule delimits. A partial frame is parsed again only after more bytes arrived.
    std::string_view data = conn_.pending();
    if (!data.empty() && (data.front() == '\n' || data.front() == '\r')) {
      conn_.consume(wire::skip_blank_lines(data));
      data = conn_.pending();
    }
    const wire::head_parse head = wire::parse_request_head(data, opt_.limits);
    if (head.state == wire::status::need_more) co_return head.need;
    if (head.state == wire::status::error) {
      co_await fail_and_close(head.error, head.detail);
      co_return std::nullopt;
    }
    const auto found = handlers_.find(head.value.name);
    const handler_entry* entry = found == handlers_.end() ? nullptr : &found->second;
    const wire::request_parse parsed = wire::parse_request_body(
        data, head, entry != nullptr ? entry->rule() : wire::body_rule::framed, opt_.limits);
    if (parsed.state == wire::status::need_more) co_return parsed.need;
    if (parsed.state == wire::status::error) {
      co_await fail_and_close(parsed.error, parsed.detail);
      co_return std::nullopt;
    }
    conn_.consume(parsed.size);
    ++answered;
    const wire::request& req = parsed.value;
    if (entry == nullptr) {
      wire::append_error(conn_.out(), errc::unknown_command,
                         fmt::format("unknown command '{}'", req.head.name), req.head.id);
    } else if (deadline_passed(req)) {
      wire::append_error(conn_.out(), errc::deadline_exceeded,
                         "deadline passed before the request could run", req.head.id);
    } else if (entry->sync) {
      run_sync(*entry, req);
    } else if (entry->async) {
      co_await run_async(*entry, req);
    } else {
      co_await run_stream(*entry, req);
      if (!conn_.is_open()) co_return std::nullopt;
    }
  }
}

asio::awaitable<void> session::run_commands(asio::ssl::context* tls) {
  // Not `tls && !co_await ...`: GCC 12 miscompiles co_await inside && (corrupts the frame).
  if (tls != nullptr) {
    const bool secured = co_await start_tls(*tls);
    if (!secured) co_return;
  }
  if (!co_await authenticate()) co_return;
  for (;;) {
    const std::optional<std::size_t> need = co_await answer_buffered();
    if (!need) co_return;
    if (auto ec = co_await conn_.flush(); ec) {
      if (!is_normal_close(ec)) log(log_level::info, fmt::format("write failed: {}", ec.message()));
      co_return;
    }
    if (auto ec = co_await conn_.read_more(*need); ec) {
      if (!is_normal_close(ec)) log(log_level::info, fmt::format("read failed: {}", ec.message()));
      co_return;
    }
  }
}

asio::awaitable<void> session::fail_and_close(errc code, std::string_view message) {
  // The framing is lost: say why, then close, since nothing after it can be trusted.
  log(log_level::info, fmt::format("closing after {}: {}", wire_name(code), message));
  wire::append_error(conn_.out(), code, message);
  // Two statements, not `if (!co_await ...)`: GCC 12 miscompiles that form (SIGILL).
  const auto ec = co_await conn_.flush();
  if (!ec) co_await conn_.linger_close();
}

asio::awaitable<result<void>> session::async_write(std::string_view bytes) {
  if (auto ec = co_await conn_.write(bytes); ec) co_return error{ec, ec.message()};
  co_return result<void>{};
}

asio::awaitable<void> session::watchdog() {
  const auto shortest = std::min({opt_.idle_timeout, opt_.request_timeout, opt_.write_timeout});
  const auto period = std::max(shortest / 4, std::chrono::milliseconds(1));
  const connection::overdue which = co_await conn_.watch(period);
  if (which == connection::overdue::none) co_return;
  ++state_.timed_out;
  log(log_level::info, which == connection::overdue::write ? "peer not reading replies: closing"
                       : conn_.frame_in_progress() ? "request not completed in time: closing"
                                                   : "idle too long: closing");
  conn_.close();
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
  // The AUTH line is part of connecting: it gets the request timeout, not the idle one.
  conn_.set_idle_timeout(opt_.request_timeout);
  auto line = co_await conn_.read_line();
  conn_.set_idle_timeout(opt_.idle_timeout);
  if (!line) {
    // An over-long AUTH line gets the same answer as any over-long line (PROTOCOL.md §4).
    if (line.error().code == errc::too_large) {
      log(log_level::warn, "AUTH line longer than the line limit: closing");
      co_await fail_and_close(errc::too_large, "AUTH line longer than max_line");
    }
    co_return false;
  }
  constexpr std::string_view prefix = "AUTH ";
  const bool ok = line->starts_with(prefix) &&
                  equal_constant_time(line->substr(prefix.size()), opt_.auth_token);
  if (!ok) {
    log(log_level::warn, "authentication failed: closing");
    co_await fail_and_close(errc::unauthorized,
                            "authentication required: send AUTH <token> as the first line");
    co_return false;
  }
  wire::append_ok(conn_.out(), "");
  co_return true;
}

asio::awaitable<bool> session::start_tls(asio::ssl::context& context) {
  auto ec = co_await conn_.start_tls(context, asio::ssl::stream_base::server);
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
