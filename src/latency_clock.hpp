// The clock behind per-request latency: the CPU's time-stamp counter where it ticks at a
// constant rate (about 10 ns a read here), else steady_clock (30-40 ns on kvm-clock). Not
// installed.
//
// A pipelined PING costs the server about 0.4 µs; two steady_clock reads per request would
// add 10% to it, which STATS must not cost.
#pragma once

#include <chrono>
#include <cstdint>

namespace cmdwire::detail {

class latency_clock {
 public:
  using ticks = std::uint64_t;

  [[nodiscard]] static ticks now() noexcept {
#if defined(__x86_64__)
    if (rate().use_tsc) return __builtin_ia32_rdtsc();
#endif
    return static_cast<ticks>(std::chrono::steady_clock::now().time_since_epoch().count());
  }

  [[nodiscard]] static std::chrono::nanoseconds elapsed(ticks from, ticks to) noexcept {
    if (to <= from) return std::chrono::nanoseconds(0);
    return std::chrono::nanoseconds(
        static_cast<std::int64_t>(static_cast<double>(to - from) * rate().ns_per_tick));
  }

 private:
  struct calibration {
    bool use_tsc = false;
    double ns_per_tick = 1;  ///< steady_clock ticks in nanoseconds, as libstdc++ has them
  };
  /// Measured once per process (latency_clock.cpp): TSC ticks against steady_clock over 2 ms,
  /// if /proc/cpuinfo says the TSC is constant and does not stop.
  static const calibration& rate() noexcept;
};

}  // namespace cmdwire::detail
