// Tests for the wire format: request heads, line bodies, replies, limits and split-independence.
#include "cmdwire/wire.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using namespace std::string_literals;
using namespace std::string_view_literals;
using cmdwire::errc;
namespace wire = cmdwire::wire;
using wire::status;

namespace {

const wire::limits default_limits{};

bool no_line_commands(std::string_view) { return false; }
bool string_is_line_command(std::string_view name) { return name == "STRING"; }

// The session's two steps in one call: skip blank lines, parse the head, ask `is_line` for the
// body rule, take the body. `size` counts the skipped blank lines, also when more is needed.
wire::request_parse parse_request(std::string_view buf, const wire::limits& lim,
                                  bool (*is_line)(std::string_view)) {
  const std::size_t skip = wire::skip_blank_lines(buf);
  const std::string_view rest = buf.substr(skip);
  const wire::head_parse h = wire::parse_request_head(rest, lim);
  wire::request_parse out;
  if (h.state != status::complete) {
    out.state = h.state;
    out.error = h.error;
    out.detail = h.detail;
    out.size = skip;
    out.need = skip + h.need;
    return out;
  }
  const auto rule = is_line(h.value.name) ? wire::body_rule::line : wire::body_rule::framed;
  out = wire::parse_request_body(rest, h, rule, lim);
  if (out.state == status::complete) {
    out.size += skip;
  } else {
    out.size = skip;
    out.need += skip;
  }
  return out;
}

wire::head_parse head(std::string_view buf, const wire::limits& lim = default_limits) {
  return wire::parse_request_head(buf, lim);
}

wire::request_parse req(std::string_view buf, const wire::limits& lim = default_limits) {
  return parse_request(buf, lim, string_is_line_command);
}

// Every proper prefix of a frame must be "need more" or already the frame's final error:
// the answer may never depend on where the network split the bytes.
template <class Parse>
void check_prefixes_agree(std::string_view input, Parse parse) {
  const auto whole = parse(input);
  for (std::size_t k = 0; k < input.size(); ++k) {
    const auto part = parse(input.substr(0, k));
    INFO("prefix of " << k << " bytes of a " << input.size() << "-byte input");
    REQUIRE(part.state != status::complete);
    if (part.state == status::error) {
      REQUIRE(whole.state == status::error);
      REQUIRE(part.error == whole.error);
      REQUIRE(part.detail == whole.detail);
    }
  }
}

void require_head_error(std::string_view buf, errc code, const wire::limits& lim = default_limits) {
  INFO("input: " << std::string(buf));
  const auto h = head(buf, lim);
  REQUIRE(h.state == status::error);
  REQUIRE(h.error == code);
  REQUIRE_FALSE(h.detail.empty());
  check_prefixes_agree(buf, [&](std::string_view b) { return head(b, lim); });
}

}  // namespace

TEST_CASE("request head: name only") {
  const auto h = head("PING\n");
  REQUIRE(h.state == status::complete);
  CHECK(h.value.name == "PING");
  CHECK(h.value.enc == wire::encoding::bin);
  CHECK_FALSE(h.value.length);
  CHECK_FALSE(h.value.id);
  CHECK_FALSE(h.value.deadline_ms);
  CHECK(h.size == 5);
  check_prefixes_agree("PING\n", [](std::string_view b) { return head(b); });
}

TEST_CASE("request head: every name character class is accepted") {
  const auto h = head("a-Z_0.9:x/y\n");
  REQUIRE(h.state == status::complete);
  CHECK(h.value.name == "a-Z_0.9:x/y");
}

TEST_CASE("request head: encoding and length") {
  SECTION("json with length") {
    const auto h = head("GET json 5\n");
    REQUIRE(h.state == status::complete);
    CHECK(h.value.enc == wire::encoding::json);
    CHECK(h.value.length == 5u);
  }
  SECTION("explicit bin") {
    const auto h = head("GET bin 0\n");
    REQUIRE(h.state == status::complete);
    CHECK(h.value.enc == wire::encoding::bin);
    CHECK(h.value.length == 0u);
  }
  SECTION("encoding without length") {
    const auto h = head("GET json\n");
    REQUIRE(h.state == status::complete);
    CHECK(h.value.enc == wire::encoding::json);
    CHECK_FALSE(h.value.length);
  }
  SECTION("length only") {
    const auto h = head("ECHO 12345\n");
    REQUIRE(h.state == status::complete);
    CHECK(h.value.length == 12345u);
    CHECK(h.size == 11);
  }
}

TEST_CASE("request head: attributes") {
  SECTION("id and deadline") {
    const auto h = head("ECHO 5 id=17 deadline-ms=250\n");
    REQUIRE(h.state == status::complete);
    CHECK(h.value.length == 5u);
    CHECK(h.value.id == 17u);
    CHECK(h.value.deadline_ms == 250u);
  }
  SECTION("extreme values") {
    const auto h = head("ECHO 0 id=18446744073709551615 deadline-ms=4294967295\n");
    REQUIRE(h.state == status::complete);
    CHECK(h.value.id == std::numeric_limits<std::uint64_t>::max());
    CHECK(h.value.deadline_ms == std::numeric_limits<std::uint32_t>::max());
  }
  SECTION("unknown keys are ignored") {
    const auto h = head("ECHO 5 trace=ab-c/1 future_thing=x id=3\n");
    REQUIRE(h.state == status::complete);
    CHECK(h.value.length == 5u);
    CHECK(h.value.id == 3u);
    CHECK_FALSE(h.value.deadline_ms);
  }
  SECTION("unknown key with an empty value is ignored") {
    const auto h = head("ECHO 5 hint=\n");
    REQUIRE(h.state == status::complete);
    CHECK(h.value.length == 5u);
  }
  SECTION("attributes may come before the length") {
    const auto h = head("ECHO json id=4 5\n");
    REQUIRE(h.state == status::complete);
    CHECK(h.value.id == 4u);
    CHECK(h.value.length == 5u);
    CHECK(h.value.enc == wire::encoding::json);
  }
}

TEST_CASE("request head: CRLF") {
  const auto h = head("PING\r\n");
  REQUIRE(h.state == status::complete);
  CHECK(h.value.name == "PING");
  CHECK(h.size == 6);

  const auto r = req("ECHO 5\r\nhe\r\no");
  REQUIRE(r.state == status::complete);
  CHECK(r.value.body == "he\r\no");
  CHECK(r.size == 13);

  CHECK(head("PING\r").state == status::need_more);
  require_head_error("PI\rNG\n", errc::bad_request);
  require_head_error("PING\rX", errc::bad_request);
  require_head_error("PING 5\r\r\n", errc::bad_request);
}

TEST_CASE("request: framed body") {
  const std::string input = "ECHO 5\nhe\0lo"s + "NEXT";
  const auto r = req(input);
  REQUIRE(r.state == status::complete);
  CHECK(r.value.head.name == "ECHO");
  CHECK(r.value.body == "he\0lo"sv);
  CHECK_FALSE(r.value.line_form);
  CHECK(r.size == 12);

  CHECK(req("ECHO 5\nhell").state == status::need_more);
  const auto empty = req("ECHO 0\nX");
  REQUIRE(empty.state == status::complete);
  CHECK(empty.value.body.empty());
  CHECK(empty.size == 7);
}

TEST_CASE("request: blank lines before a request are skipped") {
  const auto r = req("\n\r\n\nPING\n");
  REQUIRE(r.state == status::complete);
  CHECK(r.value.head.name == "PING");
  CHECK(r.size == 9);

  CHECK(req("\n\n").state == status::need_more);
  CHECK(req("\r\n\r").state == status::need_more);
  const auto bad = req("\r\r\nPING\n");
  REQUIRE(bad.state == status::error);
  CHECK(bad.error == errc::bad_request);
}

TEST_CASE("request: line commands take the next line as body") {
  SECTION("the original STRING exchange") {
    const auto r = req("STRING\nAdditional data.\n");
    REQUIRE(r.state == status::complete);
    CHECK(r.value.head.name == "STRING");
    CHECK(r.value.body == "Additional data.");
    CHECK(r.value.line_form);
    CHECK(r.size == 24);
  }
  SECTION("CRLF on both lines") {
    const auto r = req("STRING\r\nAdditional data.\r\n");
    REQUIRE(r.state == status::complete);
    CHECK(r.value.body == "Additional data.");
    CHECK(r.size == 26);
  }
  SECTION("empty line body") {
    const auto r = req("STRING\n\nPING\n");
    REQUIRE(r.state == status::complete);
    CHECK(r.value.body.empty());
    CHECK(r.value.line_form);
    CHECK(r.size == 8);
  }
  SECTION("a line command with LENGTH is framed") {
    const auto r = req("STRING 3\nabc\n");
    REQUIRE(r.state == status::complete);
    CHECK(r.value.body == "abc");
    CHECK_FALSE(r.value.line_form);
    CHECK(r.size == 12);
  }
  SECTION("the body line is incomplete") {
    CHECK(req("STRING\nAddit").state == status::need_more);
    CHECK(req("STRING\n").state == status::need_more);
  }
  SECTION("other commands without LENGTH have no body") {
    const auto r = req("PING\nAdditional data.\n");
    REQUIRE(r.state == status::complete);
    CHECK(r.value.body.empty());
    CHECK_FALSE(r.value.line_form);
    CHECK(r.size == 5);
  }
  SECTION("the predicate decides") {
    const auto r = parse_request("STRING\nAdditional data.\n", default_limits, no_line_commands);
    REQUIRE(r.state == status::complete);
    CHECK_FALSE(r.value.line_form);
    CHECK(r.size == 7);
  }
  SECTION("line body over the line limit") {
    wire::limits lim;
    lim.max_line = 16;
    const std::string at_limit = "STRING\n" + std::string(15, 'x') + "\n";
    const auto ok = req(at_limit, lim);
    REQUIRE(ok.state == status::complete);
    CHECK(ok.value.body.size() == 15);

    const std::string over = "STRING\n" + std::string(16, 'x');
    const auto r = req(over, lim);
    REQUIRE(r.state == status::error);
    CHECK(r.error == errc::too_large);
    CHECK_FALSE(r.detail.empty());
    CHECK(req(over.substr(0, over.size() - 1), lim).state == status::need_more);
  }
}

TEST_CASE("request head: malformed names") {
  require_head_error("P\0NG\n"sv, errc::bad_request);
  require_head_error("P\0"sv, errc::bad_request);  // refused before the LF arrives
  require_head_error("CAF\xC3\xA9\n", errc::bad_request);
  require_head_error("\xC3", errc::bad_request);
  require_head_error("PI@NG\n", errc::bad_request);
  require_head_error("PI\tNG 5\n", errc::bad_request);
  require_head_error("PING\t5\n", errc::bad_request);
  require_head_error("PI\x7fNG\n", errc::bad_request);
  require_head_error("PI\x01NG\n", errc::bad_request);
}

TEST_CASE("request head: empty and over-long names") {
  require_head_error("\n", errc::bad_request);
  require_head_error("\r\n", errc::bad_request);
  require_head_error(" PING\n", errc::bad_request);
  require_head_error(" 5\n", errc::bad_request);

  const std::string name64(64, 'N');
  const std::string line = name64 + " 1\n";  // the parse's views point into it
  const auto h = head(line);
  REQUIRE(h.state == status::complete);
  CHECK(h.value.name == name64);
  require_head_error(std::string(65, 'N') + " 1\n", errc::bad_request);
  require_head_error(std::string(65, 'N') + "\n", errc::bad_request);
}

TEST_CASE("request head: malformed tokens") {
  require_head_error("ECHO  5\n", errc::bad_request);
  CHECK(head("ECHO  5\n").detail == "two spaces between tokens");
  CHECK(head("ECHO 5 \n").detail == "trailing space after the last token");
  require_head_error("ECHO 5 \n", errc::bad_request);
  require_head_error("ECHO \n", errc::bad_request);
  require_head_error("ECHO xml 5\n", errc::bad_request);
  require_head_error("ECHO JSON 5\n", errc::bad_request);
  require_head_error("ECHO binary\n", errc::bad_request);
  require_head_error("ECHO 12ab\n", errc::bad_request);
  require_head_error("ECHO five\n", errc::bad_request);
  require_head_error("ECHO 0x10\n", errc::bad_request);
  require_head_error("ECHO 5 5\n", errc::bad_request);
  require_head_error("ECHO 5 6\n", errc::bad_request);
  require_head_error("ECHO json json 5\n", errc::bad_request);
  require_head_error("ECHO bin json 5\n", errc::bad_request);
  require_head_error("ECHO 5 json\n", errc::bad_request);
  require_head_error("ECHO -1\n", errc::bad_request);
  require_head_error("ECHO +5\n", errc::bad_request);
  require_head_error("ECHO =5\n", errc::bad_request);
  require_head_error("ECHO 5 =x\n", errc::bad_request);
  require_head_error("ECHO 5 k\xC3=1\n", errc::bad_request);
  require_head_error("ECHO 5 k=\x01\n", errc::bad_request);
  require_head_error("ECHO 5 k=v\xC3\xA9\n", errc::bad_request);
}

TEST_CASE("request head: malformed attribute values") {
  require_head_error("ECHO 5 id=abc\n", errc::bad_request);
  require_head_error("ECHO 5 id=\n", errc::bad_request);
  require_head_error("ECHO 5 id=-1\n", errc::bad_request);
  require_head_error("ECHO 5 id=+1\n", errc::bad_request);
  require_head_error("ECHO 5 id=1x\n", errc::bad_request);
  require_head_error("ECHO 5 id=18446744073709551616\n", errc::bad_request);
  require_head_error("ECHO 5 id=1 id=2\n", errc::bad_request);
  require_head_error("ECHO 5 deadline-ms=4294967296\n", errc::bad_request);
  require_head_error("ECHO 5 deadline-ms=1.5\n", errc::bad_request);
  require_head_error("ECHO 5 deadline-ms=\n", errc::bad_request);
  require_head_error("ECHO 5 deadline-ms=1 deadline-ms=1\n", errc::bad_request);
}

TEST_CASE("request head: length limits") {
  SECTION("overflowing length is too large, whatever max_body is") {
    require_head_error("ECHO 99999999999999999999999\n", errc::too_large);
    wire::limits huge;
    huge.max_body = std::numeric_limits<std::size_t>::max();
    require_head_error("ECHO 99999999999999999999999\n", errc::too_large, huge);
    require_head_error("ECHO 18446744073709551616\n", errc::too_large, huge);
    require_head_error("ECHO 000000000000000000005\n", errc::too_large, huge);
    const auto max = head("ECHO 18446744073709551615\n", huge);
    REQUIRE(max.state == status::complete);
    CHECK(max.value.length == std::numeric_limits<std::size_t>::max());
    const auto padded = head("ECHO 00000000000000000005\n", huge);
    REQUIRE(padded.state == status::complete);
    CHECK(padded.value.length == 5u);
  }
  SECTION("1 GB over a 16 MiB limit, refused before the LF arrives") {
    const auto h = head("ECHO 1073741824\n");
    REQUIRE(h.state == status::error);
    CHECK(h.error == errc::too_large);
    CHECK(h.detail == "length exceeds max_body");
    const auto early = head("ECHO 107374182");
    REQUIRE(early.state == status::error);
    CHECK(early.error == errc::too_large);
    CHECK(head("ECHO 1677721").state == status::need_more);
    require_head_error("ECHO 1073741824\n", errc::too_large);
  }
  SECTION("exactly at and one above the default max_body") {
    const auto at = head("ECHO 16777216\n");
    REQUIRE(at.state == status::complete);
    CHECK(at.value.length == 16777216u);
    require_head_error("ECHO 16777217\n", errc::too_large);
  }
  SECTION("exactly at and one above a small max_body") {
    wire::limits lim;
    lim.max_body = 10;
    const auto at = head("ECHO 10\n", lim);
    REQUIRE(at.state == status::complete);
    CHECK(at.value.length == 10u);
    require_head_error("ECHO 11\n", errc::too_large, lim);
    require_head_error("ECHO 100\n", errc::too_large, lim);
  }
  SECTION("max_body of zero") {
    wire::limits lim;
    lim.max_body = 0;
    CHECK(head("ECHO 0\n", lim).state == status::complete);
    require_head_error("ECHO 1\n", errc::too_large, lim);
  }
}

TEST_CASE("request head: line limit") {
  SECTION("1 MiB of 'A' without a newline") {
    const std::string flood(1u << 20, 'A');
    const auto h = head(flood);
    REQUIRE(h.state == status::error);
    CHECK(h.error == errc::too_large);
    CHECK(h.detail == "command line longer than max_line");
    const auto r = req(flood);
    REQUIRE(r.state == status::error);
    CHECK(r.error == errc::too_large);
  }
  SECTION("refused as soon as max_line bytes are buffered") {
    const std::string at(default_limits.max_line, 'A');
    CHECK(head(std::string_view(at).substr(0, at.size() - 1)).state == status::need_more);
    const auto h = head(at);
    REQUIRE(h.state == status::error);
    CHECK(h.error == errc::too_large);
  }
  SECTION("exactly at and one above a small max_line, LF included") {
    wire::limits lim;
    lim.max_line = 16;
    const std::string at = "ECHO 5 k=" + std::string(6, 'v') + "\n";
    REQUIRE(at.size() == 16);
    const auto ok = head(at, lim);
    REQUIRE(ok.state == status::complete);
    CHECK(ok.size == 16);
    require_head_error("ECHO 5 k=" + std::string(7, 'v') + "\n", errc::too_large, lim);
    // CR counts toward the line: the same line in CRLF form is one byte over.
    require_head_error("ECHO 5 k=" + std::string(6, 'v') + "\r\n", errc::too_large, lim);
    const auto crlf = head("ECHO 5 k=" + std::string(5, 'v') + "\r\n", lim);
    CHECK(crlf.state == status::complete);
  }
}

TEST_CASE("request: a valid frame is need_more at every prefix") {
  const std::vector<std::string> frames{
      "PING\n",
      "ECHO json 5 id=7 deadline-ms=9\r\nhello",
      "STRING\nAdditional data.\n",
      "\n\nECHO 3\na\nb",
  };
  for (const auto& f : frames) {
    INFO(f);
    REQUIRE(req(f).state == status::complete);
    REQUIRE(req(f).size == f.size());
    check_prefixes_agree(f, [](std::string_view b) { return req(b); });
  }
}

namespace {

struct seen_request {
  std::string name;
  wire::encoding enc;
  std::string body;
  std::optional<std::uint64_t> id;
  std::optional<std::uint32_t> deadline_ms;
  bool line_form;
  bool operator==(const seen_request&) const = default;
};

std::ostream& operator<<(std::ostream& os, const seen_request& r) {
  return os << r.name << " " << wire::to_string(r.enc) << " [" << r.body
            << "] id=" << (r.id ? std::to_string(*r.id) : "-") << " line=" << r.line_form;
}

// Builds the stream from wire's own formatters where they exist, so the test also pins the
// formatters to the parser; raw text covers what formatters never emit (CRLF, blank lines).
struct request_stream {
  std::string bytes;
  std::vector<seen_request> expected;

  request_stream() {
    const auto framed = [&](std::string_view name, wire::encoding enc, std::string_view body,
                            std::optional<std::uint64_t> id = {},
                            std::optional<std::uint32_t> deadline = {}) {
      wire::append_request(bytes, name, enc, body, id, deadline);
      expected.push_back({std::string(name), enc, std::string(body), id, deadline, false});
    };
    framed("ECHO", wire::encoding::bin, "hello");
    wire::append_line_request(bytes, "STRING", "Additional data.");
    expected.push_back({"STRING", wire::encoding::bin, "Additional data.", {}, {}, true});
    framed("BLOB", wire::encoding::bin, "a\nb\r\n\0\xff\n"sv, 42);
    bytes += "\n\r\n";  // blank lines between requests, as nc users send them
    framed("JSON.get", wire::encoding::json, R"({"k":[1,2]})", {}, 250);
    bytes += "PING\r\n";
    expected.push_back({"PING", wire::encoding::bin, "", {}, {}, false});
    bytes += "STRING\r\nwith crlf\r\n";
    expected.push_back({"STRING", wire::encoding::bin, "with crlf", {}, {}, true});
    framed("EMPTY", wire::encoding::bin, "", 0, 0);
    bytes += "ECHO 3 trace=abc id=9\nxyz";
    expected.push_back({"ECHO", wire::encoding::bin, "xyz", 9, {}, false});
    framed("a/b:c", wire::encoding::json, "{}", std::numeric_limits<std::uint64_t>::max());
    bytes += "STRING\n\n";
    expected.push_back({"STRING", wire::encoding::bin, "", {}, {}, true});
    framed("LAST", wire::encoding::bin, std::string(300, 'z'));
  }
};

// A receive loop as a session would run it: append, parse all complete frames, drop them.
class receiver {
 public:
  void feed(std::string_view chunk) {
    buf_ += chunk;
    for (;;) {
      const auto r = parse_request(buf_, default_limits, string_is_line_command);
      REQUIRE(r.state != status::error);
      if (r.state == status::need_more) return;
      REQUIRE(r.size > 0);
      got.push_back({std::string(r.value.head.name), r.value.head.enc, std::string(r.value.body),
                     r.value.head.id, r.value.head.deadline_ms, r.value.line_form});
      buf_.erase(0, r.size);
    }
  }
  [[nodiscard]] bool drained() const { return buf_.empty(); }
  std::vector<seen_request> got;

 private:
  std::string buf_;
};

}  // namespace

TEST_CASE("request stream: same requests at every split point") {
  const request_stream stream;
  REQUIRE(stream.expected.size() == 11);
  const std::string_view all = stream.bytes;

  SECTION("all at once") {
    receiver rx;
    rx.feed(all);
    CHECK(rx.got == stream.expected);
    CHECK(rx.drained());
  }
  SECTION("split in two at every position") {
    for (std::size_t split = 0; split <= all.size(); ++split) {
      INFO("split at " << split);
      receiver rx;
      rx.feed(all.substr(0, split));
      rx.feed(all.substr(split));
      REQUIRE(rx.got == stream.expected);
      REQUIRE(rx.drained());
    }
  }
  SECTION("one byte at a time") {
    receiver rx;
    for (const char c : all) rx.feed(std::string_view(&c, 1));
    CHECK(rx.got == stream.expected);
    CHECK(rx.drained());
  }
  SECTION("random chunk sizes") {
    std::mt19937 rng(20240611);  // fixed seed: a failure must reproduce
    std::uniform_int_distribution<std::size_t> chunk(1, 40);
    for (int round = 0; round < 500; ++round) {
      INFO("round " << round);
      receiver rx;
      for (std::size_t at = 0; at < all.size();) {
        const std::size_t n = std::min(chunk(rng), all.size() - at);
        rx.feed(all.substr(at, n));
        at += n;
      }
      REQUIRE(rx.got == stream.expected);
      REQUIRE(rx.drained());
    }
  }
}

TEST_CASE("parse_line") {
  const auto l = wire::parse_line("hello\r\nrest", 100);
  REQUIRE(l.state == status::complete);
  CHECK(l.value == "hello");
  CHECK(l.size == 7);

  const auto bare = wire::parse_line("a\rb\n", 100);
  REQUIRE(bare.state == status::complete);
  CHECK(bare.value == "a\rb");  // line bodies are data: only the CR before LF is framing

  CHECK(wire::parse_line("", 100).state == status::need_more);
  CHECK(wire::parse_line("abc", 4).state == status::need_more);
  CHECK(wire::parse_line("abcd", 4).state == status::error);
  CHECK(wire::parse_line("abc\n", 4).state == status::complete);
  CHECK(wire::parse_line("abcd\n", 4).state == status::error);
}

TEST_CASE("formatting requests") {
  std::string out;
  wire::append_request(out, "ECHO", wire::encoding::bin, "hello");
  CHECK(out == "ECHO 5\nhello");

  out.clear();
  wire::append_request(out, "ECHO", wire::encoding::json, "{}");
  CHECK(out == "ECHO json 2\n{}");

  out.clear();
  wire::append_request(out, "ECHO", wire::encoding::bin, "hello", 17, 250);
  CHECK(out == "ECHO 5 id=17 deadline-ms=250\nhello");

  out.clear();
  wire::append_request(out, "NOP", wire::encoding::bin, "", {}, 0);
  CHECK(out == "NOP 0 deadline-ms=0\n");

  out = "keep:";
  wire::append_line_request(out, "STRING", "Additional data.");
  CHECK(out == "keep:STRING\nAdditional data.\n");
}

TEST_CASE("formatting replies") {
  std::string out;
  wire::append_ok(out, "hello");
  CHECK(out == "OK 5\nhello\n");

  out.clear();
  wire::append_ok(out, "", 7);
  CHECK(out == "OK 0 id=7\n\n");

  out.clear();
  wire::append_error(out, errc::too_large, "message text");
  CHECK(out == "ERR too-large 12\nmessage text\n");

  out.clear();
  wire::append_error(out, errc::unknown_command, "no FOO", 3);
  CHECK(out == "ERR unknown-command 6 id=3\nno FOO\n");

  out.clear();
  wire::append_error(out, errc::timeout, "x");
  CHECK(out == "ERR internal 1\nx\n");

  out = "Thank you.\n";
  wire::append_line(out, "line");
  CHECK(out == "Thank you.\nline\n");
}

TEST_CASE("request round trip through format and parse") {
  const std::string body = "bin\0ary\nbody"s;
  std::string out;
  wire::append_request(out, "x.y/z", wire::encoding::json, body, 123456789012345ull, 4000000000u);
  const auto r = req(out);
  REQUIRE(r.state == status::complete);
  CHECK(r.size == out.size());
  CHECK(r.value.head.name == "x.y/z");
  CHECK(r.value.head.enc == wire::encoding::json);
  CHECK(r.value.head.length == body.size());
  CHECK(r.value.head.id == 123456789012345ull);
  CHECK(r.value.head.deadline_ms == 4000000000u);
  CHECK(r.value.body == body);
}

TEST_CASE("reply round trips") {
  SECTION("OK with binary body") {
    const std::string body = "a\n\0b"s;
    std::string out;
    wire::append_ok(out, body);
    const auto r = wire::parse_reply(out, default_limits);
    REQUIRE(r.state == status::complete);
    CHECK(r.size == out.size());
    CHECK(r.value.ok);
    CHECK(r.value.code.empty());
    CHECK(r.value.body == body);
    CHECK_FALSE(r.value.id);
  }
  SECTION("OK with id") {
    std::string out;
    wire::append_ok(out, "hi", std::numeric_limits<std::uint64_t>::max());
    const auto r = wire::parse_reply(out, default_limits);
    REQUIRE(r.state == status::complete);
    CHECK(r.value.id == std::numeric_limits<std::uint64_t>::max());
    CHECK(r.value.body == "hi");
  }
  SECTION("ERR with id, for every wire code") {
    for (const errc e : {errc::bad_request, errc::unknown_command, errc::bad_body, errc::too_large,
                         errc::internal, errc::deadline_exceeded, errc::busy, errc::unauthorized}) {
      std::string out;
      wire::append_error(out, e, "why it failed", 99);
      const auto r = wire::parse_reply(out, default_limits);
      REQUIRE(r.state == status::complete);
      CHECK(r.size == out.size());
      CHECK_FALSE(r.value.ok);
      CHECK(r.value.code == cmdwire::wire_name(e));
      CHECK(cmdwire::errc_from_wire_name(r.value.code) == e);
      CHECK(r.value.body == "why it failed");
      CHECK(r.value.id == 99u);
    }
  }
  SECTION("replies pipelined back to back, split everywhere") {
    std::string all;
    wire::append_ok(all, "one", 1);
    wire::append_error(all, errc::bad_body, "two\nlines", 2);
    wire::append_ok(all, "", 3);
    wire::append_ok(all, "four\n", 4);
    for (std::size_t split = 0; split <= all.size(); ++split) {
      INFO("split at " << split);
      std::string buf = all.substr(0, split);
      std::vector<std::uint64_t> ids;
      std::vector<std::string> bodies;
      const auto drain = [&] {
        for (;;) {
          const auto r = wire::parse_reply(buf, default_limits);
          REQUIRE(r.state != status::error);
          if (r.state == status::need_more) return;
          ids.push_back(r.value.id.value());
          bodies.emplace_back(r.value.body);
          buf.erase(0, r.size);
        }
      };
      drain();
      buf += all.substr(split);
      drain();
      REQUIRE(buf.empty());
      REQUIRE(ids == std::vector<std::uint64_t>{1, 2, 3, 4});
      REQUIRE(bodies == std::vector<std::string>{"one", "two\nlines", "", "four\n"});
    }
  }
}

TEST_CASE("reply parsing: incomplete and malformed") {
  const auto parse = [](std::string_view b) { return wire::parse_reply(b, default_limits); };
  const auto require_error = [&](std::string_view buf, errc code,
                                 const wire::limits& lim = default_limits) {
    INFO("input: " << std::string(buf));
    const auto r = wire::parse_reply(buf, lim);
    REQUIRE(r.state == status::error);
    REQUIRE(r.error == code);
    REQUIRE_FALSE(r.detail.empty());
  };

  CHECK(parse("").state == status::need_more);
  CHECK(parse("OK 5\nhello").state == status::need_more);
  CHECK(parse("ERR too-large 3\nabc").state == status::need_more);
  check_prefixes_agree("OK 5 id=1\nhello\n", parse);
  check_prefixes_agree("ERR busy 4\nfull\n", parse);

  require_error("OK 5\nhelloX", errc::protocol_error);
  require_error("OK 5\nhello\r\n", errc::protocol_error);
  require_error("HTTP/1.1 200 OK\r\n", errc::protocol_error);
  require_error("H", errc::protocol_error);  // a stray peer is refused at its first byte
  require_error("OKAY 5\n", errc::protocol_error);
  require_error("OK\n", errc::protocol_error);
  require_error("OK \n", errc::protocol_error);
  require_error("OK  5\n", errc::protocol_error);
  require_error("OK 5 \n", errc::protocol_error);
  require_error("OK -1\n", errc::protocol_error);
  require_error("OK +1\n", errc::protocol_error);
  require_error("OK 5x\n", errc::protocol_error);
  require_error("OK 5 id=x\nhello\n", errc::protocol_error);
  require_error("OK 5 id=1 id=1\nhello\n", errc::protocol_error);
  require_error("OK 5 junk\nhello\n", errc::protocol_error);
  require_error("ERR 5\nhello\n", errc::protocol_error);
  require_error("ERR  5\nhello\n", errc::protocol_error);
  require_error("ERR bad\x01 5\nhello\n", errc::protocol_error);
  require_error("OK 99999999999999999999999\n", errc::too_large);

  const auto crlf = parse("OK 2 trace=x\r\nhi\n");
  REQUIRE(crlf.state == status::complete);
  CHECK(crlf.value.body == "hi");
  CHECK_FALSE(crlf.value.id);

  SECTION("body limit, at and one above") {
    wire::limits lim;
    lim.max_body = 4;
    const auto at = wire::parse_reply("OK 4\nabcd\n", lim);
    REQUIRE(at.state == status::complete);
    CHECK(at.value.body == "abcd");
    require_error("OK 5\n", errc::too_large, lim);
    require_error("ERR internal 5\n", errc::too_large, lim);
  }
  SECTION("head limit, at and one above") {
    wire::limits lim;
    lim.max_line = 10;
    const auto at = wire::parse_reply("OK 1 id=9\nx\n", lim);
    REQUIRE(at.state == status::complete);
    CHECK(at.value.id == 9u);
    require_error("OK 1 id=10\nx\n", errc::too_large, lim);
    require_error("OK 1 id=10", errc::too_large, lim);
    CHECK(wire::parse_reply("OK 1 id=1", lim).state == status::need_more);
  }
}

TEST_CASE("line replies") {
  const auto parse = [](std::string_view b) { return wire::parse_line_reply(b, default_limits); };

  const auto thanks = parse("Thank you.\nnext");
  REQUIRE(thanks.state == status::complete);
  CHECK(thanks.value.ok);
  CHECK(thanks.value.body == "Thank you.");
  CHECK(thanks.size == 11);

  const auto crlf = parse("Thank you.\r\n");
  REQUIRE(crlf.state == status::complete);
  CHECK(crlf.value.body == "Thank you.");
  CHECK(crlf.size == 12);

  const auto err = parse("ERR unknown-command 3 id=5\nfoo\n");
  REQUIRE(err.state == status::complete);
  CHECK_FALSE(err.value.ok);
  CHECK(err.value.code == "unknown-command");
  CHECK(err.value.body == "foo");
  CHECK(err.value.id == 5u);
  CHECK(err.size == 31);

  const auto errorish = parse("ERROR is just text\n");
  REQUIRE(errorish.state == status::complete);
  CHECK(errorish.value.ok);
  CHECK(errorish.value.body == "ERROR is just text");

  const auto err_alone = parse("ERR\n");
  REQUIRE(err_alone.state == status::complete);
  CHECK(err_alone.value.body == "ERR");

  CHECK(parse("").state == status::need_more);
  CHECK(parse("E").state == status::need_more);
  CHECK(parse("ERR").state == status::need_more);
  CHECK(parse("ERR busy 4\nfu").state == status::need_more);
  CHECK(parse("Thank").state == status::need_more);
  check_prefixes_agree("ERR busy 4\nfull\n", parse);
  check_prefixes_agree("Thank you.\n", parse);

  const auto bad = parse("ERR busy 4\nfullX");
  REQUIRE(bad.state == status::error);
  CHECK(bad.error == errc::protocol_error);

  wire::limits lim;
  lim.max_line = 8;
  CHECK(wire::parse_line_reply("1234567\n", lim).state == status::complete);
  const auto over = wire::parse_line_reply("12345678", lim);
  REQUIRE(over.state == status::error);
  CHECK(over.error == errc::too_large);
  CHECK_FALSE(over.detail.empty());
}

TEST_CASE("encoding names") {
  CHECK(wire::to_string(wire::encoding::bin) == "bin");
  CHECK(wire::to_string(wire::encoding::json) == "json");
}

TEST_CASE("valid_command_name") {
  CHECK(wire::valid_command_name("STRING"));
  CHECK(wire::valid_command_name("a-Z_0.9:x/y"));
  CHECK(wire::valid_command_name(std::string(64, 'x')));
  CHECK_FALSE(wire::valid_command_name(std::string(65, 'x')));
  CHECK_FALSE(wire::valid_command_name(""));
  CHECK_FALSE(wire::valid_command_name("A B"));
  CHECK_FALSE(wire::valid_command_name("A\0B"sv));
  CHECK_FALSE(wire::valid_command_name("CAF\xC3\xA9"));
  CHECK_FALSE(wire::valid_command_name("A\n"));
  CHECK_FALSE(wire::valid_command_name("A=B"));
}

// ---- Decisions docs/PROTOCOL.md states (issue 9): each is pinned here.

TEST_CASE("protocol: literals are case-sensitive (%s\"...\" in the ABNF)") {
  require_head_error("PING JSON\n", errc::bad_request);
  require_head_error("PING Bin 0\n", errc::bad_request);
  // A name is case-sensitive too: `ping` is another (unregistered) name, not PING.
  const auto lower = head("ping\n");
  REQUIRE(lower.state == status::complete);
  CHECK(lower.value.name == "ping");
  for (const char* reply : {"ok 4\nPONG\n", "Ok 4\nPONG\n", "err busy 1\nx\n", "Err busy 1\nx\n"}) {
    INFO(reply);
    CHECK(wire::parse_reply(reply, default_limits).state == status::error);
  }
}

TEST_CASE("protocol: id= is a number, echoed without leading zeros") {
  const auto h = head("ECHO 0 id=007\n");
  REQUIRE(h.state == status::complete);
  REQUIRE(h.value.id == 7u);
  std::string out;
  wire::append_ok(out, "", h.value.id);
  CHECK(out == "OK 0 id=7\n\n");
}

TEST_CASE("protocol: unknown attributes need VCHAR values, other bytes are refused") {
  CHECK(head("ECHO 0 note=~!{}[]\n").state == status::complete);
  require_head_error("ECHO 0 note=caf\xC3\xA9\n", errc::bad_request);
  require_head_error("ECHO 0 note=a\tb\n", errc::bad_request);
}

TEST_CASE("protocol: after a line-form request only ERR switches to framed parsing") {
  // A line command's answer may itself start with "OK 5": it is still one bare line.
  const auto r = wire::parse_line_reply("OK 5\nhello\n", default_limits);
  REQUIRE(r.state == status::complete);
  CHECK(r.value.ok);
  CHECK(r.value.body == "OK 5");
  CHECK(r.size == 5);
}

TEST_CASE("has_feature finds a token, or a token=value, in a HELLO feature list") {
  CHECK(wire::has_feature("ooo", "ooo"));
  CHECK(wire::has_feature("zstd ooo", "ooo"));
  CHECK(wire::has_feature("ooo max-concurrent=64", "max-concurrent"));
  CHECK_FALSE(wire::has_feature("", "ooo"));
  CHECK_FALSE(wire::has_feature("oooo", "ooo"));
  CHECK_FALSE(wire::has_feature("oo", "ooo"));
  CHECK_FALSE(wire::has_feature("max-concurrent", "max"));
  CHECK_FALSE(wire::has_feature("ooo-x", "ooo"));
}
