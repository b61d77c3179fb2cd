// Running handlers for a session: inline (sync), awaited (async, with deadline and
// cancellation), concurrent (out-of-order connections), offloaded (handler pool), stream; and
// turning what they produced, or threw, into the reply.
#include <fmt/format.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "nothrow.hpp"
#include "session.hpp"

namespace cmdwire::detail {

namespace {

request_context context_for(const wire::request& req, const asio::ip::tcp::endpoint& peer) {
  request_context rc;
  rc.name = req.head.name;
  rc.enc = req.head.enc;
  rc.body = req.body;
  rc.line_form = req.line_form;
  rc.length = req.head.length;
  rc.id = req.head.id;
  rc.peer = &peer;
  return rc;
}

}  // namespace

session::call::call(const connection& conn, const wire::request& req,
                    std::optional<call_context::clock::time_point> deadline, bool own_bytes)
    : rc(context_for(req, conn.peer())),
      ctx(conn.peer(), req.head.id, req.head.enc, deadline, conn.peer_name()) {
  if (own_bytes) {
    name_copy = req.head.name;
    body_copy = req.body;
    rc.name = name_copy;
    rc.body = body_copy;
  }
  rc.call = &ctx;
}

std::optional<errc> session::append_reply(const request_context& rc, const reply_writer& writer,
                                          const std::string& body) {
  if (const auto& failure = writer.failure()) {
    const errc code = wire_code(failure->code);
    wire::append_error(conn_.out(), code, failure->message, rc.id);
    log(log_level::debug,
        fmt::format("{}: ERR {}: {}", rc.name, wire_name(code), failure->message));
    return code;
  }
  if (rc.line_form) {
    // A line reply must stay one line, and must not look like an error frame.
    if (body.find('\n') != std::string::npos) {
      wire::append_error(conn_.out(), errc::internal, "line handler returned more than one line",
                         rc.id);
      return errc::internal;
    }
    if (body.starts_with("ERR ")) {
      wire::append_error(conn_.out(), errc::internal,
                         "line handler returned a line that reads as an error reply", rc.id);
      return errc::internal;
    }
    wire::append_line(conn_.out(), body);
    return std::nullopt;
  }
  wire::append_ok(conn_.out(), body, rc.id);
  return std::nullopt;
}

void session::count(const handler_entry& entry, latency_clock::ticks begun,
                    std::optional<errc> failed) noexcept {
  const auto now = latency_clock::now();
  home_.counters.commands[entry.index].record(latency_clock::elapsed(begun, now), failed);
  last_answered_ = now;
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
  // Parsing this request began when the previous one was answered, or when its bytes came.
  const auto begun = last_answered_;
  request_context rc = context_for(req, conn_.peer());
  call_context ctx(conn_.peer(), req.head.id, req.head.enc, deadline_of(req), conn_.peer_name());
  rc.call = &ctx;
  body_.clear();
  reply_writer writer(body_);
  try {
    entry.sync(rc, writer);
  } catch (...) {
    fail_from_exception(rc, writer);
  }
  const auto failed = append_reply(rc, writer, body_);
  conn_.account_also(body_.capacity());
  count(entry, begun, failed);
}

namespace {
/// Cancels `ctx` for its deadline at `at`; cancelled itself when the call ends first.
asio::awaitable<void> cancel_at(call_context& ctx, call_context::clock::time_point at) {
  asio::steady_timer timer(co_await asio::this_coro::executor, at);
  auto [ec] = co_await timer.async_wait(nothrow);
  if (!ec) ctx.cancel(cancel_reason::deadline);
}
}  // namespace

asio::awaitable<void> session::run_call(call& c, const handler_entry& entry) {
  using namespace asio::experimental::awaitable_operators;
  reply_writer writer(c.reply);
  if (const auto deadline = c.ctx.deadline()) {
    // `||` returns once both sides are done: the handler, cancelled through its context when
    // the deadline passes, always finishes before the call does.
    co_await (run_handler(c, entry, writer) || cancel_at(c.ctx, *deadline));
  } else {
    co_await run_handler(c, entry, writer);
  }
  switch (c.ctx.why_cancelled()) {
    case cancel_reason::deadline:
      writer.fail(errc::deadline_exceeded, "deadline passed while the request ran");
      break;
    case cancel_reason::peer_gone:
    case cancel_reason::shutdown:
      count(entry, c.begun, std::nullopt);
      co_return;  // nobody is waiting for the reply
    case cancel_reason::none:
      break;
  }
  count(entry, c.begun, append_reply(c.rc, writer, c.reply));
}

asio::awaitable<void> session::run_handler(call& c, const handler_entry& entry,
                                           reply_writer& writer) {
  try {
    if (entry.offload) {
      co_await run_offloaded(c, entry, writer);
    } else {
      // Spawned with the call's own cancellation slot: cancelling the call reaches whatever
      // the handler awaits, and nothing else does.
      co_await asio::co_spawn(
          conn_.executor(), entry.async(c.rc, writer),
          asio::bind_cancellation_slot(c.ctx.cancellation_slot(), asio::use_awaitable));
    }
  } catch (...) {
    if (!c.ctx.cancelled()) fail_from_exception(c.rc, writer);
  }
}

namespace {
/// Runs `job` on `pool`, then resumes the awaiting coroutine on `home`.
///
/// Deliberately not a co_spawn onto the pool: an awaited co_spawn connects the caller's
/// cancellation slot to the spawned coroutine, and Asio (1.81) then emits into it from the
/// caller's thread while the pool thread may be finishing that coroutine (a use-after-free),
/// or makes the spawned coroutine throw `operation_aborted` out of the pool thread (terminate).
/// Here no cancellation handler is installed at all: cancelling the awaiting coroutine only
/// marks it, the job runs to its end (it sees cancellation through call_context's atomic
/// reason), and every touch of the awaiting coroutine's state happens on `home`.
template <class Job>
asio::awaitable<void> async_run_on_pool(asio::thread_pool::executor_type pool,
                                        asio::any_io_executor home, Job& job) {
  co_await asio::async_initiate<const asio::use_awaitable_t<>, void()>(
      [pool, home = std::move(home), &job](auto resume) mutable {
        asio::post(pool, [home = std::move(home), &job, resume = std::move(resume)]() mutable {
          job();
          asio::post(home, std::move(resume));
        });
      },
      asio::use_awaitable);
}
}  // namespace

asio::awaitable<void> session::run_offloaded(call& c, const handler_entry& entry,
                                             reply_writer& writer) {
  if (state_.offloaded.fetch_add(1) >= opt_.handler_queue) {
    --state_.offloaded;
    writer.fail(errc::busy, "handler pool queue is full; try again later");
    co_return;
  }
  // While the handler runs elsewhere, nothing else may let this worker's run() return.
  auto keep_worker = asio::make_work_guard(conn_.executor());
  // The handler touches only the call and its writer, which outlive this await: the session
  // waits for every call (finish_calls) and the endpoint joins the pool before the workers'
  // contexts, which own the calls, are destroyed.
  auto job = [&]() noexcept {
    try {
      entry.sync(c.rc, writer);
    } catch (...) {
      fail_from_exception(c.rc, writer);
    }
  };
  co_await async_run_on_pool(state_.handler_pool->get_executor(), conn_.executor(), job);
  --state_.offloaded;
}

void session::start_concurrent(const handler_entry& entry, const wire::request& req) {
  // The receive buffer is reused while the call runs: it keeps its own name and body.
  calls_.emplace_back(conn_, req, deadline_of(req), true);
  ++tasks_;
  asio::co_spawn(conn_.executor(), run_concurrent(std::prev(calls_.end()), entry),
                 task_end{&state_, "concurrent call"});
}

asio::awaitable<void> session::run_concurrent(std::list<call>::iterator it,
                                              const handler_entry& entry) {
  co_await run_call(*it, entry);
  calls_.erase(it);
  wake();
  // The reply is written as soon as it is ready. If a write is already under way, it takes
  // this reply along, and flush() returns at once.
  co_await conn_.flush();
  --tasks_;
  wake();
}

asio::awaitable<void> session::wait_for_a_call() {
  wake_.expires_at(asio::steady_timer::time_point::max());
  co_await wake_.async_wait(nothrow);
}

asio::awaitable<void> session::finish_calls(cancel_reason why) {
  for (call& c : calls_) c.ctx.cancel(why);
  while (tasks_ > 0 || !calls_.empty()) {
    if (conn_.is_open() && !conn_.out().empty()) (void)co_await conn_.flush();
    if (tasks_ > 0 || !calls_.empty()) co_await wait_for_a_call();
  }
}

asio::awaitable<void> session::run_stream(const handler_entry& entry, const wire::request& req) {
  // The handler's reads may reuse the buffer the name lives in: keep a copy.
  const std::string name(req.head.name);
  request_context rc = context_for(req, conn_.peer());
  rc.name = name;
  call_context ctx(conn_.peer(), req.head.id, req.head.enc, deadline_of(req), conn_.peer_name());
  rc.call = &ctx;
  const auto begun = latency_clock::now();
  if (auto ec = co_await conn_.flush(); ec) co_return;
  co_await entry.stream(rc, *this);
  count(entry, begun, std::nullopt);
}

}  // namespace cmdwire::detail
