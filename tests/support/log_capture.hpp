// Test fixture: a logger that keeps every line, so tests can wait for the server's own account
// of an event (a join, a leave, an eviction) instead of sleeping.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cmdwire/endpoint.hpp"

namespace cmdwire::test {

class log_capture {
 public:
  /// A logger feeding this capture; the capture must outlive every use of it.
  [[nodiscard]] logger sink() {
    return [this](log_level, std::string_view line) {
      std::lock_guard lock(mutex_);
      lines_.emplace_back(line);
      changed_.notify_all();
    };
  }

  /// Lines logged so far that contain `text`.
  /// Every line so far, LF-separated (for test failure messages).
  [[nodiscard]] std::string text() const {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& line : lines_) out.append(line).push_back('\n');
    return out;
  }

  [[nodiscard]] std::size_t count(std::string_view text) const {
    std::lock_guard lock(mutex_);
    return count_locked(text);
  }

  /// Waits until at least `n` lines contain `text`; false after 10 s.
  bool wait_for(std::string_view text, std::size_t n = 1) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10),
                             [&] { return count_locked(text) >= n; });
  }

 private:
  [[nodiscard]] std::size_t count_locked(std::string_view text) const {
    std::size_t n = 0;
    for (const auto& line : lines_) n += line.find(text) != std::string::npos ? 1 : 0;
    return n;
  }

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> lines_;
};

}  // namespace cmdwire::test
