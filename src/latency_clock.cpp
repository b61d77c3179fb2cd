// Deciding whether the TSC can time requests, and how many nanoseconds one of its ticks is.
#include "latency_clock.hpp"

#include <fstream>
#include <string>

namespace cmdwire::detail {

namespace {

bool tsc_is_invariant() {
#if defined(__x86_64__)
  // Both flags: the rate does not follow frequency scaling, and the counter runs in deep
  // sleep states. Without them a tick is not a fixed time.
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.starts_with("flags")) {
      return line.find(" constant_tsc") != std::string::npos &&
             line.find(" nonstop_tsc") != std::string::npos;
    }
  }
#endif
  return false;
}

}  // namespace

const latency_clock::calibration& latency_clock::rate() noexcept {
  static const calibration measured = [] {
    calibration c;
    static_assert(std::chrono::steady_clock::period::den == 1'000'000'000 &&
                  std::chrono::steady_clock::period::num == 1);
#if defined(__x86_64__)
    if (!tsc_is_invariant()) return c;
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    const auto tsc0 = __builtin_ia32_rdtsc();
    auto t1 = t0;
    while (t1 - t0 < std::chrono::milliseconds(2)) t1 = clock::now();
    const auto tsc1 = __builtin_ia32_rdtsc();
    if (tsc1 <= tsc0) return c;
    c.use_tsc = true;
    c.ns_per_tick = std::chrono::duration<double, std::nano>(t1 - t0).count() /
                    static_cast<double>(tsc1 - tsc0);
#endif
    return c;
  }();
  return measured;
}

}  // namespace cmdwire::detail
