// The latency histogram's arithmetic: every nanosecond count falls in the bucket whose edges
// hold it, buckets are at most 25% of their lower edge wide, 2^37 ns and up overflow, and the
// quantiles pick the right bucket.
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <vector>

#include "src/metrics.hpp"

using cmdwire::detail::latency_buckets;

namespace {
std::uint64_t lower_ns(int i) { return i == 0 ? 0 : latency_buckets::upper_ns(i - 1); }
}  // namespace

TEST_CASE("each latency falls inside its bucket's edges") {
  std::vector<std::uint64_t> samples;
  for (std::uint64_t ns = 0; ns < 20000; ++ns) samples.push_back(ns);
  std::mt19937_64 rng(12345);
  for (int k = 0; k < 20000; ++k) samples.push_back(rng() >> (27 + rng() % 37));
  for (int bit = 0; bit < 37; ++bit) {
    samples.push_back(std::uint64_t{1} << bit);
    samples.push_back((std::uint64_t{1} << bit) - 1);
  }
  for (const std::uint64_t ns : samples) {
    const int i = latency_buckets::of(ns);
    if (i >= latency_buckets::count) {
      INFO(ns);
      CHECK(ns >= (std::uint64_t{1} << 37));
      continue;
    }
    INFO(ns << " in bucket " << i);
    REQUIRE(i >= 0);
    CHECK(lower_ns(i) <= ns);
    CHECK(ns < latency_buckets::upper_ns(i));
  }
}

TEST_CASE("latency buckets are contiguous, at most 25% wide, and overflow from 2^37 ns") {
  for (int i = 1; i < latency_buckets::count; ++i) {
    INFO("bucket " << i);
    CHECK(latency_buckets::upper_ns(i) > latency_buckets::upper_ns(i - 1));
    if (i >= 4) CHECK(4 * (latency_buckets::upper_ns(i) - lower_ns(i)) <= lower_ns(i));
  }
  const std::uint64_t limit = std::uint64_t{1} << 37;
  CHECK(latency_buckets::upper_ns(latency_buckets::count - 1) == limit);
  CHECK(latency_buckets::of(limit - 1) == latency_buckets::count - 1);
  CHECK(latency_buckets::of(limit) == latency_buckets::count);
  CHECK(cmdwire::latency_bucket_upper_seconds(latency_buckets::count) == Approx(INFINITY));
}

TEST_CASE("latency quantiles name the bucket that holds the rank") {
  std::vector<std::uint64_t> buckets(latency_buckets::count + 1, 0);
  const int fast = latency_buckets::of(1000);       // 1 µs
  const int slow = latency_buckets::of(5'000'000);  // 5 ms
  buckets[fast] = 90;
  buckets[slow] = 10;
  using cmdwire::detail::latency_quantile;
  CHECK(latency_quantile(buckets, 0.50) == Approx(latency_buckets::upper_ns(fast) * 1e-9));
  CHECK(latency_quantile(buckets, 0.90) == Approx(latency_buckets::upper_ns(fast) * 1e-9));
  CHECK(latency_quantile(buckets, 0.91) == Approx(latency_buckets::upper_ns(slow) * 1e-9));
  CHECK(latency_quantile(buckets, 0.99) == Approx(latency_buckets::upper_ns(slow) * 1e-9));
  CHECK(latency_quantile(std::vector<std::uint64_t>(buckets.size(), 0), 0.5) == 0);
}
