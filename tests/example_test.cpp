// Runs the example programs as a user would: example-server on port 0, example-client against
// it, then SIGTERM to the server; and example-proto-service, which is both in one process.
#include <catch2/catch.hpp>
#include <csignal>
#include <string>

#include "support/process.hpp"

using cmdwire::test::bin_path;
using cmdwire::test::child_process;

TEST_CASE("example-client adds two items through example-server", "[example]") {
  child_process server({bin_path("example-server"), "0"});
  const auto line = server.read_line();
  REQUIRE(line.has_value());
  const std::string prefix = "listening on ";
  REQUIRE(line->starts_with(prefix));
  const std::string port = line->substr(prefix.size());
  REQUIRE(!port.empty());
  CHECK(port != "0");

  const auto client = cmdwire::test::run({bin_path("example-client"), "127.0.0.1:" + port});
  INFO("example-client stderr:\n" << client.err);
  CHECK(client.exit_code == 0);
  CHECK(client.out ==
        "added apple x3: 1 items, total 3\n"
        "added pear x4: 2 items, total 7\n");

  server.signal(SIGTERM);
  const auto stopped = server.wait();
  INFO("example-server stderr:\n" << stopped.err);
  CHECK(stopped.exit_code == 0);
}

TEST_CASE("example-client without an address prints usage and exits 2", "[example]") {
  const auto r = cmdwire::test::run({bin_path("example-client")});
  CHECK(r.exit_code == 2);
  CHECK(r.err.starts_with("Usage: example-client HOST:PORT"));
}

TEST_CASE("example-server exits 0 on SIGTERM sent as soon as it announces its port", "[example]") {
  // Repeated: a server that installs its signal handler after printing the line would be
  // killed by the default SIGTERM action (exit 143) in some of these runs.
  for (int i = 0; i < 5; ++i) {
    child_process server({bin_path("example-server"), "0"});
    const auto line = server.read_line();
    REQUIRE(line.has_value());
    REQUIRE(line->starts_with("listening on "));
    server.signal(SIGTERM);
    const auto stopped = server.wait();
    INFO("run " << i << ", example-server stderr:\n" << stopped.err);
    CHECK(stopped.exit_code == 0);
  }
}

TEST_CASE("example-proto-service calls the Demo service through generated descriptors",
          "[example]") {
  const auto r = cmdwire::test::run({bin_path("example-proto-service")});
  INFO("example-proto-service stderr:\n" << r.err);
  CHECK(r.exit_code == 0);
  // Summarize is the PROTO command's work: 3 levels, one map entry each, s joined with '/'.
  CHECK(r.out ==
        "Demo.Summarize: depth 3, entries 3, names a/b/c\n"
        "Demo.Deepest: n 3, s c, child none\n");
}
