// libFuzzer target: a live endpoint serving the demo commands (as cmdwire-server registers
// them), driven over real loopback connections. Each input is a sequence of actions on up to
// four connection slots: raw bytes, structured requests (framed or line form, id=, deadline-ms=
// 0-50, json, CRLF, HELLO ooo, SLEEP and HASH with small arguments, pub/sub), short waits for
// replies, half-closes (shutdown of the sending side), closes and resets.
//
// The oracle, after every input: the process is still alive (no crash, no sanitizer report, no
// exception escaping into std::terminate), the endpoint logged nothing at error level, it
// answers PING on a fresh connection with exactly `OK 4\nPONG\n`, and its open connection
// count returns to 0 (a bounded poll on endpoint::stats()). A failure aborts with a message
// saying which check failed, so libFuzzer keeps the input.
//
// Two endpoints are started once per process, each on 127.0.0.1 port 0 with two I/O threads;
// byte 0 of the input chooses which one it drives (bit 0). Server 0 has a one-thread handler
// pool (offloaded calls queue behind each other while the I/O threads go on) and small limits,
// so that `ERR busy`, backpressure and the size limits are reached by short inputs; server 1
// has cmdwire-server's defaults on a 2-core machine (a two-thread pool). Every input is
// bounded: at most 48 actions, 8 connections, 8 KiB sent, 80 ms of waiting and 600,000 HASH
// rounds (about 60 ms of pool time). Each input starts from a server with no connections (the
// last check waits for that), but the server's threads make the schedule vary from run to
// run: a crashing input may need several runs to crash again
// (`fuzz_session -runs=50 FILE`), and FUZZ_SESSION_TRACE=1 prints what it sends.
//
// Input format (tests/fuzz/make_session_seeds.py writes the seeds in it), read from the front,
// one byte at a time; a missing byte reads as 0 and ends the input:
//   server(1) then actions; each action is
//   action  = op(1) args...    slot = op & 3, kind = (op >> 2) % 10
//   kind 0  raw: len(1) then min(len, 160) bytes, sent as they are
//   kind 1  request: see build_request() (cmd, flags, [id], [deadline], arg, [body])
//   kind 2  HELLO: flags(1): bit 0 `HELLO 3\nooo` (out of order on), else `HELLO\n` (off);
//           bit 1 adds id=; bit 2 `HELLO 0\nooo\n` (no features, then `ooo` as a request)
//   kind 3  shutdown(SHUT_WR) (half-close)
//   kind 4  close
//   kind 5  reset (SO_LINGER 0, then close: the server reads ECONNRESET)
//   kind 6  wait: ms(1); up to ms % 21 ms for the connection to become readable, then read
//           what has arrived
//   kind 7  read what has arrived, without waiting
//   kind 8  reconnect: close the slot's connection and open a new one
//   kind 9  partial request: a request as kind 1, then cut(1): only its first
//           cut % (size + 1) bytes are sent
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "cmdwire/endpoint.hpp"
#include "demo/demo_service.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

/// FUZZ_SESSION_TRACE=1 in the environment: each action is printed to stderr, the bytes sent
/// as a C string, to read what a crashing input does (`FUZZ_SESSION_TRACE=1 fuzz_session FILE`).
const bool tracing = [] {
  const char* v = std::getenv("FUZZ_SESSION_TRACE");
  return v != nullptr && *v != '\0' && *v != '0';
}();

void trace(int slot, const char* what, std::string_view bytes = {}) {
  if (!tracing) return;
  std::string text;
  for (const char c : bytes) {
    if (c == '\n') {
      text += "\\n";
    } else if (c == '\r') {
      text += "\\r";
    } else if (c == '\\' || c == '"') {
      text += '\\';
      text += c;
    } else if (c >= 0x20 && c < 0x7f) {
      text += c;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(c));
      text += hex;
    }
  }
  std::fprintf(stderr, "  [%d] %s%s%s%s\n", slot, what, bytes.empty() ? "" : " \"", text.c_str(),
               bytes.empty() ? "" : "\"");
}

void report_error_log();

[[noreturn]] void fail(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "fuzz_session: %s%s%s\n", what, detail.empty() ? "" : ": ", detail.c_str());
  report_error_log();  // an error the endpoint logged may say why the check failed
  std::fflush(stderr);
  std::abort();
}

// ---- the server, once per process

/// Error-level log lines (e.g. "session ended by exception"): each is a bug. The first is
/// kept, and reported at the end of the input that caused it; the last warning (an accept
/// failure, a handler that threw) is printed with any failed check.
std::mutex log_mutex;
std::string first_error;
std::string last_warning;  ///< the last line at warn level or above
std::atomic<bool> error_logged{false};

struct live_server {
  cmdwire::endpoint ep;
  std::uint16_t port = 0;

  explicit live_server(cmdwire::endpoint_options o) : ep(with_log(std::move(o))) {
    cmdwire::demo::register_demo_commands(ep);
    ep.enable_pubsub();  // as cmdwire-server does
    auto bound = ep.listen("127.0.0.1", 0);
    if (!bound) fail("listen failed", bound.error().message);
    port = *bound;
    ep.start();
  }

  static cmdwire::endpoint_options with_log(cmdwire::endpoint_options o) {
    o.threads = 2;  // two I/O threads: sessions on both, racing the pool's
    o.log = [](cmdwire::log_level level, std::string_view text) {
      if (level < cmdwire::log_level::warn) return;
      std::lock_guard lock(log_mutex);
      last_warning.assign(text);  // shown when a check fails
      if (level >= cmdwire::log_level::error && !error_logged.exchange(true)) {
        first_error.assign(text);
      }
    };
    return o;
  }
};

/// Server 0: a one-thread handler pool (offloaded calls queue behind each other, and one
/// thread races the I/O threads) and small limits, so that `ERR busy`, backpressure and the
/// size limits are reached by short inputs.
cmdwire::endpoint_options small_options() {
  cmdwire::endpoint_options o;
  o.handler_threads = 1;
  o.handler_queue = 6;
  o.max_concurrent = 3;
  o.max_pipelined = 8;
  o.max_reply_backlog = 4096;
  o.limits.max_line = 256;
  o.limits.max_body = 4096;
  return o;
}

/// Server 1: cmdwire-server's defaults on this 2-core machine (a pool of two threads).
cmdwire::endpoint_options default_options() {
  cmdwire::endpoint_options o;
  o.handler_threads = 2;
  return o;
}

live_server& server(int which) {
  // Never destroyed: the process ends with them serving (libFuzzer exits from many places).
  static live_server* servers[2] = {new live_server(small_options()),
                                    new live_server(default_options())};
  return *servers[which];
}

/// What a failed check adds: the endpoint's own count of its connections.
std::string stats_of(int which) {
  const cmdwire::endpoint_stats st = server(which).ep.stats();
  return "server " + std::to_string(which) + ": " + std::to_string(st.connections) + " open, " +
         std::to_string(st.accepted) + " accepted, " + std::to_string(st.timed_out) +
         " timed out since it started";
}

void report_error_log() {
  std::lock_guard lock(log_mutex);
  if (error_logged.load()) {
    std::fprintf(stderr, "fuzz_session: the endpoint logged an error: %s\n", first_error.c_str());
  }
  if (!last_warning.empty()) {
    std::fprintf(stderr, "fuzz_session: its last warning: %s\n", last_warning.c_str());
  }
}

// ---- blocking loopback sockets

int connect_to_server(int which) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket()", std::strerror(errno));
  // A server that stops reading must not hang the fuzzer: writes give up after 2 s.
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server(which).port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    fail("connect to the endpoint failed", std::strerror(errno));
  }
  return fd;
}

void send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return;  // the server closed (bad-request, too-large...) or we shut down
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

/// Reads and drops what has arrived; false once the server has closed the connection.
bool drain(int fd) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      trace(-1, "received", std::string_view(buf, static_cast<std::size_t>(n)));
      continue;
    }
    if (n == 0) trace(-1, "received the server's close");
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return true;
    return false;
  }
}

/// Waits up to `ms` for bytes (or the close) to arrive, then drains them. A wait for a
/// condition, with a bound: it ends as soon as the server answers.
void wait_readable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, ms) > 0) drain(fd);
}

// ---- the input

class reader {
 public:
  reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::string_view bytes(std::size_t n) {
    n = std::min(n, size_ - std::min(pos_, size_));
    std::string_view out(reinterpret_cast<const char*>(data_) + pos_, n);
    pos_ += n;
    return out;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

enum class body_kind {
  none,
  bytes,
  line_sleep,
  line_hash,
  line_text,
  structured,
  proto,
  name,
  topic,
  publish
};

struct command_spec {
  std::string_view name;
  body_kind body;
  bool line;  ///< a line command: without LENGTH its body is the next line
};

constexpr std::array<command_spec, 16> commands{{
    {"PING", body_kind::none, false},
    {"ECHO", body_kind::bytes, false},
    {"STRING", body_kind::line_text, true},
    {"STRUCT", body_kind::structured, false},
    {"PROTO", body_kind::proto, false},
    {"SLEEP", body_kind::line_sleep, true},
    {"HASH", body_kind::line_hash, true},
    {"HASH", body_kind::line_hash, true},  // twice: the offloaded path is the one that races
    {"DAYTIME", body_kind::none, false},
    {"COMMANDS", body_kind::none, false},
    {"HEALTH", body_kind::none, false},
    {"STATS", body_kind::none, false},
    {"DESCRIBE", body_kind::name, false},
    {"SUBSCRIBE", body_kind::topic, true},
    {"PUBLISH", body_kind::publish, true},
    {"NOPE", body_kind::bytes, false},
}};

/// HASH's rounds, by arg & 7. With this build's instrumentation a round takes about 0.1 us,
/// so 100,000 rounds hold the pool for about 10 ms: long enough for a deadline of a few ms to
/// pass while the handler runs, and for other calls to queue behind it.
constexpr std::array<std::uint32_t, 8> hash_rounds{0, 1, 100, 1000, 3000, 10000, 30000, 100000};
/// Rounds one input may ask for in all (about 60 ms of pool time); past it, HASH gets arg % 100.
constexpr std::uint64_t max_hash_rounds = 600000;
std::uint64_t hash_budget = 0;  ///< what the current input has left

constexpr std::array<std::string_view, 6> struct_bodies{
    R"({"n":1,"s":"root","m":{"a":1},"p":[1,2],"c":{"n":2,"s":"child","m":{},"p":[],"c":null}})",
    R"({"s":"x","c":{"s":"kid"}})",
    R"({"n":"heavy"})",
    // cereal portable binary {n=1, s="x", m={a:1}, p=[0xff], c=null}
    std::string_view("\x01\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00x\x01"
                     "\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"
                     "a\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\xff\x00",
                     49),
    "{}",
    "[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]",
};
constexpr std::array<std::string_view, 3> proto_bodies{
    R"({"n":1,"s":"root","m":{"a":1},"p":"AQI=","c":{"n":2,"s":"child"}})",
    std::string_view("\x08\x01\x12\x01x", 5),
    "{\"bogus\":1}",
};
constexpr std::array<std::string_view, 4> names{"PING", "STRUCT", "HASH", "NOPE"};
constexpr std::array<std::string_view, 3> topics{"news", "a.b:c/d", "bad topic"};

/// One request from the input:
///   cmd(1)    command = commands[cmd & 15]; bit 4: LENGTH 0 on a line command (empty line
///             body); bit 5: no LF at the end of a line body (it arrives incomplete)
///   flags(1)  bit 0 id=, bit 1 deadline-ms=, bit 2 json, bit 3 framed (LENGTH) even for a
///             line command, bit 4 CRLF, bit 5 attributes before LENGTH, bit 6 an unknown
///             attribute, bit 7 the id with leading zeros
///   id(1)     if bit 0; deadline(1) if bit 1: deadline-ms = byte % 51
///   arg(1)    per command: SLEEP ms = arg % 31; HASH rounds = hash_rounds[arg & 7] and
///             (arg >> 3) % 8 bytes of TEXT; ECHO/NOPE/STRING: arg % 128 bytes of input;
///             STRUCT/PROTO: arg < 128 takes arg bytes of input, else a sample body;
///             DESCRIBE, SUBSCRIBE, PUBLISH: a name or topic
std::string build_request(reader& in) {
  const std::uint8_t cmd = in.byte();
  const std::uint8_t flags = in.byte();
  const command_spec& spec = commands[cmd & 15];
  std::string attrs;
  if (flags & 1) {
    const unsigned id = in.byte();
    attrs += (flags & 0x80) ? " id=00" + std::to_string(id) : " id=" + std::to_string(id);
  }
  if (flags & 2) attrs += " deadline-ms=" + std::to_string(in.byte() % 51);
  if (flags & 0x40) attrs += " x-trace=ab";
  const std::uint8_t arg = in.byte();
  std::string body;
  switch (spec.body) {
    case body_kind::none:
      break;
    case body_kind::bytes:
    case body_kind::line_text:
      body = in.bytes(arg % 128);
      break;
    case body_kind::line_sleep:
      body = std::to_string(arg % 31);
      if (arg == 255) body = "later";  // a bad argument: ERR bad-body, connection stays
      break;
    case body_kind::line_hash: {
      std::uint64_t rounds = hash_rounds[arg & 7];
      if (rounds > hash_budget) rounds = arg % 100;
      hash_budget -= std::min(rounds, hash_budget);
      body = std::to_string(rounds) + " " + std::string("abcdefg").substr(0, (arg >> 3) % 8);
    } break;
    case body_kind::structured:
      body = arg < 128 ? std::string(in.bytes(arg))
                       : std::string(struct_bodies[arg % struct_bodies.size()]);
      break;
    case body_kind::proto:
      body = arg < 128 ? std::string(in.bytes(arg))
                       : std::string(proto_bodies[arg % proto_bodies.size()]);
      break;
    case body_kind::name:
      if (arg & 4) body = names[arg % names.size()];
      break;
    case body_kind::topic:
      body = topics[arg % topics.size()];
      break;
    case body_kind::publish:
      body = std::string(topics[arg % topics.size()]) + " hello";
      break;
  }
  const char* eol = (flags & 0x10) ? "\r\n" : "\n";
  const bool framed = !spec.line || (flags & 8);
  std::string req(spec.name);
  if (flags & 4) req += " json";
  if (flags & 0x20) req += attrs;
  if (framed) {
    // An ordinary command without a body is sent without LENGTH, half of the time.
    if (!(body.empty() && spec.body == body_kind::none && (cmd & 0x40))) {
      req += " " + std::to_string(body.size());
    }
  } else if (cmd & 0x10) {
    body.clear();
    req += " 0";  // a line command with an empty framed body
  }
  if (!(flags & 0x20)) req += attrs;
  req += eol;
  req += body;
  if (!framed && !(cmd & 0x10) && !(cmd & 0x20)) req += eol;
  return req;
}

constexpr int slots = 4;
constexpr int max_actions = 48;
constexpr int max_connects = 8;
constexpr std::size_t max_sent = 8192;
constexpr int max_wait_ms = 80;

struct session_run {
  int which = 0;  ///< the server this input drives
  std::array<int, slots> fd{-1, -1, -1, -1};
  int connects = 0;
  std::size_t sent = 0;
  int waited_ms = 0;

  /// The slot's connection, opened if it has none (and the input may still connect).
  int open(int slot) {
    if (fd[slot] < 0 && connects < max_connects) {
      fd[slot] = connect_to_server(which);
      trace(slot, "connect");
      ++connects;
    }
    return fd[slot];
  }
  void send(int slot, std::string_view bytes) {
    if (sent >= max_sent) return;
    bytes = bytes.substr(0, max_sent - sent);
    sent += bytes.size();
    if (const int s = open(slot); s >= 0) {
      trace(slot, "send", bytes);
      send_all(s, bytes);
    }
  }
  void close(int slot, bool reset) {
    if (fd[slot] < 0) return;
    trace(slot, reset ? "reset" : "close");
    if (reset) {
      const linger hard{1, 0};
      ::setsockopt(fd[slot], SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    }
    ::close(fd[slot]);
    fd[slot] = -1;
  }
  ~session_run() {
    for (int i = 0; i < slots; ++i) close(i, false);
  }
};

void run_actions(reader& in, int which) {
  session_run run;
  run.which = which;
  for (int n = 0; n < max_actions && !in.empty(); ++n) {
    const std::uint8_t op = in.byte();
    const int slot = op & 3;
    switch ((op >> 2) % 10) {
      case 0: {
        const std::size_t len = std::min<std::size_t>(in.byte(), 160);
        run.send(slot, in.bytes(len));
        break;
      }
      case 1:
        run.send(slot, build_request(in));
        break;
      case 2: {
        const std::uint8_t f = in.byte();
        const std::string id = (f & 2) ? " id=" + std::to_string(n) : "";
        if (f & 4) {
          run.send(slot, "HELLO 0" + id + "\nooo\n");  // no features; "ooo" is then a request
        } else if (f & 1) {
          run.send(slot, "HELLO 3" + id + "\nooo");
        } else {
          run.send(slot, "HELLO" + id + "\n");  // back to in-order replies
        }
        break;
      }
      case 3:
        if (run.fd[slot] >= 0) {
          trace(slot, "shutdown(SHUT_WR)");
          ::shutdown(run.fd[slot], SHUT_WR);
        }
        break;
      case 4:
        run.close(slot, false);
        break;
      case 5:
        run.close(slot, true);
        break;
      case 6: {
        const int ms = std::min(in.byte() % 21, max_wait_ms - run.waited_ms);
        if (run.fd[slot] >= 0 && ms > 0) {
          if (tracing) trace(slot, ("wait up to " + std::to_string(ms) + " ms").c_str());
          const auto t0 = clock_type::now();
          wait_readable(run.fd[slot], ms);
          run.waited_ms += static_cast<int>(
              std::chrono::ceil<std::chrono::milliseconds>(clock_type::now() - t0).count());
        }
        break;
      }
      case 7:
        if (run.fd[slot] >= 0) {
          trace(slot, "read");
          drain(run.fd[slot]);
        }
        break;
      case 8:
        run.close(slot, false);
        run.open(slot);
        break;
      case 9: {
        const std::string req = build_request(in);
        run.send(slot, std::string_view(req).substr(0, in.byte() % (req.size() + 1)));
        break;
      }
    }
  }
  // ~session_run closes every connection the input left open.
}

// ---- the oracle

void check_error_log() {
  if (error_logged.load()) fail("the endpoint logged at error level");
}

/// Sends `PING\n` on a fresh connection and reads until `OK 4\nPONG\n` has arrived, the
/// server closes, or `limit` passes. Returns what arrived.
std::string ping_once(int which, std::chrono::milliseconds limit) {
  constexpr std::size_t want = 10;  // "OK 4\nPONG\n"
  const int fd = connect_to_server(which);
  send_all(fd, "PING\n");
  std::string got;
  const auto until = clock_type::now() + limit;
  while (got.size() < want) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    char buf[64];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return got;
}

/// A fresh connection gets exactly `OK 4\nPONG\n` for `PING\n`, within 10 s. When it does not,
/// three more connections try (2 s each), to tell a stuck endpoint from one stuck worker.
void check_ping(int which) {
  const std::string got = ping_once(which, std::chrono::seconds(10));
  if (got == "OK 4\nPONG\n") return;
  int answered = 0;
  for (int i = 0; i < 3; ++i) {
    if (ping_once(which, std::chrono::seconds(2)) == "OK 4\nPONG\n") ++answered;
  }
  fail("PING on a fresh connection did not get `OK 4\\nPONG\\n` within 10 s",
       "got \"" + got + "\"; " + std::to_string(answered) + " of 3 more connections got it; " +
           stats_of(which));
}

/// Every connection, the PING check's included, is gone from the endpoint within 10 s of
/// being closed: the sessions ended, their calls with them. Polls the endpoint's own count.
void check_connections_end(int which) {
  const auto until = clock_type::now() + std::chrono::seconds(10);
  auto pause = std::chrono::microseconds(20);
  while (server(which).ep.stats().connections != 0) {
    if (clock_type::now() > until) {
      fail("connections still open 10 s after the client closed them all", stats_of(which));
    }
    std::this_thread::sleep_for(pause);  // the poll's interval, growing to 1 ms
    pause = std::min(pause * 2, std::chrono::microseconds(1000));
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  server(0);
  server(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  reader in(data, size);
  const int which = in.byte() & 1;
  hash_budget = max_hash_rounds;
  if (tracing) std::fprintf(stderr, "input of %zu bytes, server %d\n", size, which);
  run_actions(in, which);
  check_ping(which);
  check_connections_end(which);
  check_error_log();
  return 0;
}
