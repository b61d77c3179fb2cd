// cmdwire-server: serves the demo commands over TCP until SIGINT/SIGTERM.
// Usage: cmdwire-server [--listen HOST:PORT] [--threads N] [--log-level LEVEL]
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "cmdwire/detail/rapidjson.hpp"
namespace rj = cmdwire::detail::rj;
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "cmdwire/address.hpp"
#include "cmdwire/endpoint.hpp"
#include "cmdwire/services.hpp"
#include "cmdwire/version.hpp"
#include "demo/demo_service.hpp"

namespace {

constexpr std::uint16_t default_port = 61000;

std::string_view level_name(cmdwire::log_level level) {
  switch (level) {
    case cmdwire::log_level::debug:
      return "debug";
    case cmdwire::log_level::info:
      return "info";
    case cmdwire::log_level::warn:
      return "warn";
    case cmdwire::log_level::error:
      return "error";
    case cmdwire::log_level::off:
      break;
  }
  return "off";
}

/// One JSON string, quoted and escaped by rapidjson's writer.
std::string json_string(std::string_view text) {
  rj::StringBuffer out;
  rj::Writer<rj::StringBuffer> w(out);
  w.String(text.data(), static_cast<rj::SizeType>(text.size()));
  return {out.GetString(), out.GetSize()};
}

/// Lines on stderr: `2026-12-02T06:00:00 info  text`, or with `json` one object per line,
/// `{"time":"2026-12-02T06:00:00Z","level":"info","msg":"text"}` (UTC).
cmdwire::logger make_logger(cmdwire::log_level threshold, bool json) {
  auto mutex = std::make_shared<std::mutex>();
  return [threshold, json, mutex](cmdwire::log_level level, std::string_view text) {
    if (level < threshold) return;
    const auto now =
        std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    const std::string line =
        json ? fmt::format("{{\"time\":\"{:%Y-%m-%dT%H:%M:%S}Z\",\"level\":\"{}\",\"msg\":{}}}\n",
                           now, level_name(level), json_string(text))
             : fmt::format("{:%Y-%m-%dT%H:%M:%S} {:5} {}\n", now, level_name(level), text);
    std::lock_guard lock(*mutex);  // whole lines, even from several workers
    std::fwrite(line.data(), 1, line.size(), stderr);
  };
}

/// --listen if given, else 127.0.0.1 with the PORT environment variable, else 61000.
std::string default_listen() {
  if (const char* port = std::getenv("PORT"); port != nullptr && *port != '\0') {
    return fmt::format("127.0.0.1:{}", port);
  }
  return fmt::format("127.0.0.1:{}", default_port);
}

}  // namespace

int main(int argc, char** argv) {
  // tests/protocol_examples_test.cpp checks that every name COMMANDS lists is here.
  CLI::App app{
      "cmdwire-server: serves cmdwire's demo commands (STRING, STRUCT, PROTO, ECHO, "
      "PING, DAYTIME, SLEEP, HASH, COMMANDS), pub/sub (PUBLISH, SUBSCRIBE) and the "
      "built-ins (HEALTH, STATS, DESCRIBE).\n"
      "Example: cmdwire-server --listen 127.0.0.1:61000 --threads 2"};
  app.set_version_flag("--version", "cmdwire-server " CMDWIRE_VERSION_STRING);
  std::string listen = default_listen();
  unsigned threads = 0;
  cmdwire::log_level level = cmdwire::log_level::info;
  const std::map<std::string, cmdwire::log_level> levels{{"debug", cmdwire::log_level::debug},
                                                         {"info", cmdwire::log_level::info},
                                                         {"warn", cmdwire::log_level::warn},
                                                         {"error", cmdwire::log_level::error},
                                                         {"off", cmdwire::log_level::off}};
  app.add_option("--listen", listen,
                 "HOST:PORT to listen on, or unix:PATH for a Unix-domain socket; port 0 picks a "
                 "free port (default 127.0.0.1:$PORT, else 127.0.0.1:61000). Listening beyond "
                 "loopback is an explicit choice.");
  std::optional<unsigned> unix_mode;
  app.add_option_function<std::string>(
         "--unix-mode",
         [&unix_mode](const std::string& octal) { unix_mode = std::stoul(octal, nullptr, 8); },
         "permissions of the --listen unix:PATH socket file, in octal (e.g. 0660; default: "
         "the umask decides). Connecting needs write permission.")
      ->check([](const std::string& s) -> std::string {
        if (s.empty() || s.size() > 4 || s.find_first_not_of("01234567") != std::string::npos) {
          return "expected an octal mode such as 0660";
        }
        return {};
      });
  app.add_option("--threads", threads, "I/O threads (default: one per core)");
  std::string log_format = "text";
  app.add_option("--log-format", log_format, "text, or json: one JSON object per line")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_option("--log-level", level, "debug, info, warn, error or off")
      ->transform(CLI::CheckedTransformer(levels, CLI::ignore_case));
  cmdwire::endpoint_options options;
  const auto ms_option = [&](const char* name, std::chrono::milliseconds& value, const char* what) {
    app.add_option_function<double>(
           name, [&value](double s) { value = std::chrono::milliseconds(std::llround(s * 1e3)); },
           fmt::format("{} in seconds (default {})", what, value.count() / 1e3))
        ->check(CLI::PositiveNumber);
  };
  app.add_option("--max-connections", options.max_connections,
                 "connections served at once; more get ERR busy")
      ->capture_default_str();
  // A command line must at least hold a name and a length; 64 bytes is the floor.
  app.add_option("--max-line", options.limits.max_line, "longest command line in bytes")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{64}, std::size_t{1} << 20));
  app.add_option("--max-body", options.limits.max_body, "largest request body in bytes")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 31));
  app.add_option("--max-pipelined", options.max_pipelined,
                 "requests answered per read before replies are written")
      ->capture_default_str();
  app.add_option("--max-concurrent", options.max_concurrent,
                 "async calls run at once per connection with out-of-order replies (HELLO ooo)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  app.add_option("--handler-threads", options.handler_threads,
                 "threads for offloaded (CPU-heavy) handlers such as HASH (default: one per core)");
  app.add_option("--handler-queue", options.handler_queue,
                 "offloaded calls queued at once; one more is answered ERR busy")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24));
  ms_option("--idle-timeout", options.idle_timeout, "close connections idle this long");
  ms_option("--request-timeout", options.request_timeout, "time to receive one whole request");
  ms_option("--write-timeout", options.write_timeout, "time a reply write may wait");
  ms_option("--drain-grace", options.drain_grace,
            "on SIGINT/SIGTERM, time to keep serving while HEALTH says DRAINING, so a load "
            "balancer takes this server out first");
  ms_option("--drain-timeout", options.drain_timeout,
            "on SIGINT/SIGTERM, time to finish in-flight requests (after --drain-grace)");
  std::string tls_cert, tls_key, tls_client_ca;
  auto* cert_opt = app.add_option("--tls-cert", tls_cert, "PEM certificate chain: serve TLS")
                       ->check(CLI::ExistingFile);
  auto* key_opt = app.add_option("--tls-key", tls_key, "PEM private key for --tls-cert")
                      ->check(CLI::ExistingFile);
  app.add_option("--tls-client-ca", tls_client_ca,
                 "require client certificates signed by this CA (mutual TLS)")
      ->check(CLI::ExistingFile)
      ->needs(cert_opt);
  cert_opt->needs(key_opt);
  key_opt->needs(cert_opt);
  std::string token_file;
  app.add_option("--auth-token-file", token_file,
                 "require `AUTH <token>` first; the token is this file's first line")
      ->check(CLI::ExistingFile);
  app.add_flag("--proxy-protocol", options.proxy_protocol,
               "every connection starts with a PROXY protocol v2 header (HAProxy "
               "send-proxy-v2), whose client address the logs show; others are refused");
  std::string redis_at, redis_password_file;
  std::string redis_prefix = cmdwire::redis_backplane_options{}.channel_prefix;
  auto* redis_opt = app.add_option(
      "--pubsub-redis", redis_at,
      "publish/subscribe across every server sharing the Redis at HOST:PORT (the backplane)");
  app.add_option("--pubsub-redis-prefix", redis_prefix,
                 "prefix of the Redis channels (one per topic); servers that share it share topics")
      ->needs(redis_opt)
      ->capture_default_str();
  app.add_option("--pubsub-redis-password-file", redis_password_file,
                 "AUTH to Redis with this file's first line")
      ->check(CLI::ExistingFile)
      ->needs(redis_opt);
  std::string echo_at, udp_echo_at, daytime_at, udp_daytime_at, chat_at, metrics_at;
  app.add_option("--metrics-listen", metrics_at,
                 "also serve Prometheus metrics (GET /metrics, the figures of STATS) over HTTP "
                 "on HOST:PORT");
  app.add_option("--echo", echo_at, "also serve RFC 862 echo over TCP on HOST:PORT");
  app.add_option("--udp-echo", udp_echo_at, "also serve RFC 862 echo over UDP on HOST:PORT");
  app.add_option("--daytime", daytime_at, "also serve RFC 867 daytime over TCP on HOST:PORT");
  app.add_option("--udp-daytime", udp_daytime_at,
                 "also serve RFC 867 daytime over UDP on HOST:PORT");
  app.add_option("--chat", chat_at,
                 "also serve a broadcast chat room on HOST:PORT (try several `nc HOST PORT`)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  auto where = cmdwire::parse_address(listen);
  if (!where) {
    fmt::print(stderr, "cmdwire-server: {}\n", where.error().message);
    return 2;
  }
  if (unix_mode && !where->is_unix()) {
    fmt::print(stderr, "cmdwire-server: --unix-mode applies only to --listen unix:PATH\n");
    return 2;
  }
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    std::getline(in, options.auth_token);
    if (options.auth_token.empty()) {
      fmt::print(stderr, "cmdwire-server: {} holds no token on its first line\n", token_file);
      return 2;
    }
  }
  if (!redis_at.empty()) {
    const auto redis = cmdwire::parse_address(redis_at);
    if (!redis || redis->is_unix()) {
      fmt::print(stderr, "cmdwire-server: --pubsub-redis wants HOST:PORT, got '{}'\n", redis_at);
      return 2;
    }
    cmdwire::redis_backplane_options backplane;
    backplane.host = redis->tcp.host;
    backplane.port = redis->tcp.port;
    backplane.channel_prefix = redis_prefix;
    if (!redis_password_file.empty()) {
      std::ifstream in(redis_password_file);
      std::getline(in, backplane.password);
      if (backplane.password.empty()) {
        fmt::print(stderr, "cmdwire-server: {} holds no password on its first line\n",
                   redis_password_file);
        return 2;
      }
    }
    options.pubsub_redis = std::move(backplane);
  }
  if (!tls_cert.empty()) {
    options.tls = cmdwire::tls_server_config{tls_cert, tls_key, tls_client_ca};
  }
  options.threads = threads;
  options.log = make_logger(level, log_format == "json");
  cmdwire::chat_room room({.limits = {}, .log = options.log});  // before ep: members refer to it
  cmdwire::endpoint ep(options);
  cmdwire::demo::register_demo_commands(ep);
  ep.enable_pubsub();  // the server offers SUBSCRIBE/PUBLISH (and --chat uses its own room)
  if (where->is_unix()) {
    if (auto bound = ep.listen_unix(where->unix_path, unix_mode); !bound) {
      fmt::print(stderr, "cmdwire-server: {}\n", bound.error().message);
      return 3;
    }
  } else {
    auto port = ep.listen(where->tcp.host, where->tcp.port);
    if (!port) {
      fmt::print(stderr,
                 "cmdwire-server: {} — is another server using the port? Try --listen "
                 "{}:0 for a free one.\n",
                 port.error().message, where->tcp.host);
      return 3;
    }
    where->tcp.port = *port;
  }
  // First SIGINT/SIGTERM: drain (in another thread, so this one keeps listening); second: exit.
  boost::asio::io_context signals_context(1);
  boost::asio::signal_set signals(signals_context, SIGINT, SIGTERM);
  std::thread stopper;
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    options.log(cmdwire::log_level::info,
                fmt::format("signal {}: HEALTH says DRAINING; serving {} ms more, then draining "
                            "(up to {} ms); signal again to exit now",
                            signo, options.drain_grace.count(), options.drain_timeout.count()));
    signals.async_wait([&](const boost::system::error_code& again, int) {
      if (again) return;
      options.log(cmdwire::log_level::warn, "second signal: exiting without draining");
      std::_Exit(1);
    });
    stopper = std::thread([&] {
      ep.stop();
      signals_context.stop();
    });
  });
  // Scripts and tests read this line to learn the port when they asked for port 0.
  fmt::print("cmdwire-server listening on {}\n", where->to_string());
  // The classic services share the endpoint's threads, limits and stop(); each prints its
  // address the same way, so scripts can ask for port 0 here too.
  const auto serve_service = [&](std::string_view name, const std::string& at, auto&& bind) {
    if (at.empty()) return true;
    auto addr = cmdwire::parse_host_port(at);
    auto bound = addr ? bind(addr->host, addr->port) : cmdwire::result<std::uint16_t>(addr.error());
    if (!bound) {
      fmt::print(stderr, "cmdwire-server: --{}: {}\n", name, bound.error().message);
      return false;
    }
    addr->port = *bound;
    fmt::print("{} listening on {}\n", name, addr->to_string());
    return true;
  };
  const bool services_ok =
      serve_service("echo", echo_at,
                    [&](const std::string& h, std::uint16_t p) {
                      return ep.serve(h, p, cmdwire::echo_session);
                    }) &&
      serve_service("udp-echo", udp_echo_at,
                    [&](const std::string& h, std::uint16_t p) {
                      return ep.serve_udp(h, p, cmdwire::udp_echo_reply);
                    }) &&
      serve_service("daytime", daytime_at,
                    [&](const std::string& h, std::uint16_t p) {
                      return ep.serve(h, p, cmdwire::daytime_session);
                    }) &&
      serve_service("udp-daytime", udp_daytime_at,
                    [&](const std::string& h, std::uint16_t p) {
                      return ep.serve_udp(h, p, cmdwire::udp_daytime_reply);
                    }) &&
      serve_service(
          "chat", chat_at,
          [&](const std::string& h, std::uint16_t p) { return ep.serve(h, p, room.handler()); }) &&
      serve_service("metrics", metrics_at, [&](const std::string& h, std::uint16_t p) {
        return ep.serve(h, p, cmdwire::metrics_http(ep));
      });
  std::fflush(stdout);
  if (!services_ok) return 3;
  options.log(cmdwire::log_level::info,
              fmt::format("serving {} commands on {} with {} threads", ep.command_names().size(),
                          where->to_string(), ep.options().threads));

  ep.start();
  signals_context.run();
  if (stopper.joinable()) stopper.join();
  ep.stop();
  options.log(cmdwire::log_level::info, "stopped");
  return 0;
}
