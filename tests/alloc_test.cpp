// Counts every operator new in the process across pipelined requests after a warm-up: ECHO and
// PING allocate nothing per request, typed STRUCT and PROTO only what their values need.
#include <poll.h>
#include <sys/socket.h>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "cmdwire/codec.hpp"
#include "demo/demo_commands.hpp"
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
// Several connections interleave on each worker, as in production: Asio's per-thread handler
// caches are small, so a single connection can hide allocations that many would show.
constexpr int connections = 16;
constexpr int warmup_rounds = 20;
constexpr int measured_rounds = 10;  // 16 connections x 10 rounds x 100 = 16,000 requests
constexpr double budget_per_request = 0.01;

bool send_all(int fd, std::string_view bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

/// Reads exactly `reply.size()` bytes into `reply`, a buffer the caller owns.
bool read_all(int fd, std::string& reply) {
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

/// One batch on every connection, then every reply, with plain syscalls on buffers made
/// beforehand, so the test thread itself allocates nothing. Batches are split mid-request and
/// staggered across connections, so sessions on one worker are caught in different states
/// (reading, parsing a partial frame, writing) as under real pipelined load.
bool round_trip(const std::vector<int>& fds, const std::string& batch, std::string& reply,
                const std::string& expected) {
  const std::string_view all = batch;
  const std::size_t split = all.size() / 2 + 3;
  for (std::size_t i = 0; i <= fds.size(); ++i) {
    if (i < fds.size() && !send_all(fds[i], all.substr(0, split))) return false;
    if (i > 0 && !send_all(fds[i - 1], all.substr(split))) return false;
    if (i > 1 && (!read_all(fds[i - 2], reply) || reply != expected)) return false;
  }
  return read_all(fds.back(), reply) && reply == expected;
}

/// Pipelines `request` (expecting `reply`) on 16 connections to one worker: warm-up rounds,
/// then measured ones. Returns operator-new calls per request over the measured rounds, or a
/// negative number if a reply was wrong.
double allocations_per_request(const std::string& request, const std::string& reply,
                               int per_batch) {
  cmdwire::endpoint_options options;
  options.threads = 1;  // every connection on one worker, sharing its Asio handler caches
  cmdwire::test::test_server server(options);
  std::vector<std::unique_ptr<cmdwire::test::raw_socket>> sockets;
  std::vector<int> fds;
  for (int i = 0; i < connections; ++i) {
    sockets.push_back(std::make_unique<cmdwire::test::raw_socket>(server.port()));
    fds.push_back(sockets.back()->socket().native_handle());
  }
  std::string batch;
  std::string expected;
  for (int i = 0; i < per_batch; ++i) {
    batch += request;
    expected += reply;
  }
  std::string received(expected.size(), '\0');
  for (int i = 0; i < warmup_rounds; ++i) {
    if (!round_trip(fds, batch, received, expected)) return -1;
  }
  bool all_good = true;
  const std::uint64_t before = g_allocations.load();
  for (int i = 0; i < measured_rounds; ++i) {
    all_good = all_good && round_trip(fds, batch, received, expected);
  }
  const std::uint64_t allocations = g_allocations.load() - before;
  if (!all_good) return -1;
  return static_cast<double>(allocations) / (connections * measured_rounds * per_batch);
}

template <class T>
std::string bin(const T& value) {
  std::string out;
  cmdwire::codec<T>::encode(value, cmdwire::wire::encoding::bin, out);
  return out;
}

std::string framed(std::string_view name, const std::string& body) {
  return std::string(name) + " " + std::to_string(body.size()) + "\n" + body;
}

std::string ok(const std::string& body) {
  return "OK " + std::to_string(body.size()) + "\n" + body + "\n";
}

}  // namespace

TEST_CASE("the server allocates nothing per request in steady state", "[alloc]") {
  REQUIRE(g_allocations.load() > 0);  // the counting operator new is the one in use
  const std::string payload = "0123456789abcdef";
  const std::string request = "ECHO 16\n" + payload + "PING\n";
  const std::string reply = "OK 16\n" + payload + "\nOK 4\nPONG\n";
  const double per_request = allocations_per_request(request, reply, requests_per_batch / 2) / 2;
  REQUIRE(per_request >= 0);
  INFO("ECHO/PING: " << per_request << " allocations per request");
  CHECK(per_request < budget_per_request);
}

// A typed request costs what its value's own containers need and nothing more: the endpoint
// decodes into a request object it keeps (so the request's containers keep their memory), and
// the only allocation left is the reply value the handler returns.
TEST_CASE("a STRUCT request allocates only its reply's string", "[alloc]") {
  namespace demo = cmdwire::demo;
  const demo::ComplexData sample = demo::make_sample(3, 8);
  const demo::Summary summary = demo::summarize(sample);
  // "level0/level1/level2": longer than the 15 bytes std::string holds without the heap.
  REQUIRE(summary.names.size() > 15);
  constexpr double own_containers = 1;  // Summary::names; the request's are all reused
  const double per_request =
      allocations_per_request(framed("STRUCT", bin(sample)), ok(bin(summary)), 50);
  REQUIRE(per_request >= 0);
  INFO("STRUCT: " << per_request << " allocations per request");
  CHECK(per_request <= own_containers + budget_per_request);
}

TEST_CASE("a PROTO request allocates only its reply's string", "[alloc]") {
  namespace demo = cmdwire::demo;
  const demo::pb::Complex sample = demo::make_sample_proto(3, 8);
  const demo::pb::Summary summary = demo::summarize(sample);
  REQUIRE(summary.names().size() > 15);
  // The request is decoded on the worker's arena (17 allocations per request without it,
  // 14 decoding into a reused message with Clear(): map entries are freed). Left: the reply's
  // names, which protobuf holds as a heap std::string plus its buffer.
  constexpr double own_containers = 2;
  const double per_request =
      allocations_per_request(framed("PROTO", bin(sample)), ok(bin(summary)), 50);
  REQUIRE(per_request >= 0);
  INFO("PROTO: " << per_request << " allocations per request");
  CHECK(per_request <= own_containers + budget_per_request);
}

// A request body over detail::reused_request_max_body is decoded into the reused object once,
// which is then reset, so a rare large request does not pin its memory to the worker thread.
// Seen from outside: the next small request finds no containers left to refill and allocates
// them again, where without the reset it would allocate only its reply's string.
TEST_CASE("a STRUCT request over 64 KiB does not stay in the reused request", "[alloc]") {
  namespace demo = cmdwire::demo;
  cmdwire::endpoint_options options;
  options.threads = 1;
  cmdwire::test::test_server server(options);
  cmdwire::test::raw_socket socket(server.port());
  const int fd = socket.socket().native_handle();

  const demo::ComplexData small = demo::make_sample(3, 8);
  const std::string small_request = framed("STRUCT", bin(small));
  const std::string small_reply = ok(bin(demo::summarize(small)));
  // The same shape with larger vectors: without the reset, every container of the small
  // request would still be there to refill.
  const demo::ComplexData large =
      demo::make_sample(3, cmdwire::detail::reused_request_max_body / 2);
  const std::string large_request = framed("STRUCT", bin(large));
  REQUIRE(bin(large).size() > cmdwire::detail::reused_request_max_body);
  const std::string large_reply = ok(bin(demo::summarize(large)));

  std::string reply;
  auto exchange = [&](const std::string& request, const std::string& expected) {
    reply.assign(expected.size(), '\0');
    return send_all(fd, request) && read_all(fd, reply) && reply == expected;
  };
  auto allocations_of = [&](const std::string& request, const std::string& expected) {
    const std::uint64_t before = g_allocations.load();
    REQUIRE(exchange(request, expected));
    return g_allocations.load() - before;
  };
  for (int i = 0; i < 50; ++i) REQUIRE(exchange(small_request, small_reply));
  const std::uint64_t steady = allocations_of(small_request, small_reply);
  CHECK(steady <= 1);  // the reply's names string, as in the test above
  REQUIRE(exchange(large_request, large_reply));
  // 3 levels: 3 vectors, 6 map nodes and 2 child structs to allocate again.
  CHECK(allocations_of(small_request, small_reply) >= steady + 11);
  CHECK(allocations_of(small_request, small_reply) < steady + 11);  // reused again after that
}
