// The client's public API: connecting, framing calls, blocking and asynchronous waits, and
// pub/sub. The I/O itself runs on the client's thread (client_io.cpp).
#include "cmdwire/client.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/system_executor.hpp>
#include <charconv>
#include <future>

#include "client_impl.hpp"
#include "cmdwire/address.hpp"
#include "cmdwire/pubsub.hpp"

namespace cmdwire {

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

  if (auto failed = p->open(*where)) return *failed;
  client c(std::move(p));
  if (!options.auth_token.empty()) {
    if (options.auth_token.find_first_of("\r\n") != std::string::npos) {
      return make_error(errc::bad_request, "auth token must be a single line");
    }
    outgoing auth;
    auth.kind = outgoing::form::raw;
    auth.body = "AUTH " + options.auth_token + "\n";
    auth.deadline = options.connect_timeout;
    auto ok = c.wait_for_reply(std::move(auth));
    if (!ok) {
      return error{ok.error().code,
                   fmt::format("{} refused the auth token: {}", c.address(), ok.error().message)};
    }
  }
  if (options.out_of_order) {
    // A raw frame: HELLO is about the connection, so it carries no deadline-ms; the client
    // still gives up on it after the connect timeout.
    outgoing hello;
    hello.kind = outgoing::form::raw;
    hello.body = "HELLO 3\nooo";
    hello.deadline = options.connect_timeout;
    // Granted or not, the connection works: an older server answers unknown-command and the
    // client pairs replies by order, as before. Only a lost connection is a failure here.
    auto granted = c.wait_for_reply(std::move(hello));
    // Stored before connect() returns, so every call made on the client sees it.
    if (granted && wire::has_feature(*granted, "ooo")) {
      c.impl_->out_of_order.store(true, std::memory_order_relaxed);
    }
    if (!granted &&
        (granted.error().code == errc::connection_lost ||
         granted.error().code == errc::not_connected || granted.error().code == errc::timeout)) {
      return error{granted.error().code,
                   fmt::format("cannot connect to {}: {}", c.address(), granted.error().message)};
    }
  }
  return c;
}

void client::start_call(outgoing request, asio::any_completion_handler<raw_call_signature> done) {
  const bool closed = !impl_ || impl_->shut_down.load();
  if (closed || request.deadline.count() < 0) {
    // Never complete inside the initiating call: hop through the system executor first.
    const auto code = closed ? errc::not_connected : errc::timeout;
    std::string why = closed ? "client is closed" : "the calling handler's deadline has passed";
    asio::post(asio::system_executor(),
               [h = std::move(done), code, why = std::move(why)]() mutable {
                 auto ex = asio::get_associated_executor(h, asio::system_executor());
                 asio::dispatch(ex, [h = std::move(h), code, why = std::move(why)]() mutable {
                   std::move(h)(std::error_code(make_error_code(code)), std::move(why));
                 });
               });
    return;
  }
  impl* p = impl_.get();
  asio::post(p->context, [p, r = std::move(request), done = std::move(done)]() mutable {
    p->enqueue(std::move(r), std::move(done));
  });
}

std::chrono::milliseconds client::effective_deadline(call_options opt) const noexcept {
  std::chrono::milliseconds deadline = opt.deadline;
  if (deadline.count() <= 0 && impl_) deadline = impl_->options.default_deadline;
  if (opt.within != nullptr && opt.within->deadline()) {
    const auto left = opt.within->remaining();
    if (left.count() <= 0) return std::chrono::milliseconds(-1);
    if (deadline.count() <= 0 || left < deadline) deadline = left;
  }
  return deadline;
}

const decode_limits& client::reply_decode_limits() const noexcept {
  static const decode_limits defaults;
  return impl_ ? impl_->options.decode : defaults;
}

client::outgoing client::make_request(std::string_view name, wire::encoding enc, std::string body,
                                      std::chrono::milliseconds deadline) {
  outgoing r;
  r.name = name;
  r.body = std::move(body);
  r.enc = enc;
  r.deadline = deadline;
  return r;
}

result<std::string> client::wait_for_reply(outgoing request) {
  std::promise<result<std::string>> promise;
  auto future = promise.get_future();
  start_call(std::move(request), [&promise](std::error_code ec, std::string body) {
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
  return wait_for_reply(make_request(name, opt.enc, std::string(body), effective_deadline(opt)));
}

result<std::string> client::call_line(std::string_view name, std::string_view line,
                                      call_options opt) {
  if (line.find('\n') != std::string_view::npos) {
    return make_error(errc::bad_request, "a line-form body cannot contain a newline");
  }
  outgoing r = make_request(name, wire::encoding::bin, std::string(line), effective_deadline(opt));
  r.kind = outgoing::form::line;
  return wait_for_reply(std::move(r));
}

result<void> client::subscribe(std::string_view topic, message_handler on_message,
                               end_handler on_end) {
  if (!pubsub::valid_topic(topic)) {
    return make_error(errc::bad_request,
                      "a topic is 1-64 bytes of ASCII letters, digits and _ - . : /");
  }
  if (!impl_ || impl_->shut_down.load()) return make_error(errc::not_connected, "client is closed");
  outgoing frame =
      make_request("SUBSCRIBE", wire::encoding::bin, std::string(topic), effective_deadline({}));
  std::promise<result<void>> promise;
  auto future = promise.get_future();
  impl* p = impl_.get();
  asio::post(p->context, [p, &promise, frame = std::move(frame), on_message = std::move(on_message),
                          on_end = std::move(on_end)]() mutable {
    if (p->subscribed) {
      promise.set_value(make_error(errc::not_connected, "client is already subscribed"));
      return;
    }
    // The acknowledgement is an ordinary reply; what follows it is MSG frames.
    p->enqueue(std::move(frame), [p, &promise](std::error_code ec, std::string body) {
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

bool client::out_of_order() const noexcept {
  return impl_ && impl_->out_of_order.load(std::memory_order_relaxed);
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
