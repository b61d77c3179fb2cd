// Test fixture: waits for a condition that the server reaches on its own threads, without
// sleeping, and gives up after a limit so that a broken server fails the test.
#pragma once

#include <chrono>
#include <thread>

namespace cmdwire::test {

/// Polls `done` (yielding between polls) until it holds (true) or `limit` passes (false).
template <class Condition>
bool eventually(Condition done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace cmdwire::test
