// Tests for cmdwire's error codes: category, wire names, messages and the result<T> exception.
#include "cmdwire/error.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <system_error>
#include <vector>

using cmdwire::errc;

namespace {

const std::vector<errc> wire_codes{
    errc::bad_request, errc::unknown_command, errc::bad_body,
    errc::too_large,   errc::internal,        errc::deadline_exceeded,
    errc::busy,        errc::unauthorized,    errc::unavailable};
const std::vector<errc> local_codes{errc::remote_error,    errc::protocol_error, errc::timeout,
                                    errc::connection_lost, errc::not_connected,  errc::bad_address};

}  // namespace

TEST_CASE("error category") {
  CHECK(std::string(cmdwire::error_category().name()) == "cmdwire");
  CHECK(&cmdwire::error_category() == &cmdwire::error_category());

  std::set<std::string> messages;
  for (const auto& codes : {wire_codes, local_codes}) {
    for (const errc e : codes) {
      const std::error_code ec = e;  // is_error_code_enum makes this implicit
      CHECK(&ec.category() == &cmdwire::error_category());
      CHECK(ec.value() == static_cast<int>(e));
      CHECK(ec == e);
      CHECK(ec);
      const std::string msg = ec.message();
      CHECK_FALSE(msg.empty());
      CHECK(msg != "unknown cmdwire error");
      messages.insert(msg);
    }
  }
  CHECK(messages.size() == wire_codes.size() + local_codes.size());
  CHECK(cmdwire::make_error_code(errc::busy) != errc::too_large);
  CHECK(cmdwire::make_error_code(errc::busy) !=
        std::make_error_code(std::errc::device_or_resource_busy));
  CHECK(cmdwire::error_category().message(9999) == "unknown cmdwire error");
}

TEST_CASE("wire names") {
  CHECK(cmdwire::wire_name(errc::bad_request) == "bad-request");
  CHECK(cmdwire::wire_name(errc::unknown_command) == "unknown-command");
  CHECK(cmdwire::wire_name(errc::bad_body) == "bad-body");
  CHECK(cmdwire::wire_name(errc::too_large) == "too-large");
  CHECK(cmdwire::wire_name(errc::internal) == "internal");
  CHECK(cmdwire::wire_name(errc::deadline_exceeded) == "deadline");
  CHECK(cmdwire::wire_name(errc::busy) == "busy");
  CHECK(cmdwire::wire_name(errc::unauthorized) == "auth");

  for (const errc e : wire_codes) CHECK(cmdwire::errc_from_wire_name(cmdwire::wire_name(e)) == e);
  for (const errc e : local_codes) CHECK(cmdwire::wire_name(e).empty());

  CHECK(cmdwire::errc_from_wire_name("frobnicated") == errc::remote_error);
  CHECK(cmdwire::errc_from_wire_name("") == errc::remote_error);
  CHECK(cmdwire::errc_from_wire_name("TOO-LARGE") == errc::remote_error);
  CHECK(cmdwire::errc_from_wire_name("too-large ") == errc::remote_error);
  CHECK(cmdwire::errc_from_wire_name("protocol_error") == errc::remote_error);
}

TEST_CASE("error::to_string") {
  const cmdwire::error big{errc::too_large,
                           "body of 2000000000 bytes exceeds the limit of 16777216"};
  CHECK(big.to_string() == "too-large: body of 2000000000 bytes exceeds the limit of 16777216");

  const cmdwire::error local{errc::timeout, "no reply after 250 ms"};
  CHECK(local.to_string() == local.code.message() + ": no reply after 250 ms");
  CHECK(local.to_string() == "timed out: no reply after 250 ms");

  const cmdwire::error foreign{std::make_error_code(std::errc::connection_refused), "127.0.0.1:1"};
  CHECK(foreign.to_string() == foreign.code.message() + ": 127.0.0.1:1");

  const cmdwire::error bare{errc::busy, ""};
  CHECK(bare.to_string() == "busy");
}

TEST_CASE("call_failed and result<T>::value()") {
  const cmdwire::error e{errc::unknown_command, "no handler for FOO"};
  const cmdwire::call_failed ex(e);
  CHECK(std::string(ex.what()) == "unknown-command: no handler for FOO");
  CHECK(ex.failure().code == errc::unknown_command);
  CHECK(ex.failure().message == "no handler for FOO");

  cmdwire::result<int> bad = e;
  REQUIRE_FALSE(bad.has_value());
  try {
    (void)bad.value();
    FAIL("value() on an error did not throw");
  } catch (const cmdwire::call_failed& thrown) {
    CHECK(thrown.failure().code == errc::unknown_command);
    CHECK(thrown.failure().message == "no handler for FOO");
    CHECK(std::string(thrown.what()) == e.to_string());
  }

  cmdwire::result<int> good = 42;
  CHECK(good.value() == 42);
}
