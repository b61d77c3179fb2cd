// One client connection: the writer that frames and batches queued calls, the reader that pairs
// replies with calls, deadlines and keepalive.
#include "link.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "cmdwire/pubsub.hpp"
#include "nothrow.hpp"

namespace cmdwire::detail {

call::call(outgoing r, asio::any_completion_handler<raw_call_signature> handler,
           const asio::any_io_executor& fallback)
    : request(std::move(r)), done(std::move(handler)) {
  work = asio::prefer(asio::get_associated_executor(done, fallback),
                      asio::execution::outstanding_work.tracked);
  if (request.deadline.count() > 0) deadline = clock::now() + request.deadline;
}

void call::complete(std::error_code ec, std::string body) {
  if (!done) return;
  // Everything is taken out of *this first: on this strand the handler runs inline, and it
  // may end the link that holds this call, destroying it.
  auto handler = std::move(done);
  auto keep_busy = std::move(work);
  auto ex = asio::get_associated_executor(handler, keep_busy);
  asio::dispatch(ex, [h = std::move(handler), ec, b = std::move(body)]() mutable {
    std::move(h)(ec, std::move(b));
  });
}

link::link(strand_type strand, connection::socket_type socket,
           const connection_options& conn_options, const client_options& options,
           std::string address, std::shared_ptr<std::atomic<std::size_t>> in_flight,
           end_callback on_end)
    : strand_(std::move(strand)),
      conn_(std::move(socket), conn_options),
      options_(options),
      address_(std::move(address)),
      in_flight_(std::move(in_flight)),
      on_end_(std::move(on_end)),
      timer_(strand_) {}

namespace {
/// Completion of a link's coroutines. One that ends by an exception (a bug) must not take the
/// io_context's thread with it, nor leave calls waiting for ever: it ends the link, so they fail
/// with connection_lost.
auto end_on_exception(std::shared_ptr<link> self) {
  return [self = std::move(self)](const std::exception_ptr& e) {
    if (!e) return;
    std::string why = "internal error in the client";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      why.append(": ").append(ex.what());
    } catch (...) {  // NOLINT(bugprone-empty-catch): the message says enough
    }
    self->end(make_error(errc::connection_lost, why));
  };
}
}  // namespace

void link::start() {
  asio::co_spawn(strand_, read_replies(shared_from_this()), end_on_exception(shared_from_this()));
}

void link::send(call c) {
  if (ended_ || subscribed_) {
    c.fail(make_error(errc::not_connected, subscribed_ ? "connection is dedicated to a subscription"
                                                       : "connection is closed"));
    return;
  }
  const std::uint64_t seq = front_seq_ + pending_.size();
  if (c.deadline != clock::time_point::max()) {
    deadlines_.emplace(c.deadline, seq);
    if (c.deadline < timer_at_) arm_timer(c.deadline);
  }
  const bool line = c.request.kind == outgoing::form::line;
  pending_.push_back(slot{std::move(c), line, false});
  ++unanswered_;
  in_flight_->fetch_add(1, std::memory_order_relaxed);
  schedule_write();
}

void link::schedule_write() {
  // One writer at a time; what is queued while it writes joins its next batch.
  if (writer_running_ || ended_) return;
  writer_running_ = true;
  asio::co_spawn(strand_, write_queued(shared_from_this()), end_on_exception(shared_from_this()));
}

bool link::frame_queued() {
  std::string& out = conn_.out();
  const auto now = clock::now();
  bool any = false;
  for (; unframed_seq_ < front_seq_ + pending_.size(); ++unframed_seq_) {
    slot& s = pending_[unframed_seq_ - front_seq_];
    call& c = s.c;
    // A call whose deadline passed before it was written is not sent at all.
    if (c.completed() || c.deadline <= now) {
      call dropped = std::move(c);
      mark_answered(s);
      dropped.complete(make_error_code(errc::timeout), "deadline passed before the call was sent");
      if (ended_) return false;  // its handler ended the link
      continue;
    }
    ++c.attempts;
    any = true;
    const outgoing& r = c.request;
    switch (r.kind) {
      case outgoing::form::raw:
        out += r.body;
        continue;
      case outgoing::form::line:
        wire::append_line_request(out, r.name, r.body);
        continue;
      case outgoing::form::framed:
        break;
    }
    std::optional<std::uint32_t> deadline_ms;
    if (c.deadline != clock::time_point::max()) {
      // What is left now, so a retried call does not get its whole budget again.
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(c.deadline - now).count();
      deadline_ms = static_cast<std::uint32_t>(std::clamp<decltype(left)>(left, 1, UINT32_MAX));
    }
    // Without out-of-order replies the bytes are exactly those of a client that never heard
    // of ids: no id is sent.
    wire::append_request(out, r.name, r.enc, r.body,
                         out_of_order_ ? std::optional<std::uint64_t>(unframed_seq_) : std::nullopt,
                         deadline_ms);
  }
  // Slots dropped unsent may now be at the front.
  while (!pending_.empty() && pending_.front().answered && front_seq_ < unframed_seq_) {
    pending_.pop_front();
    ++front_seq_;
  }
  return any;
}

asio::awaitable<void> link::write_queued(std::shared_ptr<link> self) {
  while (!self->ended_ && self->frame_queued()) {
    if (auto ec = co_await self->conn_.flush(); ec) {
      self->end(make_error(errc::connection_lost,
                           fmt::format("connection to {} lost: {}", self->address_, ec.message())));
      break;
    }
  }
  self->writer_running_ = false;
}

asio::awaitable<void> link::read_replies(std::shared_ptr<link> self) {
  for (;;) {
    const std::optional<std::size_t> need = self->take_replies();
    if (!need) co_return;
    const auto ec = co_await self->conn_.read_more(*need);
    if (self->ended_) co_return;
    if (ec) {
      self->end(
          make_error(errc::connection_lost,
                     ec == asio::error::eof
                         ? fmt::format("{} closed the connection", self->address_)
                         : fmt::format("connection to {} lost: {}", self->address_, ec.message())));
      co_return;
    }
  }
}

std::optional<std::size_t> link::take_replies() {
  for (;;) {
    if (ended_) return std::nullopt;
    const std::string_view data = conn_.pending();
    if (data.empty()) return 1;
    if (unanswered_ == 0 && subscribed_) {
      const pubsub::message_parse msg = pubsub::parse_message(data, options_.limits);
      if (msg.state == wire::status::need_more) return msg.need;
      if (msg.state == wire::status::error) {
        end(make_error(errc::protocol_error,
                       fmt::format("bad message from {}: {}", address_, msg.detail)));
        return std::nullopt;
      }
      if (on_message_) on_message_(msg.value.topic, msg.value.body);
      if (ended_) return std::nullopt;  // on_message closed the client
      conn_.consume(msg.size);
      continue;
    }
    slot* oldest = slot_for(std::nullopt);
    if (oldest == nullptr) {
      end(make_error(errc::protocol_error,
                     fmt::format("{} sent bytes nobody asked for", address_)));
      return std::nullopt;
    }
    const wire::reply_parse parsed = oldest->line_reply
                                         ? wire::parse_line_reply(data, options_.limits)
                                         : wire::parse_reply(data, options_.limits);
    if (parsed.state == wire::status::need_more) return parsed.need;
    if (parsed.state == wire::status::error) {
      end(make_error(parsed.error, fmt::format("bad reply from {}: {}", address_, parsed.detail)));
      return std::nullopt;
    }
    const wire::reply& rep = parsed.value;
    slot* s = slot_for(rep.id);
    if (s == nullptr) {
      end(make_error(errc::protocol_error,
                     fmt::format("{} answered id={}, which no call is waiting for", address_,
                                 rep.id.value_or(0))));
      return std::nullopt;
    }
    // The slot is answered before the handler runs: a handler on this strand runs inline and
    // may send, end the link or close its owner.
    call done = std::move(s->c);
    mark_answered(*s);
    conn_.consume(parsed.size);
    if (rep.ok) {
      done.complete({}, std::string(rep.body));
    } else {
      done.complete(make_error_code(errc_from_wire_name(rep.code)), std::string(rep.body));
    }
  }
}

void link::mark_answered(slot& s) {
  if (s.answered) return;
  s.answered = true;
  --unanswered_;
  in_flight_->fetch_sub(1, std::memory_order_relaxed);
  while (!pending_.empty() && pending_.front().answered && front_seq_ < unframed_seq_) {
    pending_.pop_front();
    ++front_seq_;
  }
}

link::slot* link::slot_for(const std::optional<std::uint64_t>& id) {
  if (id && out_of_order_) {
    if (*id < front_seq_ || *id >= unframed_seq_) return nullptr;
    slot& s = pending_[*id - front_seq_];
    return s.answered ? nullptr : &s;
  }
  // In order, or a reply without an id (the server answers id-less requests in place): the
  // oldest call written and not answered.
  for (std::uint64_t seq = front_seq_; seq < unframed_seq_; ++seq) {
    slot& s = pending_[seq - front_seq_];
    if (!s.answered) return &s;
  }
  return nullptr;
}

void link::arm_timer(clock::time_point at) {
  timer_at_ = at;
  timer_.expires_at(at);
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->on_timer();  // else re-armed or ended
  });
}

void link::on_timer() {
  timer_at_ = clock::time_point::max();
  const auto now = clock::now();
  while (!deadlines_.empty() && deadlines_.top().first <= now) {
    const std::uint64_t seq = deadlines_.top().second;
    deadlines_.pop();
    if (seq >= front_seq_ && seq - front_seq_ < pending_.size()) {
      slot& s = pending_[seq - front_seq_];
      // The reply may still come; the slot stays so later replies keep their order. A call
      // not yet written is dropped when the writer reaches it.
      if (!s.answered && !s.c.completed()) {
        call expired = std::move(s.c);  // the slot stays, so later replies keep their order
        expired.complete(make_error_code(errc::timeout),
                         "deadline passed before the reply arrived");
        if (ended_) return;  // the handler ended the link
      }
    }
  }
  if (!deadlines_.empty()) arm_timer(deadlines_.top().first);
}

void link::start_keepalive(std::chrono::milliseconds interval, std::chrono::milliseconds timeout) {
  if (interval.count() <= 0 || ended_) return;
  keepalive_timer_.emplace(strand_);
  asio::co_spawn(strand_, keepalive(shared_from_this(), interval, timeout),
                 end_on_exception(shared_from_this()));
}

asio::awaitable<void> link::keepalive(std::shared_ptr<link> self,
                                      std::chrono::milliseconds interval,
                                      std::chrono::milliseconds timeout) {
  clock::time_point last_heard = clock::now();
  for (;;) {
    self->keepalive_timer_->expires_after(interval);
    co_await self->keepalive_timer_->async_wait(nothrow);
    if (self->ended_) co_return;
    if (self->conn_.last_read() > last_heard) last_heard = self->conn_.last_read();
    if (self->ping_out_ || self->subscribed_ || clock::now() - last_heard < interval) continue;
    if (!self->out_of_order_ && self->unanswered_ > 0) continue;
    outgoing ping;
    ping.name = "PING";
    ping.internal = true;
    ping.deadline = timeout;
    self->ping_out_ = true;
    // Any reply will do; only the deadline passing means the peer is gone.
    std::weak_ptr<link> weak = self;
    self->send(call(std::move(ping),
                    asio::bind_executor(self->strand_,
                                        [weak, timeout](std::error_code ec, std::string) {
                                          auto l = weak.lock();
                                          if (!l) return;
                                          l->ping_out_ = false;
                                          if (ec != errc::timeout) return;
                                          l->end(make_error(
                                              errc::connection_lost,
                                              fmt::format("{} did not answer a keepalive PING "
                                                          "within {} ms",
                                                          l->address_, timeout.count())));
                                        }),
                    self->strand_));
  }
}

void link::subscribe(call ack, client::message_handler on_message, client::end_handler on_end) {
  if (!usable()) {
    ack.fail(make_error(errc::not_connected,
                        subscribed_ ? "client is already subscribed" : "connection is closed"));
    return;
  }
  // The acknowledgement is an ordinary reply; what follows it is MSG frames.
  send(std::move(ack));
  subscribed_ = true;
  on_message_ = std::move(on_message);
  on_sub_end_ = std::move(on_end);
}

void link::end(const error& why) {
  if (ended_) return;
  ended_ = true;
  conn_.close();
  timer_.cancel();
  if (keepalive_timer_) keepalive_timer_->cancel();
  link_end handed_back{why, {}, {}};
  for (std::uint64_t seq = front_seq_; seq < front_seq_ + pending_.size(); ++seq) {
    slot& s = pending_[seq - front_seq_];
    if (s.answered || s.c.completed()) continue;
    (seq < unframed_seq_ ? handed_back.written : handed_back.unsent).push_back(std::move(s.c));
  }
  pending_.clear();
  front_seq_ = unframed_seq_ = 0;
  in_flight_->fetch_sub(unanswered_, std::memory_order_relaxed);
  unanswered_ = 0;
  deadlines_ = {};
  if (subscribed_ && on_sub_end_) {
    auto notify = std::move(on_sub_end_);
    notify(why);
  }
  on_message_ = {};
  if (auto notify = std::move(on_end_)) {
    on_end_ = {};
    notify(*this, std::move(handed_back));
  }
}

}  // namespace cmdwire::detail
