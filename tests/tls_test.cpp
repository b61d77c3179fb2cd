// TLS over loopback with throw-away certificates made by the openssl CLI at test time:
// verified server, wrong CA, plaintext client on a TLS port, mutual TLS.
#include "cmdwire/tls.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "cmdwire/client.hpp"
#include "demo/demo_commands.hpp"
#include "support/test_server.hpp"

namespace fs = std::filesystem;
using cmdwire::test::test_server;

namespace {

/// A CA, a server certificate for 127.0.0.1 signed by it, a client certificate signed by it,
/// and an unrelated CA; made once per test run in a fresh temporary folder.
struct certificates {
  fs::path dir;

  certificates() {
    dir = fs::temp_directory_path() / fmt::format("cmdwire-tls-{}", ::getpid());
    fs::create_directories(dir);
    const auto run = [&](const std::string& cmd) {
      const std::string full = fmt::format("cd '{}' && {} >/dev/null 2>&1", dir.string(), cmd);
      REQUIRE(std::system(full.c_str()) == 0);
    };
    for (const char* ca : {"ca", "other-ca"}) {
      run(
          fmt::format("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN={0} "
                      "-keyout {0}.key -out {0}.pem",
                      ca));
    }
    for (const char* who : {"server", "client"}) {
      run(
          fmt::format("openssl req -newkey rsa:2048 -nodes -subj /CN={0} -keyout {0}.key "
                      "-out {0}.csr",
                      who));
      run(
          fmt::format("printf 'subjectAltName=IP:127.0.0.1\\n' > {0}.ext && openssl x509 -req "
                      "-in {0}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 "
                      "-extfile {0}.ext -out {0}.pem",
                      who));
    }
  }
  ~certificates() { fs::remove_all(dir); }
  [[nodiscard]] std::string file(const char* name) const { return (dir / name).string(); }
};

const certificates& certs() {
  static const certificates made;
  return made;
}

cmdwire::endpoint_options tls_options(bool mutual) {
  cmdwire::endpoint_options options;
  options.tls = cmdwire::tls_server_config{certs().file("server.pem"), certs().file("server.key"),
                                           mutual ? certs().file("ca.pem") : ""};
  return options;
}

cmdwire::client_options client_tls(const char* ca, bool with_cert = false) {
  cmdwire::client_options options;
  options.tls.enabled = true;
  options.tls.ca_file = certs().file(ca);
  if (with_cert) {
    options.tls.cert_file = certs().file("client.pem");
    options.tls.key_file = certs().file("client.key");
  }
  return options;
}

}  // namespace

TEST_CASE("TLS: a client that trusts the server's CA talks to it", "[tls]") {
  test_server server(tls_options(false));
  auto c = cmdwire::client::connect(server.address(), client_tls("ca.pem"));
  REQUIRE(c.has_value());
  CHECK(c->call<cmdwire::demo::Ping>({}).value() == "PONG");
  CHECK(c->call<cmdwire::demo::Struct>(cmdwire::demo::make_sample(3)).value().depth == 3);
}

TEST_CASE("TLS: a client with the wrong CA is refused with a clear error", "[tls]") {
  test_server server(tls_options(false));
  auto c = cmdwire::client::connect(server.address(), client_tls("other-ca.pem"));
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error().message.find("certificate verify failed") != std::string::npos);
}

TEST_CASE("TLS: a plaintext client on a TLS port gets nothing and the server survives", "[tls]") {
  test_server server(tls_options(false));
  for (const bool hello : {true, false}) {
    // TCP connects; the server then drops the non-TLS bytes. With HELLO (the default) that
    // shows while connecting, without it at the first call.
    cmdwire::client_options plain_options;
    plain_options.out_of_order = hello;
    auto plain = cmdwire::client::connect(server.address(), plain_options);
    REQUIRE(plain.has_value() == !hello);
    const auto failure =
        plain.has_value() ? plain->call<cmdwire::demo::Ping>({}).error() : plain.error();
    CHECK((failure.code == cmdwire::errc::connection_lost ||
           failure.code == cmdwire::errc::protocol_error));
  }
  auto c = cmdwire::client::connect(server.address(), client_tls("ca.pem"));
  REQUIRE(c.has_value());
  CHECK(c->call<cmdwire::demo::Ping>({}).value() == "PONG");
}

TEST_CASE("TLS: mutual TLS requires a client certificate", "[tls]") {
  test_server server(tls_options(true));
  SECTION("without a certificate the handshake or the first call fails") {
    auto c = cmdwire::client::connect(server.address(), client_tls("ca.pem"));
    // TLS 1.3 reports the refusal after the handshake: then it is the HELLO sent while
    // connecting that fails.
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().message.starts_with("cannot connect to"));
  }
  SECTION("with one signed by the client CA it works") {
    auto c = cmdwire::client::connect(server.address(), client_tls("ca.pem", true));
    REQUIRE(c.has_value());
    CHECK(c->call<cmdwire::demo::Ping>({}).value() == "PONG");
  }
}

TEST_CASE("TLS: a missing certificate file fails listen with the file named", "[tls]") {
  cmdwire::endpoint_options options;
  options.tls = cmdwire::tls_server_config{"/nonexistent/cert.pem", "/nonexistent/key.pem", ""};
  cmdwire::endpoint ep(options);
  auto bound = ep.listen("127.0.0.1", 0);
  REQUIRE_FALSE(bound.has_value());
  CHECK(bound.error().message.find("/nonexistent/cert.pem") != std::string::npos);
}
