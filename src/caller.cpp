// The call API shared by client and channel: requests are built here and handed to the core,
// which runs them on its strand.
#include "cmdwire/caller.hpp"

#include <fmt/format.h>

#include <charconv>
#include <future>

#include "call_core.hpp"
#include "cmdwire/pubsub.hpp"

namespace cmdwire {

caller::caller() noexcept = default;
caller::caller(std::shared_ptr<detail::call_core> core) noexcept : core_(std::move(core)) {}
caller::caller(caller&&) noexcept = default;
caller& caller::operator=(caller&&) noexcept = default;
caller::~caller() = default;

void caller::start_call(detail::outgoing request,
                        asio::any_completion_handler<raw_call_signature> done) {
  if (!core_ || core_->closed()) {
    detail::complete_later(std::move(done), make_error_code(errc::not_connected), "closed");
  } else if (request.deadline.count() < 0) {
    detail::complete_later(std::move(done), make_error_code(errc::timeout),
                           "the calling handler's deadline has passed");
  } else {
    core_->submit(std::move(request), std::move(done));
  }
}

detail::outgoing caller::make_request(std::string_view name, call_options opt,
                                      std::string body) const {
  detail::outgoing r;
  r.name = name;
  r.body = std::move(body);
  r.enc = opt.enc;
  r.idempotent = opt.idempotent;
  r.wait_for_ready = opt.wait_for_ready;
  // The deadline: the call's own, else the default, capped by what `within` has left.
  std::chrono::milliseconds deadline = opt.deadline;
  if (deadline.count() <= 0 && core_) deadline = core_->options().default_deadline;
  if (opt.within != nullptr && opt.within->deadline()) {
    const auto left = opt.within->remaining();
    if (left.count() <= 0) {
      deadline = std::chrono::milliseconds(-1);
    } else if (deadline.count() <= 0 || left < deadline) {
      deadline = left;
    }
  }
  r.deadline = deadline;
  return r;
}

const decode_limits& caller::reply_decode_limits() const noexcept {
  static const decode_limits defaults;
  return core_ ? core_->options().decode : defaults;
}

result<std::string> caller::wait_for_reply(detail::outgoing request) {
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

result<std::string> caller::call_raw(std::string_view name, std::string_view body,
                                     call_options opt) {
  return wait_for_reply(make_request(name, opt, std::string(body)));
}

result<std::string> caller::call_line(std::string_view name, std::string_view line,
                                      call_options opt) {
  if (line.find('\n') != std::string_view::npos) {
    return make_error(errc::bad_request, "a line-form body cannot contain a newline");
  }
  detail::outgoing r = make_request(name, opt, std::string(line));
  r.kind = detail::outgoing::form::line;
  return wait_for_reply(std::move(r));
}

result<std::size_t> caller::publish(std::string_view topic, std::string_view body,
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

std::size_t caller::in_flight() const noexcept { return core_ ? core_->in_flight() : 0; }

}  // namespace cmdwire
