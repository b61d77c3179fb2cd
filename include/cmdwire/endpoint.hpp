// The server side: an Endpoint maps command names to handlers and serves them over TCP, one
// coroutine per connection, on a pool of single-threaded io_contexts.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "cmdwire/call_context.hpp"
#include "cmdwire/codec.hpp"
#include "cmdwire/command.hpp"
#include "cmdwire/describe.hpp"
#include "cmdwire/error.hpp"
#include "cmdwire/metrics.hpp"
#include "cmdwire/tls.hpp"
#include "cmdwire/wire.hpp"

namespace cmdwire {

namespace asio = boost::asio;

enum class log_level { debug, info, warn, error, off };

/// Receives the endpoint's log lines (connections, protocol errors, handler failures).
/// Called from worker threads; must be thread-safe.
using logger = std::function<void(log_level, std::string_view)>;

/// Bounds on the bytes queued for one connection the server pushes to (a subscriber, a chat
/// member), as Redis's `client-output-buffer-limit pubsub 32mb 8mb 60`: the connection is
/// closed when its queue would pass `hard_bytes`, or when it has stayed over `soft_bytes` for
/// `soft_for` without a break. A reader that is only briefly slower than the sender stays.
/// Checked whenever a message is queued for the connection.
struct push_limits {
  std::size_t hard_bytes = std::size_t{32} << 20;
  std::size_t soft_bytes = std::size_t{8} << 20;
  std::chrono::milliseconds soft_for = std::chrono::seconds(60);
};

/// Pub/sub across instances through Redis (PROTOCOL.md §9): every publish is also published to
/// the Redis channel `channel_prefix + topic`, and an instance subscribes to that channel for
/// each topic it has local subscribers on. hiredis 0.14 (Debian 12) cannot speak TLS, so Redis
/// must be reached over a trusted network (loopback, a private link or a TLS tunnel).
struct redis_backplane_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string channel_prefix = "cmdwire:";
  /// Non-empty: sent with AUTH first on each connection (Redis `requirepass`).
  std::string password;
  /// Reconnecting after Redis goes away: capped exponential backoff with full jitter.
  std::chrono::milliseconds reconnect_initial{100};
  std::chrono::milliseconds reconnect_max{5000};
  /// A PUBLISH or SUBSCRIBE Redis has not answered in this long drops the connection (and
  /// fails the calls waiting on it), so a hung Redis cannot hold publishers forever.
  std::chrono::milliseconds command_timeout{2000};
};

/// The commands every endpoint answers unless switched off here (PROTOCOL.md §11). Switching
/// one off frees its name for a handler of your own.
struct builtin_commands {
  bool health = true;    ///< HEALTH: `SERVING`, or `DRAINING` once stop() has begun
  bool stats = true;     ///< STATS: counters and latencies as JSON (see metrics.hpp)
  bool describe = true;  ///< DESCRIBE [NAME]: each command's form, doc and JSON shapes
};

struct endpoint_options {
  wire::limits limits;   ///< line and body limits for requests.
  decode_limits decode;  ///< nesting limit for typed bodies.
  unsigned threads = 0;  ///< io_context threads; 0 means one per core.
  logger log;            ///< empty: no logging.
  /// How long stop() lets connections finish the requests they have already read; after
  /// that, handlers still running are abandoned and their connections closed.
  std::chrono::milliseconds drain_timeout{5000};
  /// How long stop() keeps serving as before (new connections included) while HEALTH says
  /// DRAINING, before the drain above begins: time for a load balancer's health check to take
  /// the server out of rotation. 0: drain at once.
  std::chrono::milliseconds drain_grace{0};
  builtin_commands builtins;

  /// Connections served at once; one more is answered `ERR busy` and closed, so a flood of
  /// connections cannot exhaust descriptors or memory.
  std::size_t max_connections = 16384;
  /// Requests answered from one read before their replies must be written: a pipelining
  /// client that never reads stalls its own connection, not the server's memory.
  std::size_t max_pipelined = 1024;
  /// Reply bytes queued on one connection before the server writes them and stops reading.
  std::size_t max_reply_backlog = 1u << 20;
  /// A connection with no request in progress is closed after this long.
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
  /// From the first byte of a request to its last; a byte-a-minute client (slowloris) is
  /// closed when it runs out.
  std::chrono::milliseconds request_timeout{std::chrono::seconds(30)};
  /// Longest a write may wait for a peer that does not read.
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
  /// Non-empty: the first line of every connection must be `AUTH <token>`; anything else is
  /// answered `ERR auth` and closed.
  std::string auth_token;
  /// Set: every listener speaks TLS (certificate, key and optional client CA loaded by
  /// `listen`/`serve`, which fail if they cannot be).
  std::optional<tls_server_config> tls;
  /// Every connection must begin with a PROXY protocol v2 header (HAProxy's `send-proxy-v2`),
  /// whose client address becomes the peer in request_context and the logs; LOCAL headers
  /// (health checks) keep the connection's own peer. A connection without a valid header is
  /// refused, with a log line saying why. Only for listeners reached through such a proxy:
  /// anyone who can connect directly could claim any address.
  bool proxy_protocol = false;
  /// Bytes of pushed MSG frames a subscriber may have waiting for its socket: past these it is
  /// disconnected, so a subscriber that stops reading never holds up publishers.
  push_limits subscriber_limits;
  /// Set: pub/sub reaches the subscribers of every instance sharing this Redis (see
  /// redis_backplane_options); empty: this process only.
  std::optional<redis_backplane_options> pubsub_redis;

  /// On a connection that negotiated out-of-order replies (`HELLO`, PROTOCOL.md §8), how many
  /// async or offloaded handlers may run at once; with that many running the server stops
  /// reading the connection until one finishes (backpressure).
  std::size_t max_concurrent = 64;
  /// Threads of the pool that runs handlers registered with `cmdwire::offload`; 0 means one
  /// per core. The pool exists only if such a handler is registered.
  unsigned handler_threads = 0;
  /// Offloaded calls queued or running at once, all connections together; one more is
  /// answered `ERR busy` (that request only: the connection stays open).
  std::size_t handler_queue = 1024;
};

/// Tag for endpoint::handle: run this (CPU-heavy, synchronous) handler on the endpoint's
/// handler pool instead of the connection's I/O thread.
struct offload_t {
  explicit offload_t() = default;
};
inline constexpr offload_t offload{};

/// What a handler sees of one request. Views point into the connection's receive buffer and
/// stay valid until the handler returns (or its awaitable completes).
struct request_context {
  std::string_view name;
  wire::encoding enc = wire::encoding::bin;
  std::string_view body;
  bool line_form = false;  ///< sent as `NAME\nLINE\n`: the reply goes back as one bare line.
  /// The declared LENGTH. For stream handlers the body is still unread: read it yourself.
  std::optional<std::size_t> length;
  std::optional<std::uint64_t> id;
  const asio::ip::tcp::endpoint* peer = nullptr;
  /// Deadline, cancellation and the rest of the call; never null while a handler runs.
  call_context* call = nullptr;
};

/// Where a raw handler puts its reply: append the body to `body()`, or call `fail()`.
class reply_writer {
 public:
  explicit reply_writer(std::string& body) noexcept : body_(body) {}

  /// The reply body, empty on entry; a reused buffer, so appending is cheap.
  [[nodiscard]] std::string& body() noexcept { return body_; }
  /// Replace the reply with `ERR <code> <message>`.
  void fail(errc code, std::string message) {
    failure_ = error{make_error_code(code), std::move(message)};
  }
  /// The same for an error value; a code without a wire name is sent as `internal`.
  void fail(error e) { failure_ = std::move(e); }
  [[nodiscard]] const std::optional<error>& failure() const noexcept { return failure_; }

 private:
  std::string& body_;
  std::optional<error> failure_;
};

/// The buffered connection a stream handler (or a raw service) reads and writes directly.
/// Bytes the endpoint has already received but not parsed are read first.
class stream {
 public:
  virtual ~stream() = default;
  /// One LF-terminated line without CR/LF, at most the endpoint's max_line; valid until the
  /// next read. Fails with too_large for a longer line, or the socket's error (eof included).
  virtual asio::awaitable<result<std::string_view>> async_read_line() = 0;
  /// Exactly `n` bytes (n <= max_body); valid until the next read.
  virtual asio::awaitable<result<std::string_view>> async_read_exact(std::size_t n) = 0;
  /// Whatever has arrived, at least one byte; valid until the next read.
  virtual asio::awaitable<result<std::string_view>> async_read_some() = 0;
  /// Writes all of `bytes` (plus any replies still queued before them).
  virtual asio::awaitable<result<void>> async_write(std::string_view bytes) = 0;
  /// The peer's IP address and port; unspecified (0.0.0.0:0) over a Unix-domain socket.
  [[nodiscard]] virtual const asio::ip::tcp::endpoint& peer() const noexcept = 0;
  /// The peer for logs: "127.0.0.1:50000", or "unix:/path (uid 1000, pid 4242)". Empty unless
  /// the stream says (the endpoint's own streams do).
  [[nodiscard]] virtual std::string_view peer_name() const noexcept { return {}; }
  /// Ends the connection now: pending reads and writes fail, and a stream handler's session
  /// reads no further commands.
  virtual void close() noexcept = 0;
  /// Replaces the endpoint's idle_timeout for this connection; zero means none. For
  /// connections that are quiet by design (subscribers, chat members).
  virtual void set_idle_timeout(std::chrono::milliseconds timeout) noexcept = 0;
};

using raw_handler = std::function<void(const request_context&, reply_writer&)>;
using async_raw_handler =
    std::function<asio::awaitable<void>(const request_context&, reply_writer&)>;
/// Gets the connection after the command line (and before any body); when it returns, the
/// endpoint goes on reading commands from where the handler stopped.
using stream_handler = std::function<asio::awaitable<void>(const request_context&, stream&)>;
/// Owns a whole connection of a non-cmdwire protocol (echo, daytime, chat...).
using connection_handler = std::function<asio::awaitable<void>(stream&)>;
/// Answers one UDP datagram (a view valid only during the call) from `from`: the reply to send
/// back, or nothing. Runs on worker 0; a throw drops the datagram and is logged.
using datagram_handler = std::function<std::optional<std::string>(
    std::string_view datagram, const asio::ip::udp::endpoint& from)>;

namespace detail {
template <class T>
struct awaitable_value {
  static constexpr bool is_awaitable = false;
};
template <class T>
struct awaitable_value<asio::awaitable<T>> {
  static constexpr bool is_awaitable = true;
  using type = T;
};

/// What a typed handler may return for response type R: R (or something convertible to it), or
/// result<R> to answer with an error as a value.
template <class T, class R>
concept handler_return = std::is_convertible_v<T, R> || std::is_same_v<T, result<R>>;
}  // namespace detail

/// What an endpoint is holding right now (all connections, all workers).
struct endpoint_stats {
  std::size_t connections = 0;      ///< open connections
  std::size_t buffered_bytes = 0;   ///< receive buffers and queued replies, all connections
  std::uint64_t accepted = 0;       ///< connections accepted since start
  std::uint64_t rejected_busy = 0;  ///< connections refused with `ERR busy`
  std::uint64_t timed_out = 0;      ///< connections closed by a timeout
  /// Server coroutines ended by an exception that nothing caught: a bug, logged at error
  /// level; the server goes on serving. 0 in a healthy server.
  std::uint64_t task_failures = 0;
};

/// A command server. Register handlers, `listen`, then `start` (or `run`); registration after
/// `start` is not allowed. Non-copyable, non-movable: connections refer to it.
class endpoint {
 public:
  explicit endpoint(endpoint_options options = {});
  ~endpoint();  ///< stops and joins.
  endpoint(const endpoint&) = delete;
  endpoint& operator=(const endpoint&) = delete;

  /// Registers `fn` for command `C`. `fn` takes `const C::request&`, optionally followed by
  /// `const call_context&` (deadline, cancellation, peer), and returns `C::response` or
  /// `result<C::response>` (or an `asio::awaitable` of either). A throw becomes
  /// `ERR internal <what()>`, except a thrown `call_failed`, whose code and message are sent as
  /// they are. An awaiting handler is cancelled when its call is (see call_context).
  template <command C, class F>
  void handle(F fn);
  /// The same for a CPU-heavy synchronous handler: it runs on the handler pool
  /// (`handler_threads`), so the connection's I/O thread serves other connections meanwhile.
  /// When `handler_queue` offloaded calls are already queued or running (running ones count),
  /// the request is answered `ERR busy`.
  template <command C, class F>
  void handle(F fn, offload_t);

  /// Registers an untyped handler; `line` makes it a line command.
  void handle_raw(std::string_view name, raw_handler fn, bool line = false);
  void handle_raw_async(std::string_view name, async_raw_handler fn, bool line = false);
  /// Registers a handler that takes over the stream after the command line.
  void handle_stream(std::string_view name, stream_handler fn);

  /// Binds a cmdwire listener. Port 0 picks a free port; the bound port is returned.
  [[nodiscard]] result<std::uint16_t> listen(std::string_view host, std::uint16_t port);
  /// Binds a cmdwire listener on a Unix-domain socket file at `path` (auth, TLS and limits as
  /// on TCP). A socket file that no server listens on any more is replaced; a live one, or a
  /// file that is not a socket, is an error. `mode` (e.g. 0660) is set on the file, else the
  /// umask decides. stop() removes the file.
  [[nodiscard]] result<void> listen_unix(std::string_view path,
                                         std::optional<unsigned> mode = std::nullopt);
  /// Binds a listener whose connections are given whole to `fn` (same threads, limits, stop).
  [[nodiscard]] result<std::uint16_t> serve(std::string_view host, std::uint16_t port,
                                            connection_handler fn);
  /// Binds a UDP socket whose datagrams are answered by `fn` on worker 0 until stop().
  /// Port 0 picks a free port; the bound port is returned.
  [[nodiscard]] result<std::uint16_t> serve_udp(std::string_view host, std::uint16_t port,
                                                datagram_handler fn);

  /// Registers the built-in publish/subscribe commands, SUBSCRIBE and PUBLISH (PROTOCOL.md §9).
  /// Off unless called: without it, a user may register those names for commands of their own.
  /// Throws std::invalid_argument if either name is already registered (or this is called
  /// twice), and std::logic_error after start().
  void enable_pubsub();

  /// Pushes `MSG topic length\nbody\n` to every connection subscribed to `topic` (see the
  /// SUBSCRIBE command, enable_pubsub()); any thread, never blocks on a socket. Returns how many
  /// subscribers took it; one past its subscriber_limits is disconnected and not counted.
  std::size_t publish(std::string_view topic, std::string_view body);

  /// Port of the first TCP listener (0 before `listen`).
  [[nodiscard]] std::uint16_t port() const noexcept;
  /// Names of the registered commands, sorted.
  [[nodiscard]] std::vector<std::string> command_names() const;
  /// What DESCRIBE says about each registered command, sorted by name.
  [[nodiscard]] std::vector<command_description> descriptions() const;
  [[nodiscard]] const endpoint_options& options() const noexcept;
  /// A snapshot of the counters; callable from any thread.
  [[nodiscard]] endpoint_stats stats() const noexcept;
  /// Everything counted since construction, summed over the workers: what STATS and /metrics
  /// show. Callable from any thread; each figure is read once, so figures written meanwhile may
  /// or may not be in it.
  [[nodiscard]] endpoint_report report() const;
  /// True once stop() has begun (HEALTH answers DRAINING).
  [[nodiscard]] bool draining() const noexcept;

  /// Starts the worker threads and accept loops; returns at once.
  void start();
  /// Blocks until `stop()` has finished.
  void wait();
  /// `start()` then `wait()`.
  void run();
  /// HEALTH says DRAINING from now on; after drain_grace (serving as usual meanwhile) it stops
  /// accepting, each connection finishes the requests it has read, flushes their replies and
  /// closes (idle ones at once); waits at most drain_timeout, then joins the workers.
  /// Idempotent; callable from any thread (from a handler it returns without waiting).
  void stop();

 private:
  void add_handler(std::string_view name, raw_handler sync, async_raw_handler async,
                   stream_handler stream, bool line, bool offloaded = false, bool builtin = false,
                   std::optional<command_description> description = {});
  template <command C, class F>
  static raw_handler make_sync_handler(F fn, decode_limits limits);

  template <class Resp>
  static void encode_reply(const Resp& resp, const request_context& rc, reply_writer& w) {
    codec<Resp>::encode(resp, rc.enc, w.body());
  }
  /// A handler's result<Resp>: the value is encoded, an error becomes the ERR reply.
  template <class Resp>
  static void encode_reply(const result<Resp>& resp, const request_context& rc, reply_writer& w) {
    if (resp) {
      codec<Resp>::encode(*resp, rc.enc, w.body());
    } else {
      w.fail(resp.error());
    }
  }

  struct impl;
  std::unique_ptr<impl> impl_;
};

namespace detail {
/// Bodies larger than this are decoded into a reused request object once, which is then
/// reset, so each thread keeps at most about this much per command between requests.
inline constexpr std::size_t reused_request_max_body = 64 * 1024;

/// A protobuf arena for decoding one request at a time on one thread, with a first block of its
/// own that Reset() keeps.
struct request_arena {
  static constexpr std::size_t block_size = 8 * 1024;
  alignas(std::max_align_t) char block[block_size];
  google::protobuf::Arena arena{[this] {
    google::protobuf::ArenaOptions options;
    options.initial_block = block;
    options.initial_block_size = block_size;
    return options;
  }()};
};

/// Calls a typed handler with the request, and the call's context if it takes one.
template <class F, class Req>
decltype(auto) invoke_handler(F& fn, const Req& req, const request_context& rc) {
  if constexpr (std::is_invocable_v<F&, const Req&, const call_context&>) {
    return fn(req, static_cast<const call_context&>(*rc.call));
  } else {
    return fn(req);
  }
}
template <class F, class Req>
using handler_result_t = decltype(invoke_handler(std::declval<F&>(), std::declval<const Req&>(),
                                                 std::declval<const request_context&>()));
}  // namespace detail

template <command C, class F>
raw_handler endpoint::make_sync_handler(F fn, decode_limits limits) {
  using request_t = typename C::request;
  using response_t = typename C::response;
  using returned = detail::handler_result_t<F, request_t>;
  static_assert(detail::handler_return<returned, response_t>,
                "handler must return C::response or cmdwire::result<C::response>");
  auto serve = [fn = std::move(fn), limits](request_t& req, const request_context& rc,
                                            reply_writer& w) mutable {
    if (auto decoded = codec<request_t>::decode(rc.body, rc.enc, req, limits); !decoded) {
      w.fail(errc::bad_body, std::move(decoded.error().message));
      return;
    }
    if constexpr (std::is_same_v<returned, result<response_t>>) {
      encode_reply(detail::invoke_handler(fn, req, rc), rc, w);
    } else {
      encode_reply<response_t>(detail::invoke_handler(fn, req, rc), rc, w);
    }
  };
  if constexpr (reuses_request<C> && protobuf_message<request_t>) {
    return [serve = std::move(serve)](const request_context& rc, reply_writer& w) mutable {
      // The message lives on a per-thread arena whose first block is kept, so decoding it
      // (strings, map entries, sub-messages) allocates nothing until a request outgrows the
      // block; Reset() then frees what was added beyond it.
      thread_local detail::request_arena scratch;
      // Reset also when the handler throws (run_sync turns that into the ERR reply).
      struct reset_on_exit {
        google::protobuf::Arena& arena;
        ~reset_on_exit() { arena.Reset(); }
      } reset{scratch.arena};
      auto* req = google::protobuf::Arena::CreateMessage<request_t>(&scratch.arena);
      serve(*req, rc, w);
    };
  } else if constexpr (reuses_request<C>) {
    return [serve = std::move(serve)](const request_context& rc, reply_writer& w) mutable {
      if (rc.enc != wire::encoding::bin) {
        request_t req{};
        serve(req, rc, w);
        return;
      }
      // One per thread and handler: a synchronous handler finishes before its thread takes
      // the next request, so no two calls ever share it.
      thread_local request_t reused{};
      serve(reused, rc, w);
      // A rare large request should not pin its memory to the thread for good.
      if (rc.body.size() > detail::reused_request_max_body) reused = request_t{};
    };
  } else {
    return [serve = std::move(serve)](const request_context& rc, reply_writer& w) mutable {
      request_t req{};
      serve(req, rc, w);
    };
  }
}

template <command C, class F>
void endpoint::handle(F fn) {
  using request_t = typename C::request;
  using response_t = typename C::response;
  static_assert(std::is_invocable_v<F&, const request_t&> ||
                    std::is_invocable_v<F&, const request_t&, const call_context&>,
                "handler must be callable with const C::request& "
                "(and optionally const cmdwire::call_context&)");
  using returned = detail::handler_result_t<F, request_t>;
  const decode_limits limits = options().decode;

  if constexpr (detail::awaitable_value<returned>::is_awaitable) {
    using awaited = typename detail::awaitable_value<returned>::type;
    static_assert(detail::handler_return<awaited, response_t>,
                  "async handler must return asio::awaitable<C::response> or "
                  "asio::awaitable<cmdwire::result<C::response>>");
    async_raw_handler h = [fn = std::move(fn), limits](const request_context& rc,
                                                       reply_writer& w) -> asio::awaitable<void> {
      request_t req{};
      if (auto decoded = codec<request_t>::decode(rc.body, rc.enc, req, limits); !decoded) {
        w.fail(errc::bad_body, std::move(decoded.error().message));
        co_return;
      }
      if constexpr (std::is_same_v<awaited, result<response_t>>) {
        const result<response_t> resp = co_await detail::invoke_handler(fn, req, rc);
        encode_reply(resp, rc, w);
      } else {
        const response_t resp = co_await detail::invoke_handler(fn, req, rc);
        encode_reply(resp, rc, w);
      }
    };
    add_handler(C::name, {}, std::move(h), {}, is_line_command<C>, false, false,
                describe_command<C>());
  } else {
    add_handler(C::name, make_sync_handler<C>(std::move(fn), limits), {}, {}, is_line_command<C>,
                false, false, describe_command<C>());
  }
}

template <command C, class F>
void endpoint::handle(F fn, offload_t) {
  using returned = detail::handler_result_t<F, typename C::request>;
  static_assert(!detail::awaitable_value<returned>::is_awaitable,
                "only synchronous handlers are offloaded: an awaiting one does not hold its "
                "thread");
  add_handler(C::name, make_sync_handler<C>(std::move(fn), options().decode), {}, {},
              is_line_command<C>, true, false, describe_command<C>());
}

}  // namespace cmdwire
