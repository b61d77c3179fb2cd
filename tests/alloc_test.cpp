// Proves the server's steady state allocates nothing per request: counts every operator new
// in the process across 10,000 pipelined ECHO and PING requests after a warm-up.
#include <poll.h>
#include <sys/socket.h>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <new>
#include <string>

#include "support/test_server.hpp"

namespace {
// Relaxed is enough: the count is read after the replies, which the server wrote after
// making whatever allocations it made (the socket round trip orders them).
std::atomic<std::uint64_t> g_allocations{0};

void* counted_alloc(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* counted_aligned_alloc(std::size_t n, std::align_val_t al) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  const auto a = static_cast<std::size_t>(al);
  if (void* p = std::aligned_alloc(a, (n + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
}  // namespace

// Replacing the global allocation functions is how the standard lets a program observe them.
void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void* operator new(std::size_t n, std::align_val_t al) { return counted_aligned_alloc(n, al); }
void* operator new[](std::size_t n, std::align_val_t al) { return counted_aligned_alloc(n, al); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

constexpr int requests_per_batch = 100;  // pipelined: sent in one write, as clients do
constexpr int warmup_batches = 50;
constexpr int measured_batches = 100;  // 10,000 requests
constexpr double budget_per_request = 0.01;

/// Sends all of `bytes` and reads exactly `reply.size()` bytes into `reply`, with plain
/// syscalls on buffers the caller owns: the test thread allocates nothing while measuring.
bool round_trip(int fd, const std::string& bytes, std::string& reply) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  std::size_t got = 0;
  while (got < reply.size()) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) return false;
    const ssize_t n = ::recv(fd, reply.data() + got, reply.size() - got, 0);
    if (n <= 0) return false;
    got += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

TEST_CASE("the server allocates nothing per request in steady state", "[alloc]") {
  cmdwire::test::test_server server;
  REQUIRE(g_allocations.load() > 0);  // the counting operator new is the one in use
  cmdwire::test::raw_socket socket(server.port());
  const int fd = socket.socket().native_handle();

  const std::string payload = "0123456789abcdef";
  std::string batch;
  std::string expected;
  for (int i = 0; i < requests_per_batch / 2; ++i) {
    batch += "ECHO 16\n" + payload;
    expected += "OK 16\n" + payload + "\n";
    batch += "PING\n";
    expected += "OK 4\nPONG\n";
  }
  std::string reply(expected.size(), '\0');

  for (int i = 0; i < warmup_batches; ++i) {
    REQUIRE(round_trip(fd, batch, reply));
    REQUIRE(reply == expected);
  }

  bool all_good = true;
  const std::uint64_t before = g_allocations.load();
  for (int i = 0; i < measured_batches; ++i) {
    all_good = all_good && round_trip(fd, batch, reply) && reply == expected;
  }
  const std::uint64_t allocations = g_allocations.load() - before;
  REQUIRE(all_good);

  const double per_request =
      static_cast<double>(allocations) / (measured_batches * requests_per_batch);
  INFO("allocations: " << allocations << " over " << measured_batches * requests_per_batch
                       << " requests = " << per_request << " per request");
  CHECK(per_request < budget_per_request);
}
