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
