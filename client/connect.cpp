// Connection and failure reporting shared by the CLI's subcommands.
#include "client/connect.hpp"

#include <fmt/format.h>
#include <chrono>
#include <cstdlib>
#include <fstream>

namespace cmdwire::cli {

std::string default_address() {
  if (const char* a = std::getenv("CMDWIRE_ADDRESS"); a != nullptr && *a != '\0') return a;
  if (const char* p = std::getenv("PORT"); p != nullptr && *p != '\0') {
    return fmt::format("127.0.0.1:{}", p);
  }
  return "127.0.0.1:61000";
}

server_target& target() {
  static server_target t;
  return t;
}

void add_target_options(CLI::App& app) {
  app.add_option("-c,--connect", target().address,
                 "server HOST:PORT or unix:PATH (default: $CMDWIRE_ADDRESS, else "
                 "127.0.0.1:$PORT, else 127.0.0.1:61000)")
      ->capture_default_str();
  app.add_option("-t,--timeout", target().timeout_s, "seconds to wait for connect and each reply")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  // So both may follow the subcommand: `cmdwire call PING -c HOST:PORT`.
  app.fallthrough();
}

namespace {
std::string& auth_token_file() {
  static std::string path;  // set once from main(), before any connection
  return path;
}

std::string auth_token() {
  if (!auth_token_file().empty()) {
    std::ifstream in(auth_token_file());
    std::string token;
    if (!in || !std::getline(in, token) || token.empty()) {
      throw failure(exit_usage, fmt::format("cannot read a token from '{}': give a file whose "
                                            "first line is the token",
                                            auth_token_file()));
    }
    return token;
  }
  const char* env = std::getenv("CMDWIRE_TOKEN");
  return env != nullptr ? env : "";
}
}  // namespace

void set_auth_token_file(std::string path) { auth_token_file() = std::move(path); }

namespace {
const cmdwire::tls_client_config*& tls_config() {
  static const cmdwire::tls_client_config* config = nullptr;  // set once from main()
  return config;
}
}  // namespace

void set_tls(const cmdwire::tls_client_config* config) { tls_config() = config; }

cmdwire::client connect_or_fail(const std::string& address, double timeout_s) {
  cmdwire::client_options options;
  options.auth_token = auth_token();
  if (tls_config() != nullptr) {
    options.tls = *tls_config();
    if (!options.tls.ca_file.empty() || !options.tls.cert_file.empty()) options.tls.enabled = true;
  }
  options.connect_timeout =
      std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000.0));
  options.default_deadline = options.connect_timeout;
  auto c = cmdwire::client::connect(address, options);
  if (!c) {
    if (c.error().code == cmdwire::errc::bad_address) {
      throw failure(exit_usage, c.error().message);
    }
    if (c.error().code == cmdwire::errc::unauthorized) {
      throw failure(exit_error_reply,
                    fmt::format("{} — set CMDWIRE_TOKEN or --auth-token-file to the server's "
                                "token",
                                c.error().message));
    }
    throw failure(exit_connection,
                  fmt::format("{} — is cmdwire-server running? (start it with: cmdwire-server "
                              "--listen {})",
                              c.error().message, address));
  }
  return std::move(*c);
}

void fail_call(std::string_view command, const cmdwire::error& e) {
  const auto& code = e.code;
  if (code == cmdwire::errc::timeout) {
    throw failure(
        exit_connection,
        fmt::format("{}: no reply in time — raise --timeout if the server is slow", command));
  }
  if (code == cmdwire::errc::connection_lost || code == cmdwire::errc::not_connected ||
      code == cmdwire::errc::protocol_error) {
    throw failure(exit_connection, fmt::format("{}: {}", command, e.message));
  }
  const auto wire = code.category() == cmdwire::error_category()
                        ? cmdwire::wire_name(static_cast<cmdwire::errc>(code.value()))
                        : std::string_view{};
  throw failure(exit_error_reply,
                fmt::format("{}: server replied ERR {}: {}", command,
                            wire.empty() ? std::string_view(code.message()) : wire, e.message));
}

}  // namespace cmdwire::cli
