// Client connection: one I/O thread per client, a FIFO of calls in flight (replies come back
// in request order), one writer that batches queued requests, and a deadline heap.
#include "cmdwire/client.hpp"

#include <fmt/format.h>
#include <atomic>
#include <boost/asio/any_completion_executor.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <cstring>
#include <deque>
#include <future>
#include <optional>
#include <queue>
#include <thread>
#include <vector>

#include "cmdwire/address.hpp"
#include "cmdwire/pubsub.hpp"
#include "tls.hpp"

namespace cmdwire {

using asio::ip::tcp;
using clock = std::chrono::steady_clock;

namespace {
// Replies usually fit; the buffer grows (within the limits) for bigger ones.
constexpr std::size_t initial_reply_buffer = 16 * 1024;
}  // namespace

struct client::impl {
  struct pending_call {
    asio::any_completion_handler<raw_call_signature> done;  ///< empty once timed out
    asio::any_completion_executor work;  ///< keeps the caller's executor busy while we wait
    bool line_reply = false;
  };

  client_options options;
  std::string address;
  asio::io_context context{1};
  tcp::socket socket{context};
  std::unique_ptr<asio::ssl::context> tls_context;
  /// Engaged when options.tls.enabled; wraps `socket`, which stays the TCP connection.
  std::optional<asio::ssl::stream<tcp::socket&>> tls;
  /// Engaged once connected, so the connect phase's run() can return when it is done.
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> keep_running;
  std::thread thread;

  // Everything below is touched only on the client's thread.
  std::deque<pending_call> pending;
  std::uint64_t front_seq = 0;  ///< sequence number of pending.front()
  std::string queued;           ///< requests not handed to the socket yet
  std::string writing;          ///< requests the socket is writing now
  bool write_in_progress = false;
  std::vector<char> in = std::vector<char>(initial_reply_buffer);
  std::size_t in_begin = 0;
  std::size_t in_end = 0;
  using deadline_entry = std::pair<clock::time_point, std::uint64_t>;
  std::priority_queue<deadline_entry, std::vector<deadline_entry>, std::greater<>> deadlines;
  asio::steady_timer timer{context};
  clock::time_point timer_at = clock::time_point::max();
  bool closed = false;
  /// Set by subscribe(): bytes beyond the replies are MSG frames for on_message.
  bool subscribed = false;
  client::message_handler on_message;
  client::end_handler on_end;
  std::atomic<std::size_t> in_flight{0};
  std::atomic<bool> shut_down{false};  ///< set by shutdown(): calls fail at once from then on

  ~impl() { shutdown(); }

  void shutdown() {
    if (shut_down.exchange(true) || !thread.joinable()) return;
    asio::post(context, [this] { fail_all(make_error(errc::not_connected, "client closed")); });
    keep_running.reset();
    if (context.get_executor().running_in_this_thread()) {
      thread.detach();  // closing from our own completion handler: the thread ends by itself
    } else {
      thread.join();
    }
  }

  static void complete(pending_call& call, std::error_code ec, std::string body) {
    if (!call.done) return;
    auto handler = std::move(call.done);
    auto ex = asio::get_associated_executor(handler, call.work);
    asio::dispatch(ex, [h = std::move(handler), ec, b = std::move(body)]() mutable {
      std::move(h)(ec, std::move(b));
    });
    call.work = {};
  }

  void enqueue(std::string frame, bool line_reply, std::chrono::milliseconds deadline,
               asio::any_completion_handler<raw_call_signature> done) {
    pending_call call{std::move(done), {}, line_reply};
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
    pending.push_back(std::move(call));
    in_flight.store(pending.size(), std::memory_order_relaxed);
    if (deadline.count() > 0) {
      const auto at = clock::now() + deadline;
      deadlines.emplace(at, front_seq + pending.size() - 1);
      if (at < timer_at) arm_timer(at);
    }
    queued += frame;
    if (!write_in_progress) start_write();
  }

  /// Resolves and connects within the connect timeout, before the I/O thread starts. The
  /// resolver and timer live in this frame, so they are gone before the context can be.
  std::optional<error> connect_tcp(const host_port& where) {
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

  /// TLS client handshake within the connect timeout, verifying `host` against the server's
  /// certificate. Runs before the I/O thread starts. Returns an error text, empty on success.
  std::string handshake(const std::string& host) {
    auto made = detail::make_client_tls(options.tls);
    if (!made) return made.error().message;
    tls_context = std::move(*made);
    tls.emplace(socket, *tls_context);
    // SNI, so a server with several names picks the right certificate.
    SSL_set_tlsext_host_name(tls->native_handle(), host.c_str());
    tls->set_verify_callback(asio::ssl::host_name_verification(host));
    boost::system::error_code outcome = asio::error::would_block;
    asio::steady_timer timeout(context, options.connect_timeout);
    tls->async_handshake(asio::ssl::stream_base::client, [&](boost::system::error_code ec) {
      outcome = ec;
      timeout.cancel();
    });
    timeout.async_wait([&](boost::system::error_code ec) {
      if (!ec) socket.close(ec);
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

  void start_write() {
    std::swap(queued, writing);
    write_in_progress = true;
    auto done = [this](boost::system::error_code ec, std::size_t) {
      write_in_progress = false;
      writing.clear();
      if (ec) {
        fail_all(make_error(errc::connection_lost,
                            fmt::format("connection to {} lost: {}", address, ec.message())));
        return;
      }
      if (!queued.empty() && !closed) start_write();
    };
    if (tls) {
      asio::async_write(*tls, asio::buffer(writing), std::move(done));
    } else {
      asio::async_write(socket, asio::buffer(writing), std::move(done));
    }
  }

  void start_read() {
    const std::size_t have = in_end - in_begin;
    if (in_begin > 0 && in_end == in.size()) {
      std::memmove(in.data(), in.data() + in_begin, have);
      in_begin = 0;
      in_end = have;
    }
    if (in_end == in.size()) {
      const std::size_t cap = 2 * options.limits.max_line + options.limits.max_body;
      in.resize(std::min(2 * in.size(), std::max(cap, in.size() + 1)));
    }
    const auto space = asio::buffer(in.data() + in_end, in.size() - in_end);
    auto done = [this](boost::system::error_code ec, std::size_t n) { on_read(ec, n); };
    if (tls) {
      tls->async_read_some(space, std::move(done));
    } else {
      socket.async_read_some(space, std::move(done));
    }
  }

  void on_read(boost::system::error_code ec, std::size_t n) {
    if (closed) return;
    if (ec) {
      fail_all(make_error(errc::connection_lost,
                          ec == asio::error::eof
                              ? fmt::format("{} closed the connection", address)
                              : fmt::format("connection to {} lost: {}", address, ec.message())));
      return;
    }
    in_end += n;
    while (in_end > in_begin) {
      if (pending.empty() && subscribed) {
        const pubsub::message_parse msg =
            pubsub::parse_message({in.data() + in_begin, in_end - in_begin}, options.limits);
        if (msg.state == wire::status::need_more) break;
        if (msg.state == wire::status::error) {
          fail_all(make_error(errc::protocol_error,
                              fmt::format("bad message from {}: {}", address, msg.detail)));
          return;
        }
        if (on_message) on_message(msg.msg.topic, msg.msg.body);
        if (closed) return;  // on_message closed the client
        in_begin += msg.size;
        continue;
      }
      if (pending.empty()) {
        fail_all(make_error(errc::protocol_error,
                            fmt::format("{} sent bytes nobody asked for", address)));
        return;
      }
      const std::string_view data(in.data() + in_begin, in_end - in_begin);
      const wire::reply_parse parsed = pending.front().line_reply
                                           ? wire::parse_line_reply(data, options.limits)
                                           : wire::parse_reply(data, options.limits);
      if (parsed.state == wire::status::need_more) break;
      if (parsed.state == wire::status::error) {
        fail_all(
            make_error(parsed.error, fmt::format("bad reply from {}: {}", address, parsed.detail)));
        return;
      }
      pending_call call = std::move(pending.front());
      pending.pop_front();
      ++front_seq;
      in_flight.store(pending.size(), std::memory_order_relaxed);
      if (parsed.rep.ok) {
        complete(call, {}, std::string(parsed.rep.body));
      } else {
        complete(call, make_error_code(errc_from_wire_name(parsed.rep.code)),
                 std::string(parsed.rep.body));
      }
      in_begin += parsed.size;
    }
    if (in_begin == in_end) in_begin = in_end = 0;
    start_read();
  }

  void arm_timer(clock::time_point at) {
    timer_at = at;
    timer.expires_at(at);
    timer.async_wait([this](boost::system::error_code ec) {
      if (ec) return;  // re-armed or closed
      timer_at = clock::time_point::max();
      const auto now = clock::now();
      while (!deadlines.empty() && deadlines.top().first <= now) {
        const std::uint64_t seq = deadlines.top().second;
        deadlines.pop();
        if (seq >= front_seq && seq - front_seq < pending.size()) {
          // The reply may still come; its slot stays so later replies keep their order.
          complete(pending[seq - front_seq], make_error_code(errc::timeout),
                   "deadline passed before the reply arrived");
        }
      }
      if (!deadlines.empty()) arm_timer(deadlines.top().first);
    });
  }

  void fail_all(const error& why) {
    if (closed) return;
    closed = true;
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    timer.cancel();
    while (!pending.empty()) {
      complete(pending.front(), why.code, why.message);
      pending.pop_front();
      ++front_seq;
    }
    in_flight.store(0, std::memory_order_relaxed);
    deadlines = {};
    if (subscribed && on_end) {
      auto notify = std::move(on_end);
      notify(why);
    }
  }
};

client::client(std::unique_ptr<impl> p) noexcept : impl_(std::move(p)) {}
client::client(client&&) noexcept = default;
client& client::operator=(client&&) noexcept = default;
client::~client() = default;

result<client> client::connect(std::string_view host_port, client_options options) {
  auto where = parse_host_port(host_port);
  if (!where) return where.error();
  auto p = std::make_unique<impl>();
  p->options = options;
  p->address = where->to_string();

  if (auto failed = p->connect_tcp(*where)) return *failed;
  boost::system::error_code ignored;
  p->socket.set_option(tcp::no_delay(true), ignored);
  if (options.tls.enabled) {
    if (auto failed = p->handshake(where->host); !failed.empty()) {
      return error{make_error_code(errc::not_connected),
                   fmt::format("cannot connect to {}: {}", p->address, failed)};
    }
  }
  impl* raw = p.get();
  raw->keep_running.emplace(raw->context.get_executor());
  asio::post(p->context, [raw] { raw->start_read(); });
  p->thread = std::thread([raw] { raw->context.run(); });
  client c(std::move(p));
  if (!options.auth_token.empty()) {
    if (options.auth_token.find_first_of("\r\n") != std::string::npos) {
      return make_error(errc::bad_request, "auth token must be a single line");
    }
    auto ok = c.wait_for_reply("AUTH " + options.auth_token + "\n", false, options.connect_timeout);
    if (!ok) {
      return error{ok.error().code,
                   fmt::format("{} refused the auth token: {}", c.address(), ok.error().message)};
    }
  }
  return c;
}

void client::start_call(std::string frame, bool line_reply, std::chrono::milliseconds deadline,
                        asio::any_completion_handler<raw_call_signature> done) {
  if (!impl_ || impl_->shut_down.load()) {
    // Never complete inside the initiating call: hop through the system executor first.
    asio::post(asio::system_executor(), [h = std::move(done)]() mutable {
      auto ex = asio::get_associated_executor(h, asio::system_executor());
      asio::dispatch(ex, [h = std::move(h)]() mutable {
        std::move(h)(std::error_code(make_error_code(errc::not_connected)), "client is closed");
      });
    });
    return;
  }
  impl* p = impl_.get();
  asio::post(p->context,
             [p, frame = std::move(frame), line_reply, deadline, done = std::move(done)]() mutable {
               p->enqueue(std::move(frame), line_reply, deadline, std::move(done));
             });
}

std::chrono::milliseconds client::effective_deadline(call_options opt) const noexcept {
  if (opt.deadline.count() > 0 || !impl_) return opt.deadline;
  return impl_->options.default_deadline;
}

const decode_limits& client::reply_decode_limits() const noexcept {
  static const decode_limits defaults;
  return impl_ ? impl_->options.decode : defaults;
}

std::string client::make_frame(std::string_view name, wire::encoding enc, std::string_view body,
                               std::chrono::milliseconds deadline) {
  std::string frame;
  frame.reserve(name.size() + body.size() + 48);
  std::optional<std::uint32_t> deadline_ms;
  if (deadline.count() > 0) {
    deadline_ms = static_cast<std::uint32_t>(
        std::min<std::chrono::milliseconds::rep>(deadline.count(), UINT32_MAX));
  }
  wire::append_request(frame, name, enc, body, std::nullopt, deadline_ms);
  return frame;
}

result<std::string> client::wait_for_reply(std::string frame, bool line_reply,
                                           std::chrono::milliseconds deadline) {
  std::promise<result<std::string>> promise;
  auto future = promise.get_future();
  start_call(std::move(frame), line_reply, deadline,
             [&promise](std::error_code ec, std::string body) {
               if (ec) {
                 promise.set_value(error{ec, std::move(body)});
               } else {
                 promise.set_value(std::move(body));
               }
             });
  return future.get();
}

result<std::string> client::call_raw(std::string_view name, std::string_view body,
                                     call_options opt) {
  const auto deadline = effective_deadline(opt);
  return wait_for_reply(make_frame(name, opt.enc, body, deadline), false, deadline);
}

result<std::string> client::call_line(std::string_view name, std::string_view line,
                                      call_options opt) {
  if (line.find('\n') != std::string_view::npos) {
    return make_error(errc::bad_request, "a line-form body cannot contain a newline");
  }
  std::string frame;
  wire::append_line_request(frame, name, line);
  return wait_for_reply(std::move(frame), true, effective_deadline(opt));
}

result<void> client::subscribe(std::string_view topic, message_handler on_message,
                               end_handler on_end) {
  if (!pubsub::valid_topic(topic)) {
    return make_error(errc::bad_request,
                      "a topic is 1-64 bytes of ASCII letters, digits and _ - . : /");
  }
  if (!impl_ || impl_->shut_down.load()) return make_error(errc::not_connected, "client is closed");
  std::string frame;
  wire::append_request(frame, "SUBSCRIBE", wire::encoding::bin, topic);
  const auto deadline = effective_deadline({});
  std::promise<result<void>> promise;
  auto future = promise.get_future();
  impl* p = impl_.get();
  asio::post(p->context,
             [p, &promise, frame = std::move(frame), deadline, on_message = std::move(on_message),
              on_end = std::move(on_end)]() mutable {
               if (p->subscribed) {
                 promise.set_value(make_error(errc::not_connected, "client is already subscribed"));
                 return;
               }
               // The acknowledgement is an ordinary reply; what follows it is MSG frames.
               p->enqueue(std::move(frame), false, deadline,
                          [p, &promise](std::error_code ec, std::string body) {
                            if (ec) {
                              p->subscribed = false;
                              p->on_message = {};
                              p->on_end = {};
                              promise.set_value(error{ec, std::move(body)});
                            } else {
                              promise.set_value(result<void>{});
                            }
                          });
               if (p->closed) return;  // enqueue has already failed the call
               p->subscribed = true;
               p->on_message = std::move(on_message);
               p->on_end = std::move(on_end);
             });
  return future.get();
}

result<std::size_t> client::publish(std::string_view topic, std::string_view body,
                                    call_options opt) {
  if (!pubsub::valid_topic(topic)) {
    return make_error(errc::bad_request,
                      "a topic is 1-64 bytes of ASCII letters, digits and _ - . : /");
  }
  std::string request;
  request.reserve(topic.size() + 1 + body.size());
  request.append(topic).append(1, ' ').append(body);
  opt.enc = wire::encoding::bin;
  auto reply = call_raw("PUBLISH", request, opt);
  if (!reply) return reply.error();
  std::size_t receivers = 0;
  const char* end = reply->data() + reply->size();
  if (std::from_chars(reply->data(), end, receivers).ptr != end) {
    return make_error(errc::protocol_error, "PUBLISH reply is not a count");
  }
  return receivers;
}

std::size_t client::in_flight() const {
  return impl_ ? impl_->in_flight.load(std::memory_order_relaxed) : 0;
}

void client::close() {
  if (impl_) impl_->shutdown();
}

const std::string& client::address() const noexcept {
  static const std::string none;
  return impl_ ? impl_->address : none;
}

}  // namespace cmdwire
