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

#include "proxy_protocol.hpp"

namespace cmdwire::detail {

using asio::ip::tcp;

session::session(endpoint_state& state, worker& home, connection::socket_type socket)
    : state_(state),
      handlers_(state.handlers),
      opt_(state.options),
      home_(home),
      conn_(std::move(socket), connection_options_for(state, home)),
      wake_(conn_.executor()) {
  home_.sessions.push_front(this);
  registration_ = home_.sessions.begin();
}

session::~session() {
  // Counted out before the close: a peer that has seen the close then finds it gone in STATS.
  count_out();
  conn_.close();
  home_.sessions.erase(registration_);
  if (home_.sessions.empty() && home_.drain_deadline) home_.drain_deadline->cancel();
}

connection_options session::connection_options_for(endpoint_state& state, worker& home) {
  const endpoint_options& opt = state.options;
  connection_options c;
  c.limits = opt.limits;
  c.keep_write_buffer = opt.max_reply_backlog;
  c.idle_timeout = opt.idle_timeout;
  c.request_timeout = opt.request_timeout;
  c.write_timeout = opt.write_timeout;
  c.buffered_bytes = &state.buffered_bytes;
  c.bytes_in = &home.counters.bytes_in;
  c.bytes_out = &home.counters.bytes_out;
  return c;
}

void session::request_stop() noexcept {
  draining_ = true;
  conn_.stop_reading();
}

void session::abandon() noexcept {
  for (call& c : calls_) c.ctx.cancel(cancel_reason::shutdown);
  // The worker stops next, and this session's coroutine (with any handler that ignored the
  // cancel) is destroyed only with the endpoint; its connection is closed now, so it is
  // counted out now.
  count_out();
  conn_.close();
}

asio::awaitable<void> session::run_raw(const connection_handler& fn, asio::ssl::context* tls) {
  // Here, beside the watchdog, so a client that never finishes its header is timed out.
  if (opt_.proxy_protocol) {
    const bool proxied = co_await accept_proxy_header();
    if (!proxied) co_return;
  }
  // Not `tls && !co_await ...`: GCC 12 miscompiles co_await inside && (corrupts the frame).
  if (tls != nullptr) {
    const bool secured = co_await start_tls(*tls);
    if (!secured) co_return;
  }
  co_await fn(*this);
}

void session::log(log_level level, std::string_view what) const {
  if (!opt_.log) return;
  log_line(opt_, level, fmt::format("{}: {}", conn_.peer_name(), what));
}

std::optional<call_context::clock::time_point> session::deadline_of(
    const wire::request& req) const {
  if (!req.head.deadline_ms) return std::nullopt;
  // Counted from the read that completed the request: time spent queued here counts too.
  return conn_.last_read() + std::chrono::milliseconds(*req.head.deadline_ms);
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
      home_.counters.protocol_errors.add();
      co_await fail_and_close(head.error, head.detail);
      co_return std::nullopt;
    }
    const handler_entry* entry = find_handler(head.value.name);
    const wire::request_parse parsed = wire::parse_request_body(
        data, head, entry != nullptr ? entry->rule() : wire::body_rule::framed, opt_.limits);
    if (parsed.state == wire::status::need_more) co_return parsed.need;
    if (parsed.state == wire::status::error) {
      home_.counters.protocol_errors.add();
      co_await fail_and_close(parsed.error, parsed.detail);
      co_return std::nullopt;
    }
    conn_.consume(parsed.size);
    ++answered;
    // Most requests are answered right here, without the cost of a coroutine frame.
    if (answer_now(entry, parsed.value)) continue;
    if (!co_await dispatch(entry, parsed.value)) co_return std::nullopt;
  }
}

const handler_entry* session::find_handler(std::string_view name) {
  // Pipelined clients mostly repeat one command: comparing a few bytes with the last name
  // found skips hashing it. The map is fixed while the endpoint runs, so its keys and entries
  // stay where they are.
  if (last_entry_ != nullptr && name == last_name_) return last_entry_;
  const auto found = handlers_.find(name);
  if (found == handlers_.end()) return nullptr;
  last_name_ = found->first;
  last_entry_ = &found->second;
  return last_entry_;
}

bool session::answer_now(const handler_entry* entry, const wire::request& req) {
  // Anything that may have to wait for running calls (a barrier, §10) goes to dispatch().
  const bool calls_running = !calls_.empty() || tasks_ > 0;
  if (calls_running && (!req.head.id || req.line_form)) return false;
  if (entry == nullptr && req.head.name == hello_command) return false;
  if (refuse(entry, req)) return true;
  if (!entry->sync || entry->offload) return false;
  run_sync(*entry, req);
  return true;
}

bool session::refuse(const handler_entry* entry, const wire::request& req) {
  if (entry == nullptr && req.head.name != hello_command) {
    home_.counters.unknown_commands.add();
    const std::string message = fmt::format("unknown command '{}'", req.head.name);
    wire::append_error(conn_.out(), errc::unknown_command, message, req.head.id);
    log(log_level::debug, fmt::format("ERR unknown-command: {}", message));
    return true;
  }
  if (const auto deadline = deadline_of(req); deadline && steady_clock::now() >= *deadline) {
    wire::append_error(conn_.out(), errc::deadline_exceeded,
                       "deadline passed before the request could run", req.head.id);
    if (entry != nullptr) count(*entry, latency_clock::now(), errc::deadline_exceeded);
    log(log_level::debug,
        fmt::format("{}: ERR deadline: passed before it could run", req.head.name));
    return true;
  }
  return false;
}

asio::awaitable<bool> session::dispatch(const handler_entry* entry, const wire::request& req) {
  const bool is_hello = req.head.name == hello_command;
  const bool inline_sync = entry != nullptr && entry->sync && !entry->offload;
  const bool has_id = req.head.id.has_value() && !req.line_form;
  // On an out-of-order connection, a request without an id (line-form ones included), a stream
  // command and HELLO are barriers: they wait for every call before them and are answered
  // before anything after them is read, so an id-less reply can still be paired by position.
  if (out_of_order_ && (!has_id || is_hello || (entry != nullptr && entry->stream)) &&
      (!calls_.empty() || tasks_ > 0)) {
    co_await finish_calls(cancel_reason::none);
  }
  if (refuse(entry, req)) co_return true;
  if (is_hello) {
    answer_hello(req);
  } else if (inline_sync) {
    run_sync(*entry, req);  // on an out-of-order connection its reply may pass earlier ones
  } else if (entry->stream) {
    co_await run_stream(*entry, req);
    if (!conn_.is_open()) co_return false;
  } else if (out_of_order_ && has_id) {
    while (calls_.size() >= opt_.max_concurrent) {
      // Backpressure: read nothing more until a call ends; what is owed goes out meanwhile.
      if (auto ec = co_await conn_.flush(); ec) co_return false;
      // Checked again: a call may have ended during the flush, and its wake-up is not kept.
      if (calls_.size() >= opt_.max_concurrent) co_await wait_for_a_call();
    }
    start_concurrent(*entry, req);
  } else {
    // In order: the call is awaited, and its views into the receive buffer stay valid.
    calls_.emplace_back(conn_, req, deadline_of(req), false);
    co_await run_call(calls_.back(), *entry);
    calls_.pop_back();
  }
  co_return true;
}

void session::answer_hello(const wire::request& req) {
  // Body: the features asked for, separated by spaces. Unknown ones are not granted, so a
  // newer client can ask an older server for more than it knows.
  const bool wants_ooo = wire::has_feature(req.body, "ooo");
  out_of_order_ = wants_ooo;
  body_.clear();
  if (wants_ooo) body_ = fmt::format("ooo max-concurrent={}", opt_.max_concurrent);
  wire::append_ok(conn_.out(), body_, req.head.id);
}

asio::awaitable<void> session::run_commands(asio::ssl::context* tls) {
  // Here, beside the watchdog, so a client that never finishes its header is timed out.
  if (opt_.proxy_protocol) {
    const bool proxied = co_await accept_proxy_header();
    if (!proxied) co_return;
  }
  // Not `tls && !co_await ...`: GCC 12 miscompiles co_await inside && (corrupts the frame).
  if (tls != nullptr) {
    const bool secured = co_await start_tls(*tls);
    if (!secured) co_return;
  }
  if (!co_await authenticate()) co_return;
  // Requests that came in with the AUTH line are parsed from now on.
  last_answered_ = latency_clock::now();
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
    last_answered_ = latency_clock::now();  // what came in is parsed from now on
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
  for (call& c : calls_) c.ctx.cancel(cancel_reason::peer_gone);
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
  // The AUTH line is part of connecting: it gets the request timeout, not the idle one, and
  // that bounds the whole wait, so blank lines and HEALTH checks cannot hold an
  // unauthenticated connection open for longer.
  conn_.set_idle_timeout(opt_.request_timeout);
  const bool bounded = opt_.request_timeout.count() > 0;
  const auto give_up = steady_clock::now() + opt_.request_timeout;
  result<std::string_view> line;
  for (;;) {
    if (bounded) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(give_up - steady_clock::now());
      if (left.count() <= 0) {
        log(log_level::info, "no AUTH line within the request timeout: closing");
        co_return false;
      }
      conn_.set_idle_timeout(left);
    }
    line = co_await conn_.read_line();
    if (!line) break;
    // Blank lines are ignored before the AUTH line too, as between requests (PROTOCOL.md §1).
    if (line->empty()) continue;
    // A load balancer's health check (`HEALTH\n`) carries no token; the answer reveals only
    // SERVING or DRAINING, so the HEALTH built-in (if registered) answers it before AUTH, and
    // the AUTH line is still awaited.
    if (const handler_entry* entry = find_handler(*line);
        entry != nullptr && entry->builtin && *line == "HEALTH") {
      wire::request health;
      health.head.name = *line;
      run_sync(*entry, health);
      continue;
    }
    break;
  }
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

asio::awaitable<bool> session::accept_proxy_header() {
  namespace proxy = proxy_v2;
  const auto refuse = [&](std::string_view why) -> asio::awaitable<void> {
    log(log_level::warn, fmt::format("refused: {} (this server expects a PROXY protocol v2 "
                                     "header first: --proxy-protocol)",
                                     why));
    // Said in plain text: a person who reached the port directly learns why it closes.
    co_await fail_and_close(errc::bad_request,
                            fmt::format("expected a PROXY protocol v2 header: {}", why));
  };
  // One deadline for the whole header: the request timeout, else the idle one (a client that
  // connects and says nothing must not hold a connection slot for ever).
  const auto limit = opt_.request_timeout.count() > 0 ? opt_.request_timeout : opt_.idle_timeout;
  const auto deadline = limit.count() > 0 ? std::chrono::steady_clock::now() + limit
                                          : std::chrono::steady_clock::time_point::max();
  while (conn_.pending().size() < proxy::prefix_size) {
    const std::string_view got = conn_.pending();
    if (!proxy::could_be_header(got) && !proxy::could_be_v1_start(got)) break;
    if (auto ec = co_await conn_.read_preface(proxy::prefix_size, deadline); ec) {
      if (!is_normal_close(ec)) log(log_level::info, fmt::format("read failed: {}", ec.message()));
      co_return false;
    }
  }
  const auto prefix = proxy::parse_prefix(conn_.pending());
  if (!prefix) {
    co_await refuse(prefix.error().message);
    co_return false;
  }
  conn_.consume(proxy::prefix_size);
  while (conn_.pending().size() < prefix->payload) {
    if (auto ec = co_await conn_.read_preface(prefix->payload, deadline); ec) {
      if (!is_normal_close(ec)) log(log_level::info, fmt::format("read failed: {}", ec.message()));
      co_return false;
    }
  }
  const auto source = proxy::parse_source(*prefix, conn_.pending().substr(0, prefix->payload));
  if (!source) {
    co_await refuse(source.error().message);
    co_return false;
  }
  conn_.consume(prefix->payload);
  if (*source) {
    conn_.set_proxied_peer(**source);
    log(log_level::info, "PROXY header: client address taken from it");
  }
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

asio::awaitable<void> run_session(endpoint_state& state, worker& home,
                                  connection::socket_type socket, const connection_handler* raw,
                                  asio::ssl::context* tls) {
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
  // Calls still running end before the session does. Draining, they finish and their replies
  // go out; otherwise the peer has gone (or sent what ended the connection): cancel them.
  co_await s.finish_calls(s.draining() ? cancel_reason::none : cancel_reason::peer_gone);
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
    for (session* s : home.sessions) s->abandon();
    home.context.stop();
  });
}

}  // namespace cmdwire::detail
