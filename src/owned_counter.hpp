// A counter with one writing thread that any thread may read: what per-worker statistics are
// made of. Not installed.
#pragma once

#include <atomic>
#include <cstdint>

namespace cmdwire::detail {

/// The owner adds with a plain load and store (no locked instruction, no shared cache line);
/// readers see a recent value through a relaxed load.
class owned_counter {
 public:
  owned_counter() = default;
  // Boost.Histogram's storage copies and default-constructs its cells.
  owned_counter(const owned_counter& other) noexcept : v_(other.get()) {}
  owned_counter& operator=(const owned_counter& other) noexcept {
    v_.store(other.get(), std::memory_order_relaxed);
    return *this;
  }

  void add(std::uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void raise_to(std::uint64_t n) noexcept {
    if (n > v_.load(std::memory_order_relaxed)) v_.store(n, std::memory_order_relaxed);
  }
  owned_counter& operator++() noexcept {
    add();
    return *this;
  }
  owned_counter& operator+=(std::uint64_t n) noexcept {
    add(n);
    return *this;
  }
  [[nodiscard]] std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

}  // namespace cmdwire::detail
