// GET /metrics over HTTP/1.1 on an endpoint's listener: Boost.Beast parses each request from
// the bytes the connection's stream hands over and formats the response; the body is
// to_prometheus(endpoint.report()).
#include <fmt/format.h>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <sstream>

#include "cmdwire/services.hpp"

namespace cmdwire {

namespace http = boost::beast::http;

namespace {

/// Requests carry no body that matters; a bigger one is refused rather than buffered.
constexpr std::uint64_t max_request_body = 1024;
constexpr std::uint32_t max_request_header = 8192;

http::response<http::string_body> respond(const endpoint& ep,
                                          const http::request<http::empty_body>& req) {
  http::response<http::string_body> res;
  res.version(req.version());
  res.keep_alive(req.keep_alive());
  res.set(http::field::server, "cmdwire");
  const bool known_path = req.target() == "/metrics";
  if (!known_path) {
    res.result(http::status::not_found);
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = "not found: the metrics are at /metrics\n";
  } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
    res.result(http::status::method_not_allowed);
    res.set(http::field::allow, "GET, HEAD");
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = "use GET\n";
  } else {
    res.result(http::status::ok);
    // The Prometheus text exposition format, version 0.0.4.
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = to_prometheus(ep.report());
  }
  res.prepare_payload();
  // HEAD: the headers of the GET, Content-Length included, and no body.
  if (req.method() == http::verb::head) res.body().clear();
  return res;
}

std::string serialize(http::response<http::string_body>& res) {
  std::ostringstream out;
  out << res;
  return std::move(out).str();
}

asio::awaitable<void> serve_metrics_connection(const endpoint& ep, stream& s) {
  // Bytes received and not yet parsed. Beast's parser takes a header only whole, and a read
  // may end anywhere (a header in two segments, or a pipelined next request), so what it
  // leaves is kept for the next read and the next request.
  std::string pending;
  for (;;) {
    http::request_parser<http::empty_body> parser;
    parser.header_limit(max_request_header);
    parser.body_limit(max_request_body);
    boost::beast::error_code ec;
    while (!parser.is_done()) {
      std::size_t used = 0;
      if (!pending.empty()) {
        used = parser.put(asio::buffer(pending), ec);
        pending.erase(0, used);
        if (ec == http::error::need_more) {
          ec = {};
        } else if (ec) {
          break;
        }
      }
      if (parser.is_done()) break;
      if (used > 0) continue;  // it may take more of what is pending
      auto bytes = co_await s.async_read_some();
      if (!bytes) co_return;  // the client left (or a timeout closed it)
      pending.append(*bytes);
    }
    if (ec) {
      http::response<http::string_body> bad{http::status::bad_request, 11};
      bad.set(http::field::content_type, "text/plain; charset=utf-8");
      bad.body() = fmt::format("bad request: {}\n", ec.message());
      bad.keep_alive(false);
      bad.prepare_payload();
      const std::string bytes = serialize(bad);
      (void)co_await s.async_write(bytes);
      co_return;
    }
    auto res = respond(ep, parser.get());
    const bool again = res.keep_alive();
    const std::string bytes = serialize(res);
    const auto written = co_await s.async_write(bytes);
    if (!written || !again) co_return;
  }
}

}  // namespace

connection_handler metrics_http(const endpoint& ep) {
  return [&ep](stream& s) { return serve_metrics_connection(ep, s); };
}

}  // namespace cmdwire
