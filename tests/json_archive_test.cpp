// Tests for detail/json_archive.hpp through the cereal codec: the JSON mapping of every std type
// cmdwire supports (PROTOCOL.md §6), the refusals and their messages, the limits, the binary
// format left as it was, and STRUCT json end to end against a running server.
#include "cmdwire/detail/json_archive.hpp"

#include <array>
#include <catch2/catch.hpp>
#include <cereal/archives/portable_binary.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/memory.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/vector.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cmdwire/codec.hpp"
#include "demo/demo_commands.hpp"
#include "support/test_server.hpp"

namespace {

using cmdwire::codec;
using cmdwire::decode_limits;
using cmdwire::errc;
using cmdwire::result;
using cmdwire::wire::encoding;
namespace demo = cmdwire::demo;

enum class colour : std::uint8_t { red = 1, green = 2 };

/// Every std type the mapping names, with defaults that differ from zero so that "absent keeps
/// the default" shows.
struct gadget {
  bool on = true;
  std::int8_t tiny = -3;
  std::uint8_t small = 3;
  std::int32_t weight = 7;
  std::uint64_t big = 1;
  float ratio_f = 0.25F;
  double ratio = 0.5;
  std::string name = "default";
  colour hue = colour::green;
  std::vector<bool> flags{true, false};
  std::vector<std::string> tags;
  std::array<std::int32_t, 2> pair_of{1, 2};
  std::map<std::string, std::int32_t> counts;
  std::unordered_map<std::string, std::string> labels;
  std::map<std::int32_t, std::string> by_id;
  std::multimap<std::string, std::int32_t> multi;
  std::optional<std::int32_t> maybe;
  std::shared_ptr<std::string> shared;
  std::unique_ptr<gadget> child;
  std::set<std::int32_t> ids;                // cereal's generic path: size tag
  std::pair<std::int32_t, std::string> duo;  // cereal's names: first, second

  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(on), CEREAL_NVP(tiny), CEREAL_NVP(small), CEREAL_NVP(weight), CEREAL_NVP(big),
       CEREAL_NVP(ratio_f), CEREAL_NVP(ratio), CEREAL_NVP(name), CEREAL_NVP(hue), CEREAL_NVP(flags),
       CEREAL_NVP(tags), CEREAL_NVP(pair_of), CEREAL_NVP(counts), CEREAL_NVP(labels),
       CEREAL_NVP(by_id), CEREAL_NVP(multi), CEREAL_NVP(maybe), CEREAL_NVP(shared),
       CEREAL_NVP(child), CEREAL_NVP(ids), CEREAL_NVP(duo));
  }
};

/// Fields without names: cereal calls them value0, value1...
struct unnamed {
  std::int32_t a = 0;
  std::string b;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(a, b);
  }
};

struct empty {
  template <class Archive>
  void serialize(Archive&) {}
};

struct versioned {
  std::int32_t x = 0;
  template <class Archive>
  void serialize(Archive& ar, std::uint32_t) {
    ar(CEREAL_NVP(x));
  }
};

template <class T>
std::string to_json(const T& v) {
  std::string out;
  codec<T>::encode(v, encoding::json, out);
  return out;
}

template <class T>
struct decoded {
  T value{};
  result<void> status;
};

template <class T>
decoded<T> from_json(std::string_view body, decode_limits lim = {}) {
  decoded<T> d;
  d.status = codec<T>::decode(body, encoding::json, d.value, lim);
  return d;
}

void require_ok(const result<void>& r) {
  if (!r) FAIL("decode failed: " << r.error().message);
}

/// The decode failed with bad_body and exactly this message.
void require_refused(const result<void>& r, std::string_view message) {
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == cmdwire::make_error_code(errc::bad_body));
  CHECK(r.error().message == message);
}

demo::ComplexData node(std::int64_t n, std::string s, std::map<std::string, std::int32_t> m,
                       std::vector<std::uint8_t> p) {
  demo::ComplexData d;
  d.n = n;
  d.s = std::move(s);
  d.m = std::move(m);
  d.p = std::move(p);
  return d;
}

}  // namespace

CEREAL_CLASS_VERSION(versioned, 2);

TEST_CASE("ComplexData: maps are objects, a null child is null, a present one the value itself",
          "[json_archive]") {
  demo::ComplexData root = node(1, "root", {{"a", 1}, {"b", -2}}, {1, 2});
  root.c = std::make_unique<demo::ComplexData>(node(2, "child", {}, {}));
  const std::string json = to_json(root);
  CHECK(json == R"({"n":1,"s":"root","m":{"a":1,"b":-2},"p":[1,2],)"
                R"("c":{"n":2,"s":"child","m":{},"p":[],"c":null}})");

  const auto back = from_json<demo::ComplexData>(json);
  require_ok(back.status);
  CHECK(back.value.n == 1);
  CHECK(back.value.m == root.m);
  CHECK(back.value.p == root.p);
  REQUIRE(back.value.c != nullptr);
  CHECK(back.value.c->s == "child");
  CHECK(back.value.c->c == nullptr);
  CHECK(to_json(back.value) == json);

  // A longer chain with escapes in strings and keys round trips too.
  demo::ComplexData chain = demo::make_sample(5, 3);
  chain.s = "quote \" backslash \\ newline \n caf\xc3\xa9";
  chain.m["{\"}"] = std::numeric_limits<std::int32_t>::min();
  chain.n = std::numeric_limits<std::int64_t>::min();
  const auto again = from_json<demo::ComplexData>(to_json(chain));
  require_ok(again.status);
  CHECK(to_json(again.value) == to_json(chain));
  CHECK(demo::summarize(again.value) == demo::summarize(chain));
}

TEST_CASE("every supported std type has its documented JSON", "[json_archive]") {
  gadget g;
  g.tags = {"x", "y"};
  g.counts = {{"k", 1}};
  g.labels = {{"only", "one"}};
  g.by_id = {{2, "two"}, {1, "one"}};
  g.multi = {{"d", 1}, {"d", 2}};
  g.maybe = 5;
  g.shared = std::make_shared<std::string>("s");
  g.child = std::make_unique<gadget>();
  g.ids = {3, 1};
  g.duo = {9, "nine"};
  g.ratio = std::numeric_limits<double>::infinity();
  const std::string json = to_json(g);
  const std::string defaults =
      R"("on":true,"tiny":-3,"small":3,"weight":7,"big":1,"ratio_f":0.25,"ratio":0.5,)"
      R"("name":"default","hue":2,"flags":[true,false],"tags":[],"pair_of":[1,2],"counts":{},)"
      R"("labels":{},"by_id":[],"multi":[],"maybe":null,"shared":null,"child":null,"ids":[],)"
      R"("duo":{"first":0,"second":""})";
  CHECK(json ==
        R"({"on":true,"tiny":-3,"small":3,"weight":7,"big":1,"ratio_f":0.25,"ratio":Infinity,)"
        R"("name":"default","hue":2,"flags":[true,false],"tags":["x","y"],"pair_of":[1,2],)"
        R"("counts":{"k":1},"labels":{"only":"one"},"by_id":[[1,"one"],[2,"two"]],)"
        R"("multi":[["d",1],["d",2]],"maybe":5,"shared":"s","child":{)" +
            defaults + R"(},"ids":[1,3],"duo":{"first":9,"second":"nine"}})");

  const auto back = from_json<gadget>(json);
  require_ok(back.status);
  CHECK(back.value.tags == g.tags);
  CHECK(back.value.counts == g.counts);
  CHECK(back.value.labels == g.labels);
  CHECK(back.value.by_id == g.by_id);
  CHECK(back.value.multi == g.multi);
  CHECK(back.value.maybe == g.maybe);
  REQUIRE(back.value.shared != nullptr);
  CHECK(*back.value.shared == "s");
  REQUIRE(back.value.child != nullptr);
  CHECK(back.value.child->child == nullptr);
  CHECK(back.value.ids == g.ids);
  CHECK(back.value.duo == g.duo);
  CHECK(std::isinf(back.value.ratio));
  CHECK(to_json(back.value) == json);

  CHECK(to_json(std::numeric_limits<double>::quiet_NaN()) == "NaN");
  CHECK(std::isnan(from_json<double>("NaN").value));
  CHECK(to_json(unnamed{4, "four"}) == R"({"value0":4,"value1":"four"})");
  CHECK(to_json(empty{}) == "{}");
  require_ok(from_json<empty>("{}").status);
  CHECK(to_json(std::vector<std::int32_t>{1, 2}) == "[1,2]");  // top level: the value itself
}

TEST_CASE("absent fields keep the default-constructed value", "[json_archive]") {
  const auto empty_object = from_json<gadget>("{}");
  require_ok(empty_object.status);
  CHECK(to_json(empty_object.value) == to_json(gadget{}));

  const auto some = from_json<gadget>(R"({"weight":9,"child":{"name":"kid"}})");
  require_ok(some.status);
  CHECK(some.value.weight == 9);
  CHECK(some.value.name == "default");
  CHECK(some.value.flags == std::vector<bool>{true, false});
  REQUIRE(some.value.child != nullptr);
  CHECK(some.value.child->name == "kid");
  CHECK(some.value.child->weight == 7);  // the child was default-constructed too

  const auto data = from_json<demo::ComplexData>(R"({"s":"only s"})");
  require_ok(data.status);
  CHECK(data.value.n == 0);
  CHECK(data.value.s == "only s");
  CHECK(data.value.c == nullptr);

  const auto both = from_json<unnamed>(R"({"value1":"b","value0":1})");
  require_ok(both.status);
  CHECK(both.value.b == "b");
  // A field without a name cannot be told apart from a typo: it must be there.
  require_refused(from_json<unnamed>(R"({"value0":1})").status,
                  "$.value1: missing (a field without a name must be present)");
  // A versioned type's version is written as cereal names it, and cannot be left out.
  CHECK(to_json(versioned{3}) == R"({"cereal_class_version":2,"x":3})");
  require_ok(from_json<versioned>(R"({"cereal_class_version":2,"x":3})").status);
  require_refused(from_json<versioned>(R"({"x":3})").status,
                  R"($: missing field "cereal_class_version" (the type is versioned))");
}

TEST_CASE("unknown and duplicate fields are refused by name", "[json_archive]") {
  require_refused(from_json<gadget>(R"({"weight":1,"colour":"red"})").status,
                  R"(unknown field "colour" in object at $)");
  require_refused(from_json<gadget>(R"({"child":{"child":{"colour":1}}})").status,
                  R"(unknown field "colour" in object at $.child.child)");
  require_refused(from_json<demo::ComplexData>(R"({"n":1,"n":2})").status,
                  R"(duplicate field "n" in object at $)");
  require_refused(from_json<empty>(R"({"x":1})").status, R"(unknown field "x" in object at $)");
  require_refused(from_json<demo::ComplexData>(R"({"m":{"a":1,"a":2}})").status,
                  "$.m.a: duplicate key");
  require_refused(from_json<gadget>(R"({"by_id":[[1,"a"],[1,"b"]]})").status,
                  "$.by_id[1]: duplicate key");
  // A multimap takes repeated keys.
  const auto multi = from_json<gadget>(R"({"multi":[["k",1],["k",1]]})");
  require_ok(multi.status);
  CHECK(multi.value.multi.size() == 2);
  // Long names are cut short in the message.
  const std::string long_name(100, 'z');
  const auto r = from_json<empty>(R"({")" + long_name + R"(":1})");
  require_refused(
      r.status, R"(unknown field ")" + std::string(40, 'z') + R"(..." (100 bytes) in object at $)");
}

TEST_CASE("wrong types are refused with the field's path and the expected type", "[json_archive]") {
  const auto [body, message] = GENERATE(table<std::string, std::string>({
      {R"({"weight":"heavy"})", "$.weight: expected integer, got string"},
      {R"({"weight":1.5})", "$.weight: expected integer, got number 1.5"},
      {R"({"on":1})", "$.on: expected boolean, got integer"},
      {R"({"name":null})", "$.name: expected string, got null"},
      {R"({"ratio":"x"})", "$.ratio: expected number, got string"},
      {R"({"tags":"x"})", "$.tags: expected array, got string"},
      {R"({"tags":["x",2]})", "$.tags[1]: expected string, got integer"},
      {R"({"counts":[]})", "$.counts: expected object, got array"},
      {R"({"counts":{"a b":"x"}})", R"($.counts["a b"]: expected integer, got string)"},
      {R"({"labels":{"k":7}})", "$.labels.k: expected string, got integer"},
      {R"({"by_id":[[1]]})", "$.by_id[0]: expected a [key, value] pair, got an array of 1"},
      {R"({"by_id":[{"key":1,"value":"a"}]})",
       "$.by_id[0]: expected a [key, value] pair, got object"},
      {R"({"by_id":[["1","a"]]})", "$.by_id[0][0]: expected integer, got string"},
      {R"({"pair_of":[1,2,3]})", "$.pair_of: expected an array of 2 elements, got 3"},
      {R"({"child":5})", "$.child: expected object, got integer"},
      {R"({"child":{"maybe":"x"}})", "$.child.maybe: expected integer, got string"},
      {R"({"ids":{"a":1}})", "$.ids: expected array, got object"},
      {R"({"ids":[1,"x"]})", "$.ids[1]: expected integer, got string"},
      {R"({"duo":{"first":"x"}})", "$.duo.first: expected integer, got string"},
      {R"({"hue":"red"})", "$.hue: expected integer, got string"},
      {"[]", "$: expected object, got array"},
      {"null", "$: expected object, got null"},
  }));
  CAPTURE(body);
  require_refused(from_json<gadget>(body).status, message);
}

TEST_CASE("integers out of the target's range are refused, not wrapped", "[json_archive]") {
  const auto [body, message] = GENERATE(table<std::string, std::string>({
      {R"({"weight":2147483648})", "$.weight: integer 2147483648 is out of range for int32"},
      {R"({"weight":-2147483649})", "$.weight: integer -2147483649 is out of range for int32"},
      {R"({"small":256})", "$.small: integer 256 is out of range for uint8"},
      {R"({"small":-1})", "$.small: integer -1 is out of range for uint8"},
      {R"({"tiny":-129})", "$.tiny: integer -129 is out of range for int8"},
      {R"({"big":-1})", "$.big: integer -1 is out of range for uint64"},
      {R"({"big":18446744073709551616})",
       "$.big: integer 1.8446744073709552e+19 is out of range for uint64"},
      {R"({"hue":300})", "$.hue: integer 300 is out of range for uint8"},
      {R"({"ratio_f":1e39})", "$.ratio_f: number 1e+39 is out of range for float"},
      {R"({"counts":{"a":3000000000}})",
       "$.counts.a: integer 3000000000 is out of range for int32"},
  }));
  CAPTURE(body);
  require_refused(from_json<gadget>(body).status, message);

  require_refused(from_json<demo::ComplexData>(R"({"p":[1,256]})").status,
                  "$.p[1]: integer 256 is out of range for uint8");
  require_refused(from_json<demo::ComplexData>(R"({"n":9223372036854775808})").status,
                  "$.n: integer 9223372036854775808 is out of range for int64");
  // The bounds themselves fit, and an integer written as an exact double is that integer.
  const auto edges = from_json<gadget>(
      R"({"weight":-2147483648,"small":255,"big":18446744073709551615,"tiny":1e2})");
  require_ok(edges.status);
  CHECK(edges.value.weight == std::numeric_limits<std::int32_t>::min());
  CHECK(edges.value.small == 255);
  CHECK(edges.value.big == std::numeric_limits<std::uint64_t>::max());
  CHECK(edges.value.tiny == 100);
}

TEST_CASE("null is taken only by pointers and optionals", "[json_archive]") {
  for (const std::string_view field : {"weight", "name", "tags", "counts", "on", "duo", "ids"}) {
    CAPTURE(field);
    const auto d = from_json<gadget>(R"({")" + std::string(field) + R"(":null})");
    REQUIRE_FALSE(d.status.has_value());
    CHECK_THAT(d.status.error().message, Catch::EndsWith(", got null"));
  }
  gadget g;
  g.maybe = 1;
  g.shared = std::make_shared<std::string>("x");
  g.child = std::make_unique<gadget>();
  const auto nulls = from_json<gadget>(R"({"maybe":null,"shared":null,"child":null})");
  require_ok(nulls.status);
  CHECK_FALSE(nulls.value.maybe.has_value());
  CHECK(nulls.value.shared == nullptr);
  CHECK(nulls.value.child == nullptr);
}

TEST_CASE("the numbers that crashed rapidjson (issue 14) still pass the guard first",
          "[json_archive][json]") {
  for (const std::string& number :
       std::vector<std::string>{"5521.4555555555555554e-343", "555010766721.4555555555555554e-349",
                                "0." + std::string(5000, '0') + "1", std::string(300, '7')}) {
    CAPTURE(number.substr(0, 40));
    const auto d = from_json<gadget>(R"({"ratio":)" + number + "}");
    require_ok(d.status);
    CHECK(d.value.ratio == std::strtod(number.c_str(), nullptr));
    // As an integer: zero is an exact integer; 300 sevens are beyond int64.
    const auto n = from_json<demo::ComplexData>(R"({"n":)" + number + "}");
    if (number.size() == 300) {
      REQUIRE_FALSE(n.status.has_value());
      CHECK_THAT(n.status.error().message, Catch::Contains("out of range for int64"));
    } else {
      require_ok(n.status);
      CHECK(n.value.n == 0);
    }
  }
  require_refused(from_json<gadget>(R"({"ratio":1e99999999})").status,
                  "JSON number '1e99999999' is outside the range of a double");
}

TEST_CASE("the depth limit holds: one level per ComplexData link", "[json_archive][depth]") {
  // make_sample(k): k objects deep, and each level's m and p one deeper.
  const std::string json = to_json(demo::make_sample(100));
  require_ok(from_json<demo::ComplexData>(json, {101}).status);
  require_refused(from_json<demo::ComplexData>(json, {100}).status,
                  "JSON nested deeper than the limit of 100");

  // The longest chain the default limit admits decodes without trouble, and one more is refused.
  const auto chain = [](std::size_t links) {
    std::string out;
    for (std::size_t i = 1; i < links; ++i) out += R"({"c":)";
    out += "{}" + std::string(links - 1, '}');
    return out;
  };
  const auto longest = from_json<demo::ComplexData>(chain(1024));
  require_ok(longest.status);
  CHECK(demo::summarize(longest.value).depth == 1024);
  require_refused(from_json<demo::ComplexData>(chain(1025)).status,
                  "JSON nested deeper than the limit of 1024");
  require_refused(from_json<demo::ComplexData>(chain(100'000)).status,
                  "JSON nested deeper than the limit of 1024");
}

TEST_CASE("malformed JSON is refused with rapidjson's reason", "[json_archive]") {
  require_refused(from_json<gadget>(R"({"a" 1})").status,
                  "invalid JSON at offset 5: Missing a colon after a name of object member.");
  require_refused(from_json<gadget>("").status, "invalid JSON at offset 0: The document is empty.");
}

TEST_CASE("the cereal binary format is cereal's portable binary, unchanged", "[json_archive]") {
  demo::ComplexData root = demo::make_sample(3, 5);
  root.m["\xff"] = -1;
  const auto direct = [](const auto& value) {
    std::ostringstream os;
    {
      cereal::PortableBinaryOutputArchive ar(os);
      ar(value);
    }
    return os.str();
  };
  std::string out;
  codec<demo::ComplexData>::encode(root, encoding::bin, out);
  CHECK(out == direct(root));

  gadget g;
  g.maybe = 3;
  g.child = std::make_unique<gadget>();
  std::string gadget_out;
  codec<gadget>::encode(g, encoding::bin, gadget_out);
  CHECK(gadget_out == direct(g));
}

TEST_CASE("STRUCT json end to end: the typed shape in, the Summary out", "[json_archive][e2e]") {
  cmdwire::test::test_server server;
  cmdwire::test::raw_socket s(server.port());
  const auto call = [&s](std::string_view body) {
    s.send("STRUCT json " + std::to_string(body.size()) + "\n" + std::string(body));
    return cmdwire::test::read_framed_reply(s);
  };
  const auto ok = [](std::string_view body) {
    return "OK " + std::to_string(body.size()) + "\n" + std::string(body);
  };
  const auto bad_body = [](std::string_view message) {
    return "ERR bad-body " + std::to_string(message.size()) + "\n" + std::string(message);
  };
  CHECK(call(R"({"n":1,"s":"root","m":{"a":1},"p":[1,2],"c":{"n":2,"s":"child"}})") ==
        ok(R"({"depth":2,"entries":1,"bytes":2,"names":"root/child"})"));
  CHECK(call("{}") == ok(R"({"depth":1,"entries":0,"bytes":0,"names":""})"));
  CHECK(call(R"({"s":"x","c":{"colour":"red"}})") ==
        bad_body(R"(unknown field "colour" in object at $.c)"));
  CHECK(call(R"({"n":"heavy"})") == bad_body("$.n: expected integer, got string"));
  CHECK(call(R"({"m":{"a":3000000000}})") ==
        bad_body("$.m.a: integer 3000000000 is out of range for int32"));
  // The connection is still in step.
  CHECK(call(R"({"c":null})") == ok(R"({"depth":1,"entries":0,"bytes":0,"names":""})"));
}
