// Summaries and samples for the demo commands.
#include "demo/demo_commands.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <chrono>

namespace cmdwire::demo {

namespace {
void append_name(std::string& names, std::string_view s) {
  if (!names.empty()) names += '/';
  names += s;
}
}  // namespace

Summary summarize(const ComplexData& root) {
  Summary out;
  for (const ComplexData* level = &root; level != nullptr; level = level->c.get()) {
    ++out.depth;
    out.entries += level->m.size();
    out.bytes += level->p.size();
    append_name(out.names, level->s);
  }
  return out;
}

pb::Summary summarize(const pb::Complex& root) {
  pb::Summary out;
  std::string names;
  for (const pb::Complex* level = &root; level != nullptr;
       level = level->has_c() ? &level->c() : nullptr) {
    out.set_depth(out.depth() + 1);
    out.set_entries(out.entries() + static_cast<std::uint64_t>(level->m_size()));
    out.set_bytes(out.bytes() + level->p().size());
    append_name(names, level->s());
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

}  // namespace cmdwire::demo
