// Summaries and samples for the demo commands.
#include "demo/demo_commands.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <charconv>
#include <chrono>

namespace cmdwire::demo {

namespace {
/// `names` is every level's `s` joined with '/': one '/' between two levels, even when a level's
/// `s` is empty, so depth N always gives N - 1 slashes (`{"c":{}}` gives "/").
void append_name(std::string& names, std::string_view s, bool first) {
  if (!first) names += '/';
  names += s;
}
}  // namespace

Summary summarize(const ComplexData& root) {
  Summary out;
  for (const ComplexData* level = &root; level != nullptr; level = level->c.get()) {
    append_name(out.names, level->s, out.depth == 0);
    ++out.depth;
    out.entries += level->m.size();
    out.bytes += level->p.size();
  }
  return out;
}

pb::Summary summarize(const pb::Complex& root) {
  pb::Summary out;
  std::string names;
  for (const pb::Complex* level = &root; level != nullptr;
       level = level->has_c() ? &level->c() : nullptr) {
    append_name(names, level->s(), out.depth() == 0);
    out.set_depth(out.depth() + 1);
    out.set_entries(out.entries() + static_cast<std::uint64_t>(level->m_size()));
    out.set_bytes(out.bytes() + level->p().size());
  }
  out.set_names(std::move(names));
  return out;
}

ComplexData make_sample(std::uint32_t depth, std::size_t bytes_per_level) {
  ComplexData root;
  ComplexData* level = &root;
  for (std::uint32_t i = 0; i < depth; ++i) {
    if (i > 0) {
      level->c = std::make_unique<ComplexData>();
      level = level->c.get();
    }
    level->n = static_cast<std::int64_t>(i) + 1;
    level->s = fmt::format("level{}", i);
    level->m = {{"a", static_cast<std::int32_t>(i)}, {"b", static_cast<std::int32_t>(2 * i)}};
    level->p.assign(bytes_per_level, static_cast<std::uint8_t>(i));
  }
  return root;
}

pb::Complex make_sample_proto(std::uint32_t depth, std::size_t bytes_per_level) {
  pb::Complex root;
  pb::Complex* level = &root;
  for (std::uint32_t i = 0; i < depth; ++i) {
    if (i > 0) level = level->mutable_c();
    level->set_n(static_cast<std::int64_t>(i) + 1);
    level->set_s(fmt::format("level{}", i));
    (*level->mutable_m())["a"] = i;
    (*level->mutable_m())["b"] = 2 * i;
    level->set_p(std::string(bytes_per_level, static_cast<char>(i)));
  }
  return root;
}

std::string daytime_now() {
  // fmt formats a system_clock time_point in local time; the text promises UTC.
  return fmt::format(
      "{:%A, %B %d, %Y %H:%M:%S}-UTC",
      fmt::gmtime(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now())));
}

cmdwire::result<std::uint32_t> parse_sleep(std::string_view line) {
  constexpr std::uint32_t max_ms = 600000;
  std::uint32_t ms = 0;
  const char* end = line.data() + line.size();
  const auto [ptr, ec] = std::from_chars(line.data(), end, ms);
  if (line.empty() || ec != std::errc{} || ptr != end || ms > max_ms) {
    // Not bad-request: that code means the framing is lost and the connection closes; here
    // only this request's body is wrong (PROTOCOL.md §3).
    return make_error(errc::bad_body, "SLEEP takes milliseconds, 0 to 600000");
  }
  return ms;
}

cmdwire::result<std::string> hash_rounds(std::string_view line, const cmdwire::call_context* call) {
  constexpr std::uint64_t max_rounds = 1000000000;
  const std::size_t sp = line.find(' ');
  const std::string_view count = line.substr(0, sp);
  const std::string_view text = sp == std::string_view::npos ? "" : line.substr(sp + 1);
  std::uint64_t rounds = 0;
  const auto [ptr, ec] = std::from_chars(count.data(), count.data() + count.size(), rounds);
  if (count.empty() || ec != std::errc{} || ptr != count.data() + count.size() ||
      rounds > max_rounds) {
    return make_error(errc::bad_body, "HASH takes ROUNDS (0 to 1000000000), a space, TEXT");
  }
  constexpr std::uint64_t fnv_offset = 14695981039346656037ull;
  constexpr std::uint64_t fnv_prime = 1099511628211ull;
  std::uint64_t digest = fnv_offset;
  // A poll every 2^16 rounds costs nothing measurable and answers a cancel within ~1 ms.
  constexpr std::uint64_t poll_every = 1u << 16;
  for (std::uint64_t r = 0; r < rounds; ++r) {
    if (call != nullptr && r % poll_every == poll_every - 1 && call->cancelled()) {
      return make_error(errc::deadline_exceeded, "HASH cancelled");
    }
    std::uint64_t h = fnv_offset;
    for (int i = 0; i < 8; ++i) {
      h = (h ^ ((digest >> (8 * i)) & 0xff)) * fnv_prime;
    }
    for (const char c : text) h = (h ^ static_cast<unsigned char>(c)) * fnv_prime;
    digest = h;
  }
  return fmt::format("{:016x}", digest);
}

}  // namespace cmdwire::demo
