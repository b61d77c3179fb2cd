// The built-in commands over raw sockets: HEALTH (SERVING, DRAINING on stop and on SIGTERM
// while in-flight calls finish) and STATS (exact counts, bytes, errors, latency).
#include <fmt/format.h>
#include <unistd.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cmdwire/endpoint.hpp"
#include "cmdwire/services.hpp"
#include "support/process.hpp"
#include "support/test_server.hpp"

#include "cmdwire/detail/rapidjson.hpp"
namespace rj = cmdwire::detail::rj;

using cmdwire::test::raw_socket;
using cmdwire::test::test_server;

namespace {

std::string read_reply(raw_socket& s) { return cmdwire::test::read_framed_reply(s); }

/// The body of an `OK` reply.
std::string body_of(const std::string& reply) {
  REQUIRE(reply.starts_with("OK "));
  return reply.substr(reply.find('\n') + 1);
}

/// Sends STATS on `s` and parses the JSON it answers; `sent` grows by the request's bytes and
/// `reply_bytes` is set to the reply's.
rj::Document stats(raw_socket& s, std::size_t& sent, std::size_t& reply_bytes) {
  s.send("STATS\n");
  sent += 6;
  const std::string reply = read_reply(s);
  reply_bytes = reply.size() + 1;
  rj::Document doc;
  doc.Parse(body_of(reply).c_str());
  REQUIRE_FALSE(doc.HasParseError());
  REQUIRE(doc.IsObject());
  return doc;
}

/// Asks HEALTH on `probe` until it says DRAINING; SERVING is the only other answer allowed.
void await_draining(raw_socket& probe) {
  for (int polls = 0;; ++polls) {
    REQUIRE(polls < 100000);
    probe.send("HEALTH\n");
    const std::string health = read_reply(probe);
    if (health == "OK 8\nDRAINING") return;
    REQUIRE(health == "OK 7\nSERVING");
  }
}

std::uint64_t u64(const rj::Value& v, const char* key) {
  REQUIRE(v.HasMember(key));
  REQUIRE(v[key].IsUint64());
  return v[key].GetUint64();
}

double number(const rj::Value& v, const char* key) {
  REQUIRE(v.HasMember(key));
  REQUIRE(v[key].IsNumber());
  return v[key].GetDouble();
}

}  // namespace

TEST_CASE("HEALTH answers SERVING, as one framed reply to one line") {
  test_server server;
  raw_socket s(server.port());
  s.send("HEALTH\n");
  CHECK(read_reply(s) == "OK 7\nSERVING");
  s.send("HEALTH id=9\n");
  CHECK(read_reply(s) == "OK 7 id=9\nSERVING");
}

TEST_CASE("STATS counts calls, errors, unknown commands and bytes exactly, over all workers") {
  test_server server;  // two workers: the two connections land on different ones
  raw_socket a(server.port());
  raw_socket b(server.port());
  std::size_t sent = 0, received = 0;
  const auto exchange = [&](raw_socket& s, const std::string& request) {
    s.send(request);
    sent += request.size();
    const std::string reply = read_reply(s);
    received += reply.size() + 1;
    return reply;
  };
  for (int i = 0; i < 30; ++i) REQUIRE(exchange(a, "PING\n") == "OK 4\nPONG");
  for (int i = 0; i < 20; ++i) REQUIRE(exchange(b, "PING\n") == "OK 4\nPONG");
  for (int i = 0; i < 3; ++i) REQUIRE(exchange(b, "STRUCT 3\nxyz").starts_with("ERR bad-body "));
  REQUIRE(exchange(b, "STRUCT 0\n").starts_with("ERR bad-body "));
  REQUIRE(exchange(a, "NOPE\n").starts_with("ERR unknown-command "));
  REQUIRE(exchange(b, "NOPE 2\nxy").starts_with("ERR unknown-command "));
  REQUIRE(exchange(a, "THROW 1\nx").starts_with("ERR internal "));

  // Once b's session has ended, everything it read and wrote has been counted.
  b.shutdown_send();
  CHECK(b.read_to_eof().empty());
  rj::Document doc;
  std::size_t stats_calls = 0, reply_bytes = 0;
  for (;;) {
    doc = stats(a, sent, reply_bytes);
    if (u64(doc, "connections") == 1) break;
    received += reply_bytes;  // counted by the time the next STATS runs
    REQUIRE(++stats_calls < 10000);
  }
  CHECK(u64(doc, "accepted") == 2);
  CHECK(u64(doc, "unknown_commands") == 2);
  CHECK(u64(doc, "protocol_errors") == 0);
  CHECK(u64(doc, "bytes_in") == sent);
  CHECK(u64(doc, "bytes_out") == received);
  CHECK(doc["version"].IsString());
  CHECK_FALSE(doc["draining"].GetBool());
  const rj::Value& commands = doc["commands"];
  REQUIRE(commands.IsObject());
  CHECK(u64(commands["PING"], "calls") == 50);
  CHECK(commands["PING"]["errors"].ObjectEmpty());
  CHECK(u64(commands["STRUCT"], "calls") == 4);
  CHECK(u64(commands["STRUCT"]["errors"], "bad-body") == 4);
  CHECK(u64(commands["THROW"]["errors"], "internal") == 1);
  // This STATS is counted once it has answered: the ones before it are in.
  CHECK(u64(commands["STATS"], "calls") == stats_calls);
  CHECK(u64(commands["ECHO"], "calls") == 0);
  const rj::Value& ping = commands["PING"]["latency_us"];
  CHECK(number(ping, "p50") > 0);
  CHECK(number(ping, "p50") <= number(ping, "p90"));
  CHECK(number(ping, "p90") <= number(ping, "p99"));
}

TEST_CASE("STATS latency covers the time a handler awaits") {
  test_server server;
  raw_socket s(server.port());
  for (int i = 0; i < 3; ++i) {
    s.send("NAP 2\n40");
    REQUIRE(read_reply(s) == "OK 5\nslept");
  }
  s.send("PING\n");
  REQUIRE(read_reply(s) == "OK 4\nPONG");
  std::size_t sent = 0, reply_bytes = 0;
  const rj::Document doc = stats(s, sent, reply_bytes);
  const rj::Value& nap = doc["commands"]["NAP"]["latency_us"];
  // A bucket's upper edge is reported, so p50 is at least the 40 ms the timer took.
  CHECK(number(nap, "p50") >= 40000);
  CHECK(number(nap, "max") >= 40000);
  CHECK(number(nap, "p50") < 10e6);
  CHECK(number(doc["commands"]["PING"]["latency_us"], "max") < number(nap, "p50"));
}

TEST_CASE("a built-in name is refused until the built-in is switched off") {
  {
    cmdwire::endpoint ep;
    CHECK_THROWS_WITH(ep.handle_raw("HEALTH", [](const auto&, auto&) {}),
                      Catch::Contains("built-in") && Catch::Contains("builtins"));
  }
  cmdwire::endpoint_options options;
  options.builtins.health = false;
  options.builtins.stats = false;
  cmdwire::endpoint ep(options);
  ep.handle_raw("HEALTH", [](const auto&, cmdwire::reply_writer& w) { w.body() = "mine"; });
  const auto names = ep.command_names();
  CHECK(std::count(names.begin(), names.end(), "STATS") == 0);
  auto port = ep.listen("127.0.0.1", 0);
  REQUIRE(port.has_value());
  ep.start();
  raw_socket s(*port);
  s.send("HEALTH\nSTATS\n");
  CHECK(read_reply(s) == "OK 4\nmine");
  CHECK(read_reply(s).starts_with("ERR unknown-command "));
}

TEST_CASE("HEALTH says DRAINING once stop() begins, and in-flight calls finish") {
  cmdwire::endpoint_options options;
  options.drain_grace = std::chrono::milliseconds(1500);
  test_server server(options);
  raw_socket busy(server.port());
  raw_socket probe(server.port());
  probe.send("HEALTH\n");
  REQUIRE(read_reply(probe) == "OK 7\nSERVING");
  busy.send("NAP 4\n2500");  // outlasts the grace: it finishes during the drain
  while (server.naps_running() == 0) std::this_thread::yield();  // waits for a condition

  std::thread stopper([&] { server.ep().stop(); });
  await_draining(probe);
  // During the grace a new connection is still served.
  raw_socket late(server.port());
  late.send("HEALTH\n");
  CHECK(read_reply(late) == "OK 8\nDRAINING");
  CHECK(read_reply(busy) == "OK 5\nslept");
  stopper.join();
  CHECK(server.naps_cancelled() == 0);
}

TEST_CASE("cmdwire-server: SIGTERM turns HEALTH to DRAINING while a SLEEP in flight finishes") {
  cmdwire::test::child_process server({cmdwire::test::bin_path("cmdwire-server"), "--listen",
                                       "127.0.0.1:0", "--drain-grace", "1", "--log-level", "warn"});
  const auto line = server.read_line();
  const std::string prefix = "cmdwire-server listening on 127.0.0.1:";
  REQUIRE(line);
  REQUIRE(line->starts_with(prefix));
  const auto port = static_cast<std::uint16_t>(std::stoi(line->substr(prefix.size())));

  // Out of order: PING's reply overtaking SLEEP's proves SLEEP is running.
  raw_socket busy(port);
  busy.send("HELLO 3\noooSLEEP 3 id=1\n800PING id=2\n");
  REQUIRE(read_reply(busy).starts_with("OK "));
  REQUIRE(read_reply(busy) == "OK 4 id=2\nPONG");

  server.signal(SIGTERM);
  raw_socket probe(port);
  await_draining(probe);
  CHECK(read_reply(busy) == "OK 12 id=1\nslept 800 ms");
  CHECK(server.wait().exit_code == 0);
}

TEST_CASE("cmdwire health and cmdwire stats") {
  using cmdwire::test::bin_path;
  cmdwire::endpoint_options options;
  options.drain_grace = std::chrono::milliseconds(1000);
  test_server server(options);
  const auto health =
      cmdwire::test::run({bin_path("cmdwire"), "health", "--connect", server.address()});
  CHECK(health.exit_code == 0);
  CHECK(health.out == "SERVING\n");

  const auto stats =
      cmdwire::test::run({bin_path("cmdwire"), "stats", "--connect", server.address()});
  CHECK(stats.exit_code == 0);
  rj::Document doc;
  doc.Parse(stats.out.c_str());
  REQUIRE_FALSE(doc.HasParseError());
  // The health check above was counted; this STATS is not yet.
  CHECK(u64(doc["commands"]["HEALTH"], "calls") == 1);
  CHECK(u64(doc, "accepted") == 2);

  std::thread stopper([&] { server.ep().stop(); });
  while (!server.ep().draining()) std::this_thread::yield();  // waits for a condition
  const auto draining =
      cmdwire::test::run({bin_path("cmdwire"), "health", "--connect", server.address()});
  CHECK(draining.exit_code == 1);
  CHECK(draining.out == "DRAINING\n");
  CHECK_THAT(draining.err, Catch::Contains("draining, not SERVING"));
  stopper.join();
}

TEST_CASE("cmdwire-server --metrics-listen: promtool accepts /metrics, and it counts exactly") {
  using cmdwire::test::bin_path;
  cmdwire::test::child_process server({bin_path("cmdwire-server"), "--listen", "127.0.0.1:0",
                                       "--metrics-listen", "127.0.0.1:0", "--log-level", "warn"});
  std::uint16_t port = 0, metrics_port = 0;
  for (int i = 0; i < 2; ++i) {
    const auto line = server.read_line();
    REQUIRE(line);
    const auto colon = line->rfind(':');
    const auto value = static_cast<std::uint16_t>(std::stoi(line->substr(colon + 1)));
    (line->starts_with("metrics ") ? metrics_port : port) = value;
  }
  REQUIRE(port != 0);
  REQUIRE(metrics_port != 0);
  raw_socket s(port);
  for (int i = 0; i < 7; ++i) {
    s.send("PING\n");
    REQUIRE(read_reply(s) == "OK 4\nPONG");
  }
  s.send("STRUCT 1\nx");
  REQUIRE(read_reply(s).starts_with("ERR bad-body "));

  raw_socket http(metrics_port);
  http.send("GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  const std::string response = http.read_to_eof();
  REQUIRE(response.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK_THAT(response, Catch::Contains("Content-Type: text/plain; version=0.0.4"));
  const std::string body = response.substr(response.find("\r\n\r\n") + 4);
  CHECK_THAT(body, Catch::Contains("\ncmdwire_calls_total{command=\"PING\"} 7\n"));
  CHECK_THAT(body,
             Catch::Contains("\ncmdwire_errors_total{command=\"STRUCT\",code=\"bad-body\"} 1\n"));
  CHECK_THAT(body, Catch::Contains(
                       "\ncmdwire_call_duration_seconds_bucket{command=\"PING\",le=\"+Inf\"} 7\n"));
  CHECK_THAT(body, Catch::Contains("\ncmdwire_call_duration_seconds_count{command=\"PING\"} 7\n"));

  const std::string file = fmt::format("/tmp/cmdwire-metrics-{}.txt", ::getpid());
  {
    std::ofstream out(file, std::ios::binary);
    out << body;
  }
  const auto check = cmdwire::test::run({"/bin/sh", "-c", "promtool check metrics < " + file},
                                        cmdwire::test::stderr_mode::merged);
  std::remove(file.c_str());
  INFO(check.out);
  CHECK(check.exit_code == 0);

  raw_socket other(metrics_port);
  other.send("GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(other.read_to_eof().starts_with("HTTP/1.1 404 Not Found\r\n"));
  raw_socket garbage(metrics_port);
  garbage.send("NOT HTTP\r\n\r\n");
  CHECK(garbage.read_to_eof().starts_with("HTTP/1.1 400 Bad Request\r\n"));

  server.signal(SIGTERM);
  CHECK(server.wait().exit_code == 0);
}

TEST_CASE("cmdwire-server --log-format json --log-level debug: request errors, one object a line") {
  using cmdwire::test::bin_path;
  cmdwire::test::child_process server({bin_path("cmdwire-server"), "--listen", "127.0.0.1:0",
                                       "--log-format", "json", "--log-level", "debug"});
  const auto line = server.read_line();
  REQUIRE(line);
  const auto port = static_cast<std::uint16_t>(std::stoi(line->substr(line->rfind(':') + 1)));
  {
    raw_socket s(port);
    s.send("STRUCT 3\nxyzNOPE\n");
    REQUIRE(read_reply(s).starts_with("ERR bad-body "));
    REQUIRE(read_reply(s).starts_with("ERR unknown-command "));
    s.send("PING 1x\n");  // malformed: answered, then closed
    CHECK(s.read_to_eof().starts_with("ERR bad-request "));
  }
  server.signal(SIGTERM);
  const auto result = server.wait();
  CHECK(result.exit_code == 0);
  std::size_t lines = 0;
  bool bad_body = false, unknown = false, closing = false;
  std::istringstream in(result.err);
  for (std::string text; std::getline(in, text); ++lines) {
    rj::Document doc;
    doc.Parse(text.c_str());
    INFO(text);
    REQUIRE_FALSE(doc.HasParseError());
    REQUIRE(doc.IsObject());
    REQUIRE(doc["time"].IsString());
    REQUIRE(doc["level"].IsString());
    const std::string msg = doc["msg"].GetString();
    const std::string level = doc["level"].GetString();
    bad_body |= level == "debug" && msg.find("127.0.0.1:") == 0 &&
                msg.find("STRUCT: ERR bad-body: ") != std::string::npos;
    unknown |= level == "debug" &&
               msg.find("ERR unknown-command: unknown command 'NOPE'") != std::string::npos;
    closing |= level == "info" && msg.find("closing after bad-request") != std::string::npos;
  }
  CHECK(lines >= 5);
  CHECK(bad_body);
  CHECK(unknown);
  CHECK(closing);
}

TEST_CASE("STATS latency of requests that arrive with the AUTH line starts after AUTH") {
  cmdwire::endpoint_options options;
  options.auth_token = "s3cret";
  test_server server(options);
  raw_socket s(server.port());
  s.send("AUTH s3cret\nPING\n");
  REQUIRE(read_reply(s) == "OK 0\n");
  REQUIRE(read_reply(s) == "OK 4\nPONG");
  std::size_t sent = 0, reply_bytes = 0;
  const rj::Document doc = stats(s, sent, reply_bytes);
  const rj::Value& ping = doc["commands"]["PING"]["latency_us"];
  CHECK(number(ping, "max") > 0);
  CHECK(number(ping, "max") < 10e6);  // not the time since some clock's epoch
}

namespace {

namespace asio = boost::asio;

/// A stream that hands its input over in the chunks given and keeps what is written to it.
class scripted_stream final : public cmdwire::stream {
 public:
  explicit scripted_stream(std::vector<std::string> chunks) : chunks_(std::move(chunks)) {}

  asio::awaitable<cmdwire::result<std::string_view>> async_read_line() override {
    co_return cmdwire::make_error(cmdwire::errc::protocol_error, "not used");
  }
  asio::awaitable<cmdwire::result<std::string_view>> async_read_exact(std::size_t) override {
    co_return cmdwire::make_error(cmdwire::errc::protocol_error, "not used");
  }
  asio::awaitable<cmdwire::result<std::string_view>> async_read_some() override {
    if (next_ == chunks_.size()) {
      co_return cmdwire::make_error(cmdwire::errc::connection_lost, "end of input");
    }
    co_return std::string_view(chunks_[next_++]);
  }
  asio::awaitable<cmdwire::result<void>> async_write(std::string_view bytes) override {
    written += bytes;
    co_return cmdwire::result<void>{};
  }
  [[nodiscard]] const asio::ip::tcp::endpoint& peer() const noexcept override { return peer_; }
  void close() noexcept override {}
  void set_idle_timeout(std::chrono::milliseconds) noexcept override {}

  std::string written;

 private:
  std::vector<std::string> chunks_;
  std::size_t next_ = 0;
  asio::ip::tcp::endpoint peer_;
};

std::string serve_metrics(const cmdwire::endpoint& ep, std::vector<std::string> chunks) {
  scripted_stream s(std::move(chunks));
  asio::io_context io;
  asio::co_spawn(io, cmdwire::metrics_http(ep)(s), asio::detached);
  io.run();
  return s.written;
}

}  // namespace

TEST_CASE("/metrics: requests split anywhere and pipelined are each answered") {
  cmdwire::endpoint ep;
  const std::string requests =
      "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  std::vector<std::string> bytes;  // one byte per read
  for (const char ch : requests) bytes.emplace_back(1, ch);
  for (const auto& chunks : {bytes, std::vector<std::string>{requests}}) {
    const std::string out = serve_metrics(ep, chunks);
    INFO(out.substr(0, 200));
    CHECK(out.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK_THAT(out, Catch::Contains("\r\n\r\n# HELP cmdwire_build_info"));
    CHECK_THAT(out, Catch::Contains("HTTP/1.1 404 Not Found\r\n"));
  }
}

TEST_CASE("/metrics: a header over 8 KiB or a body over 1 KiB gets 400") {
  cmdwire::endpoint ep;
  const std::string big_header =
      "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(9000, 'a') + "\r\n\r\n";
  CHECK(serve_metrics(ep, {big_header}).starts_with("HTTP/1.1 400 Bad Request\r\n"));
  const std::string at_limit =
      "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(7000, 'a') + "\r\n\r\n";
  CHECK(serve_metrics(ep, {at_limit}).starts_with("HTTP/1.1 200 OK\r\n"));
  const std::string big_body =
      "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + std::string(2000, 'b');
  CHECK(serve_metrics(ep, {big_body}).starts_with("HTTP/1.1 400 Bad Request\r\n"));
}
