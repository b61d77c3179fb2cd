// Descriptors written by protoc-gen-cmdwire (from tests/proto/*.proto, through
// cmdwire_protobuf_generate) as C++ sees them, and calls through them on 127.0.0.1.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <type_traits>

#include "cmdwire/client.hpp"
#include "cmdwire/command.hpp"
#include "cmdwire/describe.hpp"
#include "cmdwire/endpoint.hpp"
#include "nested.cmdwire.h"
#include "pkgless.cmdwire.h"

namespace nested = cmdwire::test::nested;
using Count = nested::delete_::new_;  // service delete { rpc new }: C++ keywords get a '_'
using Wrap = nested::delete_::Wrap;
using Find = nested::Lookup::Find;
using Unwrap = ::Plain::Unwrap;  // a file without a package: the service's namespace only
using Clear = ::Plain::Clear;

TEST_CASE("generated descriptors are commands with the rpc's types", "[proto-service]") {
  STATIC_REQUIRE(cmdwire::command<Count>);
  STATIC_REQUIRE(cmdwire::command<Wrap>);
  STATIC_REQUIRE(cmdwire::command<Find>);
  STATIC_REQUIRE(cmdwire::command<Unwrap>);
  STATIC_REQUIRE(cmdwire::command<Clear>);
  // Nested message Outer.Inner is protoc's Outer_Inner, also spelt Outer::Inner.
  STATIC_REQUIRE(std::is_same_v<Count::request, nested::Outer>);
  STATIC_REQUIRE(std::is_same_v<Count::response, nested::Outer::Inner>);
  STATIC_REQUIRE(std::is_same_v<Wrap::request, nested::Outer_Inner>);
  STATIC_REQUIRE(std::is_same_v<Unwrap::request, nested::Outer>);
  STATIC_REQUIRE(std::is_same_v<Clear::request, ::Local>);
  STATIC_REQUIRE(std::is_same_v<Clear::response, google::protobuf::Empty>);
  // The wire name is "Service.Method" as written in the .proto, keywords and all.
  STATIC_REQUIRE(Count::name == "delete.new");
  STATIC_REQUIRE(Find::name == "Lookup.Find");
  STATIC_REQUIRE(Unwrap::name == "Plain.Unwrap");
}

TEST_CASE("generated descriptors carry the rpc's comment and idempotency level",
          "[proto-service]") {
  // The comment's lines, trimmed and joined by a space; quotes, backslashes, a tab and UTF-8
  // arrive as the same bytes.
  CHECK(Count::doc == "Counts the \"inner\" texts, a \\ b. Second line, indented; tab\there.");
  CHECK(Find::doc == "A block comment: \u00fcn\u00efcode stays as its bytes.");
  CHECK(Unwrap::doc == "Answers the inner message of an Outer from another file.");
  STATIC_REQUIRE_FALSE(cmdwire::documented_command<Wrap>);  // a trailing comment is no doc
  STATIC_REQUIRE_FALSE(cmdwire::documented_command<Clear>);
  // IDEMPOTENT and NO_SIDE_EFFECTS both make a command idempotent; unset does not.
  STATIC_REQUIRE(cmdwire::is_idempotent_command<Count>);
  STATIC_REQUIRE(cmdwire::is_idempotent_command<Find>);
  STATIC_REQUIRE_FALSE(cmdwire::is_idempotent_command<Wrap>);
  STATIC_REQUIRE_FALSE(cmdwire::is_idempotent_command<Unwrap>);
}

TEST_CASE("handlers registered through generated descriptors answer typed calls",
          "[proto-service]") {
  cmdwire::endpoint ep;
  ep.handle<Count>([](const nested::Outer& outer) {
    nested::Outer::Inner counted;
    counted.set_text(outer.inner().text());
    counted.set_count(outer.more_size() + (outer.has_inner() ? 1 : 0));
    return counted;
  });
  ep.handle<Unwrap>([](const nested::Outer& outer) { return outer.inner(); });
  const auto port = ep.listen("127.0.0.1", 0);
  REQUIRE(port.has_value());
  ep.start();

  // DESCRIBE's data comes from the same descriptors.
  const auto descriptions = ep.descriptions();
  const auto count = std::find_if(descriptions.begin(), descriptions.end(),
                                  [](const auto& d) { return d.name == "delete.new"; });
  REQUIRE(count != descriptions.end());
  CHECK(count->idempotent);
  CHECK(count->doc == Count::doc);

  auto conn = cmdwire::client::connect("127.0.0.1:" + std::to_string(*port));
  REQUIRE(conn.has_value());
  nested::Outer outer;
  outer.mutable_inner()->set_text("first");
  outer.add_more()->set_text("second");
  outer.add_more()->set_text("third");

  const auto counted = conn->call<Count>(outer);
  REQUIRE(counted.has_value());
  CHECK(counted->text() == "first");
  REQUIRE(counted->has_count());
  CHECK(counted->count() == 3);

  const auto unwrapped = conn->call<Unwrap>(outer);
  REQUIRE(unwrapped.has_value());
  CHECK(unwrapped->text() == "first");
  CHECK_FALSE(unwrapped->has_count());

  // An rpc of the same service without a handler is an unknown command, by its wire name.
  const auto wrapped = conn->call<Wrap>(nested::Outer::Inner{});
  REQUIRE_FALSE(wrapped.has_value());
  CHECK(wrapped.error().code == cmdwire::errc::unknown_command);
  CHECK(wrapped.error().message.find("delete.Wrap") != std::string::npos);
  ep.stop();
}
