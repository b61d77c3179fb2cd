// The client's I/O thread: connecting, one writer that batches queued requests, one reader
// that pairs replies with calls in order, and the deadline timer.
#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>

#include "client_impl.hpp"
#include "cmdwire/pubsub.hpp"
#include "tls.hpp"

namespace cmdwire {

using asio::ip::tcp;

namespace {
// Replies usually fit; the buffer grows (within the limits) for bigger ones.
constexpr std::size_t initial_reply_buffer = 16 * 1024;
}  // namespace

std::optional<error> client::impl::open(const host_port& where) {
  tcp::socket socket(context);
  if (auto failed = connect_tcp(where, socket)) return failed;
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  detail::connection_options copt;
  copt.limits = options.limits;
  copt.initial_buffer = initial_reply_buffer;
  conn.emplace(std::move(socket), copt);
  if (options.tls.enabled) {
    if (auto failed = handshake(where.host); !failed.empty()) {
      return error{make_error_code(errc::not_connected),
                   fmt::format("cannot connect to {}: {}", address, failed)};
    }
  }
  keep_running.emplace(context.get_executor());
  asio::co_spawn(context, read_replies(), asio::detached);
  thread = std::thread([this] { context.run(); });
  return std::nullopt;
}

void client::impl::shutdown() {
  if (shut_down.exchange(true) || !thread.joinable()) return;
  asio::post(context, [this] { fail_all(make_error(errc::not_connected, "client closed")); });
  keep_running.reset();
  if (context.get_executor().running_in_this_thread()) {
    thread.detach();  // closing from our own completion handler: the thread ends by itself
  } else {
    thread.join();
  }
}

std::optional<error> client::impl::connect_tcp(const host_port& where, tcp::socket& socket) {
  // The resolver and timer live in this frame, so they are gone before the context can be.
  tcp::resolver resolver(context);
  asio::steady_timer timeout(context);
  boost::system::error_code outcome = asio::error::would_block;
  bool timed_out = false;
  resolver.async_resolve(
      where.host, std::to_string(where.port),
      [&](boost::system::error_code ec, const tcp::resolver::results_type& results) {
        if (ec) {
          outcome = ec;
          timeout.cancel();
          return;
        }
        asio::async_connect(socket, results,
                            [&](boost::system::error_code cec, const tcp::endpoint&) {
                              outcome = cec;
                              timeout.cancel();
                            });
      });
  timeout.expires_after(options.connect_timeout);
  timeout.async_wait([&](boost::system::error_code ec) {
    if (ec) return;
    timed_out = true;
    resolver.cancel();
    boost::system::error_code ignored;
    socket.close(ignored);
  });
  context.run();
  context.restart();
  if (timed_out) {
    return error{make_error_code(errc::timeout),
                 fmt::format("cannot connect to {}: no answer within {} ms", address,
                             options.connect_timeout.count())};
  }
  if (outcome) {
    return error{outcome, fmt::format("cannot connect to {}: {}", address, outcome.message())};
  }
  return std::nullopt;
}

std::string client::impl::handshake(const std::string& host) {
  auto made = detail::make_client_tls(options.tls);
  if (!made) return made.error().message;
  tls_context = std::move(*made);
  boost::system::error_code outcome = asio::error::would_block;
  asio::steady_timer timeout(context, options.connect_timeout);
  asio::co_spawn(context, conn->start_tls(*tls_context, asio::ssl::stream_base::client, host),
                 [&](std::exception_ptr, boost::system::error_code ec) {
                   outcome = ec;
                   timeout.cancel();
                 });
  timeout.async_wait([&](boost::system::error_code ec) {
    if (!ec) conn->close();
  });
  context.run();
  context.restart();
  if (!outcome) return {};
  std::string why = outcome.message();
  if (outcome == asio::error::eof || outcome == asio::error::connection_reset) {
    why += " (is the server speaking TLS?)";
  }
  return "TLS handshake failed: " + why;
}

void client::impl::complete(pending_call& call, std::error_code ec, std::string body) {
  if (!call.done) return;
  auto handler = std::move(call.done);
  auto ex = asio::get_associated_executor(handler, call.work);
  asio::dispatch(ex, [h = std::move(handler), ec, b = std::move(body)]() mutable {
    std::move(h)(ec, std::move(b));
  });
  call.work = {};
}

void client::impl::enqueue(client::outgoing request,
                           asio::any_completion_handler<raw_call_signature> done) {
  using form = client::outgoing::form;
  pending_call call{std::move(done), {}, request.kind == form::line};
  call.work = asio::prefer(asio::get_associated_executor(call.done, context.get_executor()),
                           asio::execution::outstanding_work.tracked);
  if (closed) {
    complete(call, make_error_code(errc::not_connected), "connection is closed");
    return;
  }
  if (subscribed) {
    complete(call, make_error_code(errc::not_connected),
             "connection is dedicated to a subscription");
    return;
  }
  const std::uint64_t seq = front_seq + pending.size();
  pending.push_back(std::move(call));
  ++unanswered;
  in_flight.store(unanswered, std::memory_order_relaxed);
  if (request.deadline.count() > 0) {
    const auto at = clock::now() + request.deadline;
    deadlines.emplace(at, seq);
    if (at < timer_at) arm_timer(at);
  }
  frame(request, seq);
  // One writer at a time; while it writes, what is queued joins its next batch.
  if (!write_scheduled && !conn->writing()) {
    write_scheduled = true;
    asio::co_spawn(context, write_queued(), asio::detached);
  }
}

void client::impl::frame(const client::outgoing& request, std::uint64_t seq) {
  using form = client::outgoing::form;
  std::string& out = conn->out();
  switch (request.kind) {
    case form::raw:
      out += request.body;
      return;
    case form::line:
      wire::append_line_request(out, request.name, request.body);
      return;
    case form::framed:
      break;
  }
  std::optional<std::uint32_t> deadline_ms;
  if (request.deadline.count() > 0) {
    deadline_ms = static_cast<std::uint32_t>(
        std::min<std::chrono::milliseconds::rep>(request.deadline.count(), UINT32_MAX));
  }
  // Without out-of-order replies the bytes are exactly those of a client that never heard of
  // ids: no id is sent.
  const bool with_id = out_of_order.load(std::memory_order_relaxed);
  wire::append_request(out, request.name, request.enc, request.body,
                       with_id ? std::optional<std::uint64_t>(seq) : std::nullopt, deadline_ms);
}

asio::awaitable<void> client::impl::write_queued() {
  write_scheduled = false;
  if (closed) co_return;
  if (auto ec = co_await conn->flush(); ec) {
    fail_all(make_error(errc::connection_lost,
                        fmt::format("connection to {} lost: {}", address, ec.message())));
  }
}

asio::awaitable<void> client::impl::read_replies() {
  for (;;) {
    const std::optional<std::size_t> need = take_replies();
    if (!need) co_return;
    const auto ec = co_await conn->read_more(*need);
    if (closed) co_return;
    if (ec) {
      fail_all(make_error(errc::connection_lost,
                          ec == asio::error::eof
                              ? fmt::format("{} closed the connection", address)
                              : fmt::format("connection to {} lost: {}", address, ec.message())));
      co_return;
    }
  }
}

std::optional<std::size_t> client::impl::take_replies() {
  for (;;) {
    if (closed) return std::nullopt;
    const std::string_view data = conn->pending();
    if (data.empty()) return 1;
    if (unanswered == 0 && subscribed) {
      const pubsub::message_parse msg = pubsub::parse_message(data, options.limits);
      if (msg.state == wire::status::need_more) return msg.need;
      if (msg.state == wire::status::error) {
        fail_all(make_error(errc::protocol_error,
                            fmt::format("bad message from {}: {}", address, msg.detail)));
        return std::nullopt;
      }
      if (on_message) on_message(msg.value.topic, msg.value.body);
      if (closed) return std::nullopt;  // on_message closed the client
      conn->consume(msg.size);
      continue;
    }
    if (pending.empty()) {
      fail_all(
          make_error(errc::protocol_error, fmt::format("{} sent bytes nobody asked for", address)));
      return std::nullopt;
    }
    pending_call* oldest = call_for(std::nullopt);
    const wire::reply_parse parsed = oldest != nullptr && oldest->line_reply
                                         ? wire::parse_line_reply(data, options.limits)
                                         : wire::parse_reply(data, options.limits);
    if (parsed.state == wire::status::need_more) return parsed.need;
    if (parsed.state == wire::status::error) {
      fail_all(
          make_error(parsed.error, fmt::format("bad reply from {}: {}", address, parsed.detail)));
      return std::nullopt;
    }
    const wire::reply& rep = parsed.value;
    pending_call* call = call_for(rep.id);
    if (call == nullptr) {
      fail_all(make_error(errc::protocol_error,
                          fmt::format("{} answered id={}, which no call is waiting for", address,
                                      rep.id.value_or(0))));
      return std::nullopt;
    }
    if (rep.ok) {
      complete(*call, {}, std::string(rep.body));
    } else {
      complete(*call, make_error_code(errc_from_wire_name(rep.code)), std::string(rep.body));
    }
    call->answered = true;
    --unanswered;
    while (!pending.empty() && pending.front().answered) {
      pending.pop_front();
      ++front_seq;
    }
    in_flight.store(unanswered, std::memory_order_relaxed);
    conn->consume(parsed.size);
  }
}

client::impl::pending_call* client::impl::call_for(const std::optional<std::uint64_t>& id) {
  if (id && out_of_order.load(std::memory_order_relaxed)) {
    if (*id < front_seq || *id - front_seq >= pending.size()) return nullptr;
    pending_call& call = pending[*id - front_seq];
    return call.answered ? nullptr : &call;
  }
  // In order, or a reply without an id (the server answers id-less requests in place).
  for (pending_call& call : pending) {
    if (!call.answered) return &call;
  }
  return nullptr;
}

void client::impl::arm_timer(clock::time_point at) {
  timer_at = at;
  timer.expires_at(at);
  timer.async_wait([this](boost::system::error_code ec) {
    if (ec) return;  // re-armed or closed
    timer_at = clock::time_point::max();
    const auto now = clock::now();
    while (!deadlines.empty() && deadlines.top().first <= now) {
      const std::uint64_t seq = deadlines.top().second;
      deadlines.pop();
      if (seq >= front_seq && seq - front_seq < pending.size() &&
          !pending[seq - front_seq].answered) {
        // The reply may still come; its slot stays so later replies keep their order.
        complete(pending[seq - front_seq], make_error_code(errc::timeout),
                 "deadline passed before the reply arrived");
      }
    }
    if (!deadlines.empty()) arm_timer(deadlines.top().first);
  });
}

void client::impl::fail_all(const error& why) {
  if (closed) return;
  closed = true;
  if (conn) conn->close();
  timer.cancel();
  while (!pending.empty()) {
    if (!pending.front().answered) complete(pending.front(), why.code, why.message);
    pending.pop_front();
    ++front_seq;
  }
  unanswered = 0;
  in_flight.store(0, std::memory_order_relaxed);
  deadlines = {};
  if (subscribed && on_end) {
    auto notify = std::move(on_end);
    notify(why);
  }
}

}  // namespace cmdwire
