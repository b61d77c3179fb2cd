// cmdwire's binary archives against cereal's own PortableBinary archives: the same bytes both
// ways for random values, the same value when decoding into a reused object, the cereal
// features that take cereal's own dispatch path, and big-endian bodies.
#include <catch2/catch.hpp>
#include <cereal/types/base_class.hpp>
#include <cereal/types/memory.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>

#include "cmdwire/codec.hpp"
#include "demo/demo_commands.hpp"
#include "tests/support/cereal_reference.hpp"

namespace {

using cmdwire::codec;
using cmdwire::decode_limits;
using cmdwire::wire::encoding;
namespace demo = cmdwire::demo;

std::string random_text(std::mt19937_64& rng) {
  // Short strings stay in the SSO buffer, long ones do not: both kinds of reuse get exercised.
  std::string s(std::uniform_int_distribution<std::size_t>(0, 40)(rng), '\0');
  for (char& c : s) c = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
  return s;
}

demo::ComplexData random_complex(std::mt19937_64& rng, int depth_left) {
  demo::ComplexData v;
  v.n = static_cast<std::int64_t>(rng());
  v.s = random_text(rng);
  const auto entries = std::uniform_int_distribution<int>(0, 6)(rng);
  for (int i = 0; i < entries; ++i) {
    v.m[random_text(rng)] = static_cast<std::int32_t>(rng());
  }
  v.p.resize(std::uniform_int_distribution<std::size_t>(0, 64)(rng));
  for (auto& b : v.p) b = static_cast<std::uint8_t>(rng());
  if (depth_left > 0 && rng() % 4 != 0) {
    v.c = std::make_unique<demo::ComplexData>(random_complex(rng, depth_left - 1));
  }
  return v;
}

std::string ours(const demo::ComplexData& v) {
  std::string out;
  codec<demo::ComplexData>::encode(v, encoding::bin, out);
  return out;
}

std::string theirs(const demo::ComplexData& v) {
  std::string out;
  cmdwire::test::cereal_encode(v, out);
  return out;
}

// A type that uses what the archives hand to cereal's own dispatch: versioning, a base class,
// minimal serializers, shared pointers (with their id table), optional, nested containers.
struct base_part {
  std::int16_t b = 0;
  template <class A>
  void serialize(A& ar) {
    ar(b);
  }
};

struct minimal_id {
  std::uint32_t v = 0;
  template <class A>
  std::uint32_t save_minimal(const A&) const {
    return v;
  }
  template <class A>
  void load_minimal(const A&, const std::uint32_t& in) {
    v = in;
  }
};

struct everything : base_part {
  double d = 0;
  float f = 0;
  bool flag = false;
  minimal_id id;
  std::optional<std::string> maybe;
  std::vector<demo::Summary> summaries;
  std::unordered_map<std::int32_t, std::vector<std::string>> buckets;
  std::shared_ptr<std::string> shared_a;
  std::shared_ptr<std::string> shared_b;  // the same pointee as shared_a: written once
  std::uint32_t version_seen = 0;

  template <class A>
  void serialize(A& ar, std::uint32_t version) {
    version_seen = version;
    ar(cereal::base_class<base_part>(this), d, f, flag, id, maybe, summaries, buckets, shared_a,
       shared_b);
  }
};

}  // namespace

CEREAL_CLASS_VERSION(everything, 3)

TEST_CASE("random ComplexData values: the same bytes as cereal's archives, both ways",
          "[binary_archive]") {
  std::mt19937_64 rng(20261202);
  for (int round = 0; round < 500; ++round) {
    const demo::ComplexData value = random_complex(rng, 5);
    const std::string mine = ours(value);
    const std::string reference = theirs(value);
    REQUIRE(mine == reference);

    // Ours reads cereal's bytes back to the same value (compared through its encoding)...
    demo::ComplexData decoded;
    REQUIRE(codec<demo::ComplexData>::decode(reference, encoding::bin, decoded, {}).has_value());
    REQUIRE(theirs(decoded) == reference);
    // ...and cereal reads ours.
    demo::ComplexData by_cereal;
    cmdwire::test::cereal_decode(mine, decode_limits{}.max_depth, by_cereal);
    REQUIRE(theirs(by_cereal) == reference);
  }
}

TEST_CASE("decoding into a reused value gives what decoding into a fresh one gives",
          "[binary_archive]") {
  std::mt19937_64 rng(7);
  demo::ComplexData reused = random_complex(rng, 5);
  for (int round = 0; round < 500; ++round) {
    const std::string body = ours(random_complex(rng, 5));
    demo::ComplexData fresh;
    REQUIRE(codec<demo::ComplexData>::decode(body, encoding::bin, fresh, {}).has_value());
    // `reused` still holds the previous value: deeper or shallower chains, more or fewer map
    // entries, longer or shorter strings.
    REQUIRE(codec<demo::ComplexData>::decode(body, encoding::bin, reused, {}).has_value());
    REQUIRE(ours(reused) == body);
    REQUIRE(ours(fresh) == body);
  }
}

TEST_CASE("duplicate map keys: the first one wins, as in cereal, also when reusing nodes",
          "[binary_archive]") {
  // {n=0, s="", m={"k":1,"k":2}, p=[], c=null}, hand-written: an encoder never writes this.
  std::string body("\x01", 1);
  auto u64 = [&](std::uint64_t v) {
    for (int i = 0; i < 8; ++i) body.push_back(static_cast<char>(v >> (8 * i)));
  };
  u64(0);  // n
  u64(0);  // s
  u64(2);  // m: two items
  for (std::uint32_t value : {1u, 2u}) {
    u64(1);
    body += 'k';
    for (int i = 0; i < 4; ++i) body.push_back(static_cast<char>(value >> (8 * i)));
  }
  u64(0);                // p
  body.push_back('\0');  // c

  demo::ComplexData reference;
  cmdwire::test::cereal_decode(body, decode_limits{}.max_depth, reference);
  REQUIRE(reference.m.size() == 1);

  demo::ComplexData fresh;
  REQUIRE(codec<demo::ComplexData>::decode(body, encoding::bin, fresh, {}).has_value());
  demo::ComplexData reused = demo::make_sample(3, 8);  // two map nodes per level to reuse
  REQUIRE(codec<demo::ComplexData>::decode(body, encoding::bin, reused, {}).has_value());
  for (const auto* v : {&fresh, &reused}) {
    CHECK(v->m == reference.m);
    CHECK(v->m.at("k") == 1);
    CHECK(v->c == nullptr);
  }
}

TEST_CASE("cereal features outside the fast path: versions, base classes, minimal, shared_ptr",
          "[binary_archive]") {
  everything v;
  v.b = -7;
  v.d = 3.25;
  v.f = -1.5F;
  v.flag = true;
  v.id.v = 99;
  v.maybe = "here";
  v.summaries = {{1, 2, 3, "a"}, {4, 5, 6, "b/c"}};
  v.buckets = {{5, {"x", "y"}}};
  v.shared_a = std::make_shared<std::string>("shared");
  v.shared_b = v.shared_a;

  std::string mine;
  codec<everything>::encode(v, encoding::bin, mine);
  std::string reference;
  cmdwire::test::cereal_encode(v, reference);
  REQUIRE(mine == reference);

  everything back;
  REQUIRE(codec<everything>::decode(mine, encoding::bin, back, {}).has_value());
  CHECK(back.version_seen == 3);
  CHECK(back.b == -7);
  CHECK(back.d == 3.25);
  CHECK(back.f == -1.5F);
  CHECK(back.flag);
  CHECK(back.id.v == 99);
  CHECK(back.maybe == std::optional<std::string>("here"));
  CHECK(back.summaries == v.summaries);
  CHECK(back.buckets == v.buckets);
  REQUIRE(back.shared_a != nullptr);
  CHECK(*back.shared_a == "shared");
  CHECK(back.shared_b == back.shared_a);  // one pointee again, not two copies
}

TEST_CASE("a big-endian body (byte 0 is 0x00) decodes to the same value", "[binary_archive]") {
  std::mt19937_64 rng(99);
  for (int round = 0; round < 50; ++round) {
    const demo::ComplexData value = random_complex(rng, 3);
    std::ostringstream os;
    {
      cereal::PortableBinaryOutputArchive ar(
          os, cereal::PortableBinaryOutputArchive::Options::BigEndian());
      ar(value);
    }
    const std::string big = os.str();
    REQUIRE(big.front() == '\0');
    demo::ComplexData decoded;
    REQUIRE(codec<demo::ComplexData>::decode(big, encoding::bin, decoded, {}).has_value());
    CHECK(ours(decoded) == ours(value));
  }
}

TEST_CASE("byte 0 must be a byte-order marker", "[binary_archive]") {
  std::string body = ours(demo::make_sample(1, 1));
  body[0] = '\x02';
  demo::ComplexData v;
  const auto r = codec<demo::ComplexData>::decode(body, encoding::bin, v, {});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message ==
        "byte 0 is 2, not a byte-order marker (1: little-endian, 0: big-endian)");
  const auto empty = codec<demo::ComplexData>::decode("", encoding::bin, v, {});
  REQUIRE_FALSE(empty.has_value());
  CHECK(empty.error().message == "empty body: a cereal binary body starts with 0x01");
}

TEST_CASE("the depth limit counts levels exactly as cereal's guarded archive did",
          "[binary_archive]") {
  // Depth is counted per value, name-value wrappers included (decode_limits): find the
  // smallest limit each archive accepts for the same body; they must agree.
  const std::string body = ours(demo::make_sample(4, 2));
  auto smallest = [&](auto&& decodes) {
    std::size_t limit = 1;
    while (!decodes(limit)) ++limit;
    return limit;
  };
  const std::size_t mine = smallest([&](std::size_t limit) {
    demo::ComplexData v;
    return codec<demo::ComplexData>::decode(body, encoding::bin, v, decode_limits{limit})
        .has_value();
  });
  const std::size_t reference = smallest([&](std::size_t limit) {
    demo::ComplexData v;
    try {
      cmdwire::test::cereal_decode(body, limit, v);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  });
  CHECK(mine == reference);
  CHECK(mine > 4 * 5);  // several levels per link: the count is not trivially small
}
