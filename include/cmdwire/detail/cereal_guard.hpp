// Limits on cereal portable-binary decoding that cereal itself lacks: nesting depth (so a
// deeply recursive body cannot overflow the stack) and length prefixes (so a forged size
// cannot make a container allocate more than the body could possibly hold).
#pragma once

#include <cereal/archives/portable_binary.hpp>
#include <cereal/details/helpers.hpp>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cmdwire/detail/streams.hpp"

namespace cmdwire::detail {

/// Active for one decode on this thread; cereal's prologue/epilogue hooks below consult it.
/// Archives decoded while no guard is active (user code using cereal directly) are unaffected.
class cereal_guard {
 public:
  struct violation : std::runtime_error {
    using std::runtime_error::runtime_error;
  };

  cereal_guard(std::size_t max_depth, const view_source* source) noexcept
      : max_depth_(max_depth), source_(source), previous_(current_) {
    current_ = this;
  }
  ~cereal_guard() { current_ = previous_; }
  cereal_guard(const cereal_guard&) = delete;
  cereal_guard& operator=(const cereal_guard&) = delete;

  [[nodiscard]] static cereal_guard* current() noexcept { return current_; }

  void enter() {
    if (++depth_ > max_depth_) {
      throw violation("nesting deeper than the limit of " + std::to_string(max_depth_));
    }
  }
  void leave() noexcept { --depth_; }

  /// Every element of a container takes at least one byte, so a size prefix larger than the
  /// bytes left is a lie; refusing it here stops the allocation cereal would make next.
  void check_size(std::uint64_t declared) const {
    if (declared > source_->remaining()) {
      throw violation("length prefix " + std::to_string(declared) + " exceeds the " +
                      std::to_string(source_->remaining()) + " bytes left in the body");
    }
  }

 private:
  std::size_t max_depth_;
  std::size_t depth_ = 0;
  const view_source* source_;
  cereal_guard* previous_;
  static inline thread_local cereal_guard* current_ = nullptr;
};

}  // namespace cmdwire::detail

namespace cereal {
// More specialised than cereal's generic no-op hooks, so these win for portable binary input.
template <class T>
void prologue(PortableBinaryInputArchive&, const T&) {
  if (auto* guard = cmdwire::detail::cereal_guard::current()) guard->enter();
}
template <class T>
void epilogue(PortableBinaryInputArchive&, const T&) {
  if (auto* guard = cmdwire::detail::cereal_guard::current()) guard->leave();
}
template <class T>
void epilogue(PortableBinaryInputArchive&, const SizeTag<T>& tag) {
  if (auto* guard = cmdwire::detail::cereal_guard::current()) {
    guard->leave();
    guard->check_size(static_cast<std::uint64_t>(tag.size));
  }
}
}  // namespace cereal
