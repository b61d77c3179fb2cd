// The core of clients and channels: dialing with backoff, routing calls to links, waiting for
// a connection, and deciding the fate of calls whose connection broke.
#include "call_core.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cmath>

#include "nothrow.hpp"
#include "tls.hpp"

// GCC 12 pairs the aligned_alloc inside Asio's coroutine-frame recycling allocator with the
// frame's operator delete once handshake() is inlined, and warns; Asio frees it with free().
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace cmdwire::detail {

namespace {

using asio::ip::tcp;
// Replies usually fit; the buffer grows (within the limits) for bigger ones.
constexpr std::size_t initial_reply_buffer = 16 * 1024;

asio::any_io_executor executor_for(const channel_options& options,
                                   std::optional<asio::io_context>& own) {
  if (options.executor) return options.executor;
  own.emplace(1);
  return own->get_executor();
}

/// Runs `stop(target)` when `timeout` passes before the timer is cancelled. The handler
/// holds only a weak reference, so it may outlive the target and the awaiting frame.
template <class T, class Stop>
void stop_after(asio::steady_timer& timer, std::chrono::milliseconds timeout,
                const std::shared_ptr<T>& target, Stop stop) {
  timer.expires_after(timeout);
  timer.async_wait([weak = std::weak_ptr<T>(target), stop](boost::system::error_code ec) {
    if (ec) return;
    if (auto t = weak.lock()) stop(*t);
  });
}

template <class T>
void close_after(asio::steady_timer& timer, std::chrono::milliseconds timeout,
                 const std::shared_ptr<T>& target) {
  stop_after(timer, timeout, target, [](T& t) {
    boost::system::error_code ignored;
    if constexpr (requires { t.close(ignored); }) {
      t.close(ignored);
    } else {
      t.cancel();
    }
  });
}

}  // namespace

void complete_later(asio::any_completion_handler<raw_call_signature> done, std::error_code ec,
                    std::string why) {
  // Not inside the initiating call, and not on a context that may have stopped: the system
  // executor first, then the handler's own executor.
  asio::post(asio::system_executor(), [h = std::move(done), ec, why = std::move(why)]() mutable {
    auto ex = asio::get_associated_executor(h, asio::system_executor());
    asio::dispatch(ex, [h = std::move(h), ec, why = std::move(why)]() mutable {
      std::move(h)(ec, std::move(why));
    });
  });
}

call_core::call_core(std::vector<address> targets, std::vector<std::string> names,
                     channel_options options, mode m)
    : targets_(std::move(targets)),
      names_(std::move(names)),
      options_(std::move(options)),
      mode_(m),
      strand_(asio::make_strand(executor_for(options_, own_context_))),
      waiting_timer_(strand_) {
  const std::size_t per_target = std::max<std::size_t>(1, options_.connections_per_address);
  for (std::size_t t = 0; t < targets_.size(); ++t) {
    channel_stats::address_stats st;
    st.address = names_[t];
    st.connecting = per_target;  // every slot starts out connecting (set_state moves counts)
    address_stats_.push_back(st);
    for (std::size_t i = 0; i < per_target; ++i) {
      auto s = std::make_unique<conn_slot>();
      s->target = t;
      s->index = i;
      slots_.push_back(std::move(s));
    }
  }
}

call_core::~call_core() {
  // Handlers and timers of the own context refer to this object; they go first.
  if (own_context_) {
    slots_.clear();
    waiting_.clear();
  }
}

asio::awaitable<void> call_core::dial_guarded(std::shared_ptr<call_core> self, std::size_t index) {
  // An exception escaping dial() is a bug; it must neither reach the io_context's run() nor
  // leave this slot "connecting" for ever: it counts as a failed dial, and backoff follows.
  std::optional<error> failed;
  try {
    co_await dial(self, index);
  } catch (const std::exception& e) {
    failed = make_error(errc::not_connected,
                        std::string("internal error while connecting: ") + e.what());
  } catch (...) {
    failed = make_error(errc::not_connected, "internal error while connecting");
  }
  if (failed && !self->closing_) self->dial_failed(index, *failed);
}

void call_core::start() {
  if (own_context_) {
    keep_running_.emplace(own_context_->get_executor());
    thread_ = std::thread([ctx = &*own_context_] { ctx->run(); });
  }
  asio::post(strand_, [self = shared_from_this()] {
    for (std::size_t i = 0; i < self->slots_.size(); ++i) {
      self->set_state(*self->slots_[i], connection_state::connecting);
      asio::co_spawn(self->strand_, dial_guarded(self, i), asio::detached);
    }
  });
}

void call_core::shutdown() {
  if (shut_down_.exchange(true)) return;
  asio::post(strand_, [self = shared_from_this()] {
    self->closing_ = true;
    const error closed = make_error(errc::not_connected, "closed");
    for (auto& s : self->slots_) {
      if (s->retry_timer) s->retry_timer->cancel();
      if (auto l = s->l) l->end(closed);
    }
    for (auto& c : self->take_waiting()) self->fail(c, errc::not_connected, "closed");
    self->waiting_timer_.cancel();
    if (!self->had_outcome_ && self->first_outcome_) {
      self->had_outcome_ = true;
      auto done = std::move(self->first_outcome_);
      std::move(done)(make_error_code(errc::not_connected), "closed");
    }
  });
  if (!own_context_) return;
  keep_running_.reset();
  if (own_context_->get_executor().running_in_this_thread()) {
    thread_.detach();  // closed from our own completion handler: the thread ends by itself
  } else if (thread_.joinable()) {
    thread_.join();
  }
}

void call_core::when_first_outcome(
    asio::any_completion_handler<void(std::error_code, std::string)> done) {
  asio::post(strand_, [self = shared_from_this(), done = std::move(done)]() mutable {
    if (self->had_outcome_ || self->closing_) {
      const bool ok = !self->lost_ && !self->closing_;
      std::move(done)(ok ? std::error_code() : self->lost_->code, ok ? std::string()
                                                                  : self->lost_
                                                                      ? self->lost_->message
                                                                      : "closed");
      return;
    }
    // swap, not move assignment: Boost 1.81's any_completion_handler::operator=(&&) recurses.
    self->first_outcome_.swap(done);
  });
}

// ---- dialing

asio::awaitable<void> call_core::dial(std::shared_ptr<call_core> self, std::size_t index) {
  conn_slot& s = *self->slots_[index];
  if (self->closing_) co_return;
  self->set_state(s, connection_state::connecting);
  auto socket = co_await self->open_socket(s);
  if (self->closing_) co_return;
  if (!socket) {
    self->dial_failed(index, socket.error());
    co_return;
  }
  connection_options copt;
  copt.limits = self->options_.limits;
  copt.initial_buffer = initial_reply_buffer;
  auto l = std::make_shared<link>(
      self->strand_, std::move(*socket), copt, self->options_, self->names_[s.target],
      self->in_flight_,
      [self, index](link& ended, link_end end) { self->link_ended(index, ended, std::move(end)); });
  auto failed = co_await self->handshake(l, s);
  if (self->closing_) {
    l->end(make_error(errc::not_connected, "closed"));
    co_return;
  }
  if (failed) {
    l->end(*failed);
    self->dial_failed(index, *failed);
    co_return;
  }
  self->link_ready(index, std::move(l));
}

asio::awaitable<result<connection::socket_type>> call_core::open_socket(const conn_slot& s) {
  const address& where = targets_[s.target];
  const auto timeout = options_.connect_timeout;
  const auto started = clock::now();
  asio::steady_timer timer(strand_);
  const auto failed = [&](const boost::system::error_code& ec) {
    if (clock::now() - started >= timeout) {
      return error{make_error_code(errc::timeout),
                   fmt::format("cannot connect to {}: no answer within {} ms", names_[s.target],
                               timeout.count())};
    }
    return error{ec, fmt::format("cannot connect to {}: {}", names_[s.target], ec.message())};
  };
  if (where.is_unix()) {
    auto socket = std::make_shared<asio::local::stream_protocol::socket>(strand_);
    close_after(timer, timeout, socket);
    auto [ec] = co_await socket->async_connect(
        asio::local::stream_protocol::endpoint(where.unix_path), nothrow);
    timer.cancel();
    if (ec) co_return failed(ec);
    co_return connection::socket_type(std::move(*socket));
  }
  std::vector<tcp::endpoint> endpoints;
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(where.tcp.host, ec);
  if (!ec) {
    endpoints.emplace_back(ip, where.tcp.port);
  } else {
    // Names only: Asio resolves on a thread of its own, which numeric addresses never start.
    auto resolver = std::make_shared<tcp::resolver>(strand_);
    close_after(timer, timeout, resolver);
    auto [rec, results] =
        co_await resolver->async_resolve(where.tcp.host, std::to_string(where.tcp.port), nothrow);
    if (rec) co_return failed(rec);
    for (const auto& r : results) endpoints.push_back(r.endpoint());
    if (endpoints.empty()) co_return failed(asio::error::host_not_found);
    // Each connection of a name starts at a different address, so they spread over all.
    std::rotate(endpoints.begin(),
                endpoints.begin() + static_cast<std::ptrdiff_t>(s.index % endpoints.size()),
                endpoints.end());
  }
  auto socket = std::make_shared<tcp::socket>(strand_);
  close_after(
      timer,
      std::chrono::duration_cast<std::chrono::milliseconds>(timeout - (clock::now() - started)),
      socket);
  auto [cec, ep] = co_await asio::async_connect(*socket, endpoints, nothrow);
  timer.cancel();
  if (cec) co_return failed(cec);
  boost::system::error_code ignored;
  socket->set_option(tcp::no_delay(true), ignored);
  co_return connection::socket_type(std::move(*socket));
}

asio::awaitable<std::pair<std::error_code, std::string>> call_core::internal_call(
    const std::shared_ptr<link>& l, outgoing request) {
  if (l->ended()) co_return std::pair{make_error_code(errc::connection_lost), std::string()};
  auto [ec, body] = co_await asio::async_initiate<decltype(nothrow)&, raw_call_signature>(
      [this, &l](auto handler, outgoing r) {
        l->send(call(std::move(r), std::move(handler), strand_));
      },
      nothrow, std::move(request));
  co_return std::pair{ec, std::move(body)};
}

asio::awaitable<std::optional<error>> call_core::handshake(std::shared_ptr<link> l,
                                                           const conn_slot& s) {
  const std::string& name = names_[s.target];
  if (options_.tls.enabled) {
    auto made = make_client_tls(options_.tls);
    if (!made) co_return made.error();
    // The TLS context must outlive the connection: the link keeps it.
    std::shared_ptr<asio::ssl::context> context = std::move(*made);
    asio::steady_timer timer(strand_);
    stop_after(timer, options_.connect_timeout, l, [](link& t) { t.conn().close(); });
    const std::string host =
        targets_[s.target].is_unix() ? std::string() : targets_[s.target].tcp.host;
    auto ec = co_await l->conn().start_tls(*context, asio::ssl::stream_base::client, host);
    timer.cancel();
    l->keep(std::move(context));
    if (ec) {
      std::string why = ec.message();
      if (ec == asio::error::eof || ec == asio::error::connection_reset) {
        why += " (is the server speaking TLS?)";
      }
      co_return error{make_error_code(errc::not_connected),
                      fmt::format("cannot connect to {}: TLS handshake failed: {}", name, why)};
    }
  }
  l->start();  // replies are read from here on, through TLS if it is on
  if (!options_.auth_token.empty()) {
    outgoing auth;
    auth.kind = outgoing::form::raw;
    auth.internal = true;
    auth.body = "AUTH " + options_.auth_token + "\n";
    auth.deadline = options_.connect_timeout;
    auto [ec, body] = co_await internal_call(l, std::move(auth));
    if (ec) {
      co_return error{ec, fmt::format("{} refused the auth token: {}", name, body)};
    }
  }
  if (options_.out_of_order) {
    // A raw frame: HELLO is about the connection, so it carries no deadline-ms; the client
    // still gives up on it after the connect timeout.
    outgoing hello;
    hello.kind = outgoing::form::raw;
    hello.internal = true;
    hello.body = "HELLO 3\nooo";
    hello.deadline = options_.connect_timeout;
    auto [ec, granted] = co_await internal_call(l, std::move(hello));
    // Granted or not, the connection works: an older server answers unknown-command and the
    // replies are paired by order, as before. Only a lost connection is a failure here.
    if (!ec && wire::has_feature(granted, "ooo")) {
      l->use_out_of_order();
      out_of_order_.store(true, std::memory_order_relaxed);
    }
    if (ec == errc::connection_lost || ec == errc::not_connected || ec == errc::timeout) {
      co_return error{ec, fmt::format("cannot connect to {}: {}", name, granted)};
    }
  }
  co_return std::nullopt;
}

void call_core::dial_failed(std::size_t index, const error& why) {
  conn_slot& s = *slots_[index];
  last_error_ = why.message;
  ++s.failures_in_row;
  record(s.target, [&](channel_stats::address_stats& st) {
    ++st.connect_failures;
    st.last_error = why.message;
  });
  if (!mode_.reconnect) {
    lost_ = why;
    set_state(s, connection_state::backing_off);
    if (!had_outcome_) {
      had_outcome_ = true;
      if (auto done = std::move(first_outcome_)) std::move(done)(why.code, why.message);
    }
    for (auto& c : take_waiting()) fail(c, errc::not_connected, why.message);
    return;
  }
  schedule_redial(index, backoff_delay(s.failures_in_row));
  // Calls that may not wait fail now that nothing is connecting.
  if (!any_connecting()) {
    for (auto& c : take_waiting()) {
      if (c.request.wait_for_ready.value_or(options_.wait_for_ready)) {
        route(std::move(c));  // waits again
      } else {
        fail(c, errc::not_connected, no_connection_message());
      }
    }
  }
}

std::chrono::milliseconds call_core::backoff_delay(unsigned failures) {
  const backoff_options& b = options_.backoff;
  double delay = static_cast<double>(b.initial.count()) *
                 std::pow(std::max(1.0, b.multiplier), failures > 0 ? failures - 1 : 0);
  delay = std::min(delay, static_cast<double>(b.max.count()));
  const double j = std::clamp(b.jitter, 0.0, 1.0);
  std::uniform_real_distribution<double> spread(1.0 - j, 1.0 + j);
  return std::chrono::milliseconds(std::llround(delay * spread(jitter_rng_)));
}

void call_core::schedule_redial(std::size_t index, std::chrono::milliseconds delay) {
  conn_slot& s = *slots_[index];
  set_state(s, connection_state::backing_off);
  if (!s.retry_timer) s.retry_timer.emplace(strand_);
  s.retry_timer->expires_after(delay);
  s.retry_timer->async_wait([self = shared_from_this(), index](boost::system::error_code ec) {
    if (ec || self->closing_) return;
    asio::co_spawn(self->strand_, dial_guarded(self, index), asio::detached);
  });
}

void call_core::link_ready(std::size_t index, std::shared_ptr<link> l) {
  conn_slot& s = *slots_[index];
  s.l = std::move(l);
  s.failures_in_row = 0;
  s.ready_since = clock::now();
  set_state(s, connection_state::ready);
  record(s.target, [](channel_stats::address_stats& st) { ++st.connects; });
  s.l->start_keepalive(options_.keepalive_interval, options_.keepalive_timeout);
  if (!had_outcome_) {
    had_outcome_ = true;
    if (auto done = std::move(first_outcome_)) std::move(done)(std::error_code(), std::string());
  }
  drain_waiting();
}

void call_core::link_ended(std::size_t index, link& l, link_end end) {
  conn_slot& s = *slots_[index];
  const bool was_ready = s.l.get() == &l;
  if (was_ready) {
    s.l.reset();
    last_error_ = end.why.message;
    record(s.target, [&](channel_stats::address_stats& st) {
      ++st.disconnects;
      st.last_error = end.why.message;
    });
  }
  if (closing_) {
    for (auto& c : end.unsent) fail(c, errc::not_connected, "closed");
    for (auto& c : end.written) fail(c, errc::not_connected, "closed");
    return;
  }
  if (!mode_.reconnect) {
    // A client: everything in flight fails as the connection did, later calls fail at once.
    if (was_ready) lost_ = end.why;
    set_state(s, connection_state::backing_off);
    for (auto& c : end.unsent) fail(c, end.why.code, end.why.message);
    for (auto& c : end.written) fail(c, end.why.code, end.why.message);
    return;
  }
  if (was_ready) {
    // Reconnect at once after a connection that worked for a while; one that breaks right
    // after it was made counts as a failed attempt, so a flapping server gets backoff.
    const bool short_lived = clock::now() - s.ready_since < options_.backoff.initial;
    if (short_lived) ++s.failures_in_row;
    schedule_redial(index,
                    short_lived ? backoff_delay(s.failures_in_row) : std::chrono::milliseconds(0));
  }
  for (auto& c : end.unsent) {
    if (c.request.internal) {
      fail(c, end.why.code, end.why.message);  // about that connection only
    } else {
      route(std::move(c));
    }
  }
  for (auto& c : end.written) {
    if (c.request.internal) {
      fail(c, end.why.code, end.why.message);
    } else if (c.request.idempotent && c.attempts < options_.max_attempts &&
               c.deadline > clock::now()) {
      ++retries_;
      route(std::move(c));
    } else {
      fail(c, errc::connection_lost,
           c.request.idempotent
               ? fmt::format("{} (after {} attempts)", end.why.message, c.attempts)
               : fmt::format("{}; the call may have run (it is not idempotent, so it was not "
                             "sent again)",
                             end.why.message));
    }
  }
}

// ---- routing

void call_core::submit(outgoing request, asio::any_completion_handler<raw_call_signature> done) {
  ++calls_;
  asio::post(strand_,
             [self = shared_from_this(), r = std::move(request), d = std::move(done)]() mutable {
               self->route(call(std::move(r), std::move(d), self->strand_));
             });
}

void call_core::route(call c) {
  if (c.completed()) return;
  if (closing_) {
    fail(c, errc::not_connected, "closed");
    return;
  }
  if (c.deadline <= clock::now()) {
    fail(c, errc::timeout, "deadline passed before a connection was ready");
    return;
  }
  if (lost_) {
    fail(c, errc::not_connected, lost_->message);
    return;
  }
  link* best = nullptr;
  const std::size_t n = slots_.size();
  for (std::size_t k = 0; k < n; ++k) {
    const auto& s = slots_[(next_pick_ + k) % n];
    if (!s->l || !s->l->usable()) continue;
    if (best == nullptr || s->l->outstanding() < best->outstanding()) best = s->l.get();
  }
  if (best == nullptr && !mode_.reconnect && slots_.front()->l) {
    best = slots_.front()->l.get();  // a client's subscribed link: it says why it refuses
  }
  if (best != nullptr) {
    next_pick_ = (next_pick_ + 1) % n;  // ties go round the connections
    best->send(std::move(c));
    return;
  }
  if (!c.request.wait_for_ready.value_or(options_.wait_for_ready) && !any_connecting()) {
    fail(c, errc::not_connected, no_connection_message());
    return;
  }
  in_flight_->fetch_add(1, std::memory_order_relaxed);
  const auto deadline = c.deadline;
  waiting_.push_back(std::move(c));
  waiting_count_ = waiting_.size();
  if (deadline < waiting_timer_at_) arm_waiting_timer();
}

void call_core::fail(call& c, std::error_code code, std::string message) {
  if (c.completed()) return;
  if (!c.request.internal) ++failures_;
  c.complete(code, std::move(message));
}

std::deque<call> call_core::take_waiting() {
  std::deque<call> taken = std::move(waiting_);
  waiting_.clear();
  in_flight_->fetch_sub(taken.size(), std::memory_order_relaxed);
  waiting_count_ = 0;
  return taken;
}

void call_core::drain_waiting() {
  for (auto& c : take_waiting()) route(std::move(c));
}

void call_core::arm_waiting_timer() {
  clock::time_point earliest = clock::time_point::max();
  for (const auto& c : waiting_) {
    if (!c.completed()) earliest = std::min(earliest, c.deadline);
  }
  waiting_timer_at_ = earliest;
  if (earliest == clock::time_point::max()) return;
  waiting_timer_.expires_at(earliest);
  waiting_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->on_waiting_timer();
  });
}

void call_core::on_waiting_timer() {
  const auto now = clock::now();
  std::deque<call> keep;
  for (auto& c : waiting_) {
    if (c.completed()) {
      in_flight_->fetch_sub(1, std::memory_order_relaxed);
    } else if (c.deadline <= now) {
      in_flight_->fetch_sub(1, std::memory_order_relaxed);
      fail(c, errc::timeout,
           fmt::format("deadline passed while waiting for a connection ({})",
                       no_connection_message()));
    } else {
      keep.push_back(std::move(c));
    }
  }
  waiting_ = std::move(keep);
  waiting_count_ = waiting_.size();
  arm_waiting_timer();
}

bool call_core::any_connecting() const noexcept {
  return std::any_of(slots_.begin(), slots_.end(), [](const auto& s) {
    return s->state == connection_state::connecting && s->failures_in_row == 0;
  });
}

std::string call_core::no_connection_message() const {
  std::string names;
  for (const auto& n : names_) names += (names.empty() ? "" : ", ") + n;
  return last_error_.empty()
             ? fmt::format("no connection to {} is ready", names)
             : fmt::format("no connection to {} is ready (last error: {})", names, last_error_);
}

// ---- subscriptions and stats

void call_core::subscribe(outgoing request, client::message_handler on_message,
                          client::end_handler on_end,
                          asio::any_completion_handler<raw_call_signature> done) {
  asio::post(strand_, [self = shared_from_this(), r = std::move(request),
                       on_message = std::move(on_message), on_end = std::move(on_end),
                       d = std::move(done)]() mutable {
    call ack(std::move(r), std::move(d), self->strand_);  // closed: see client::subscribe
    const auto& s = self->slots_.front();
    if (!s->l || self->closing_) {
      self->fail(ack, errc::not_connected,
                 self->lost_ ? self->lost_->message : std::string("connection is closed"));
      return;
    }
    s->l->subscribe(std::move(ack), std::move(on_message), std::move(on_end));
  });
}

void call_core::set_state(conn_slot& s, connection_state state) {
  const connection_state before = s.state;
  s.state = state;
  std::lock_guard lock(stats_mutex_);
  auto& st = address_stats_[s.target];
  // Slots start out counted as connecting (see stats()); transitions move one count.
  auto count = [&](connection_state c) -> std::size_t& {
    return c == connection_state::ready        ? st.ready
           : c == connection_state::connecting ? st.connecting
                                               : st.backing_off;
  };
  if (before != state) {
    --count(before);
    ++count(state);
  }
}

void call_core::record(std::size_t target, const auto& update) {
  std::lock_guard lock(stats_mutex_);
  update(address_stats_[target]);
}

channel_stats call_core::stats() const {
  channel_stats out;
  {
    std::lock_guard lock(stats_mutex_);
    out.addresses = address_stats_;
  }
  out.calls = calls_.load();
  out.retries = retries_.load();
  out.failures = failures_.load();
  out.waiting = waiting_count_.load();
  return out;
}

}  // namespace cmdwire::detail
