// Unix-domain sockets: endpoint::listen_unix (stale file replaced, live one refused, file mode),
// the client and channel over unix:PATH, and the CLI against it.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <catch2/catch.hpp>
#include <string>

#include "cmdwire/channel.hpp"
#include "cmdwire/client.hpp"
#include "demo/demo_commands.hpp"
#include "demo/demo_service.hpp"
#include "support/process.hpp"

namespace demo = cmdwire::demo;

namespace {
/// A fresh socket path in /tmp, removed again by the destructor.
struct temp_path {
  std::string path = "/tmp/cmdwire-test-" + std::to_string(::getpid()) + "-" +
                     std::to_string(counter()++) + ".sock";
  ~temp_path() { ::unlink(path.c_str()); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

struct unix_server {
  explicit unix_server(const std::string& path, std::optional<unsigned> mode = std::nullopt,
                       cmdwire::endpoint_options options = {})
      : ep(std::move(options)) {
    demo::register_demo_commands(ep);
    auto bound = ep.listen_unix(path, mode);
    if (!bound) throw std::runtime_error(bound.error().message);
    ep.start();
  }
  cmdwire::endpoint ep;
};
}  // namespace

TEST_CASE("unix: the demo commands through client and channel", "[unix]") {
  temp_path p;
  unix_server server(p.path);
  auto c = cmdwire::client::connect("unix:" + p.path);
  REQUIRE(c.has_value());
  CHECK(c->address() == "unix:" + p.path);
  CHECK(c->call<demo::Echo>("over a unix socket").value() == "over a unix socket");
  CHECK(c->call<demo::Ping>({}).value() == "PONG");
  CHECK(c->call_line("STRING", "hello").value() == "Thank you.");
  demo::ComplexData data;
  data.n = 7;
  data.s = "seven";
  CHECK(c->call<demo::Struct>(data).has_value());
  CHECK(c->call<demo::Daytime>({}).has_value());
  demo::pb::Complex pb;
  pb.set_n(3);
  CHECK(c->call<demo::Proto>(pb).has_value());
  CHECK(c->call<demo::Commands>({}).value().find("ECHO") != std::string::npos);
  auto ch = cmdwire::channel::create("unix:" + p.path);
  REQUIRE(ch.has_value());
  CHECK(ch->call<demo::Echo>("channel").value() == "channel");
}

TEST_CASE("unix: a stale socket file is replaced, a live one refused", "[unix]") {
  temp_path p;
  {
    // A listener that went away without removing its file, as a crashed server leaves it.
    boost::asio::io_context ctx;
    boost::asio::local::stream_protocol::acceptor stale(
        ctx, boost::asio::local::stream_protocol::endpoint(p.path));
  }
  struct stat st {};
  REQUIRE(::lstat(p.path.c_str(), &st) == 0);
  unix_server first(p.path, 0600);
  REQUIRE(::lstat(p.path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  cmdwire::endpoint second;
  auto refused = second.listen_unix(p.path);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message.find("already listening") != std::string::npos);
  // The live server was not disturbed.
  auto c = cmdwire::client::connect("unix:" + p.path);
  REQUIRE(c.has_value());
  CHECK(c->call<demo::Ping>({}).value() == "PONG");

  first.ep.stop();
  CHECK(::lstat(p.path.c_str(), &st) != 0);  // stop() removed the file
}

TEST_CASE("unix: auth works as on TCP", "[unix]") {
  temp_path p;
  cmdwire::endpoint_options options;
  options.auth_token = "s3cret";
  unix_server server(p.path, std::nullopt, options);
  cmdwire::client_options wrong;
  wrong.auth_token = "guess";
  auto refused = cmdwire::client::connect("unix:" + p.path, wrong);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == cmdwire::errc::unauthorized);
  cmdwire::client_options right;
  right.auth_token = "s3cret";
  auto c = cmdwire::client::connect("unix:" + p.path, right);
  REQUIRE(c.has_value());
  CHECK(c->call<demo::Ping>({}).value() == "PONG");
}

TEST_CASE("unix: a path that is not a socket is refused", "[unix]") {
  temp_path p;
  {
    std::FILE* f = std::fopen(p.path.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fclose(f);
  }
  cmdwire::endpoint ep;
  auto r = ep.listen_unix(p.path);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("not a socket") != std::string::npos);
}

TEST_CASE("unix: the CLI connects to unix:PATH", "[unix]") {
  temp_path p;
  unix_server server(p.path);
  const auto cli = cmdwire::test::run(
      {cmdwire::test::bin_path("cmdwire"), "call", "PING", "--connect", "unix:" + p.path});
  CHECK(cli.exit_code == 0);
  CHECK(cli.out == "\"PONG\"\n");
}

#ifdef CMDWIRE_TEST_BENCH
TEST_CASE("unix: cmdwire-bench drives a server on unix:PATH", "[unix]") {
  temp_path p;
  unix_server server(p.path);
  const auto bench = cmdwire::test::run({cmdwire::test::bin_path("cmdwire-bench"), "--connect",
                                         "unix:" + p.path, "--duration", "0.2", "--warmup", "0"});
  CHECK(bench.exit_code == 0);
  CHECK(bench.out.find(" 0 errors") != std::string::npos);
  CHECK(bench.out.find("requests  0 ") == std::string::npos);
}
#endif
