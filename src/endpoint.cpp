// Endpoint lifecycle: handler registry, listeners and their accept loops, the worker pool,
// and stop.
#include "cmdwire/endpoint.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "broker.hpp"
#include "builtins.hpp"
#include "datagram.hpp"
#include "endpoint_impl.hpp"
#include "latency_clock.hpp"
#include "nothrow.hpp"
#include "session.hpp"
#include "tls.hpp"

namespace cmdwire {

using asio::ip::tcp;

namespace {
using detail::nothrow;

// After EMFILE/ENFILE the next accept fails at once too; pausing keeps the loop from spinning
// while connections close and free descriptors.
constexpr auto accept_retry_delay = std::chrono::milliseconds(50);

enum class lifecycle { init, running, draining, stopping, stopped };
}  // namespace

struct endpoint::impl {
  detail::endpoint_state shared;
  endpoint_options& options = shared.options;
  detail::handler_map& handlers = shared.handlers;
  std::unique_ptr<asio::ssl::context> tls;  ///< made by the first listen when options.tls
  /// Before the workers: destroying a worker's context destroys subscribers, which leave it.
  detail::broker broker{shared.options};
  std::vector<std::unique_ptr<detail::worker>> workers;
  std::vector<std::unique_ptr<detail::listener>> listeners;
  std::vector<std::unique_ptr<detail::datagram_service>> datagram_services;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running;
  std::size_t next_worker = 0;  ///< touched only by the accept loops, all on worker 0.

  std::mutex mutex;       ///< guards state
  std::mutex join_mutex;  ///< std::thread::join must not run twice at once
  lifecycle state = lifecycle::init;

  detail::worker& pick_worker() {
    detail::worker& w = *workers[next_worker];
    next_worker = (next_worker + 1) % workers.size();
    return w;
  }

  [[nodiscard]] bool on_worker_thread() const {
    return std::any_of(workers.begin(), workers.end(), [](const auto& w) {
      return w->context.get_executor().running_in_this_thread();
    });
  }

  asio::awaitable<void> accept_loop(detail::listener& l) {
    for (;;) {
      detail::worker& target = pick_worker();
      auto [ec, socket] = co_await l.acceptor.async_accept(target.context, nothrow);
      if (ec == asio::error::operation_aborted || !l.acceptor.is_open()) co_return;
      if (ec) {
        detail::log_line(options, log_level::warn, fmt::format("accept failed: {}", ec.message()));
        asio::steady_timer pause(l.acceptor.get_executor(), accept_retry_delay);
        co_await pause.async_wait(nothrow);
        continue;
      }
      boost::system::error_code ignored;
      if (l.unix_path.empty()) socket.set_option(tcp::no_delay(true), ignored);  // replies batch
      if (shared.connections.load() >= options.max_connections) {
        ++shared.rejected_busy;
        asio::co_spawn(target.context, refuse_busy(std::move(socket)),
                       detail::task_end{&shared, "busy refusal"});
        continue;
      }
      ++shared.connections;  // the session gives it back when it ends
      ++shared.accepted;
      asio::co_spawn(target.context,
                     detail::run_session(shared, target, std::move(socket),
                                         l.raw ? &l.raw : nullptr, tls.get()),
                     detail::task_end{&shared, "session"});
    }
  }

  /// Tells an over-limit connection why it is closed; the write is best effort.
  static asio::awaitable<void> refuse_busy(asio::generic::stream_protocol::socket socket) {
    std::string reply;
    wire::append_error(reply, errc::busy, "server at its connection limit; try again later");
    co_await asio::async_write(socket, asio::buffer(reply), nothrow);
    boost::system::error_code ignored;
    socket.shutdown(asio::socket_base::shutdown_both, ignored);
  }

  /// Before binding a listener (mutex held): only before start(), and TLS loaded once.
  result<void> ready_to_listen() {
    if (state != lifecycle::init) {
      return error{make_error_code(errc::not_connected), "listen before start()"};
    }
    if (options.tls && !tls) {
      auto context = detail::make_server_tls(*options.tls);
      if (!context) return context.error();
      tls = std::move(*context);
    }
    return {};
  }

  /// Stops accepting and drains every worker (mutex held).
  void begin_stop() {
    const bool was_running = state == lifecycle::running || state == lifecycle::draining;
    state = lifecycle::stopping;
    // The socket files go now, so a successor can bind the paths at once; connections made
    // already are not affected.
    for (auto& l : listeners) {
      if (!l->unix_path.empty()) ::unlink(l->unix_path.c_str());
    }
    if (was_running) {
      // Each acceptor and session belongs to one worker thread; close them there.
      for (auto& l : listeners) {
        asio::post(workers.front()->context, [acceptor = &l->acceptor] {
          boost::system::error_code ignored;
          acceptor->close(ignored);
        });
      }
      for (auto& svc : datagram_services) {
        asio::post(workers.front()->context, [socket = &svc->socket] {
          boost::system::error_code ignored;
          socket->close(ignored);
        });
      }
      for (auto& w : workers) {
        w->stopping.store(true);
        asio::post(w->context, [worker = w.get(), timeout = options.drain_timeout] {
          detail::drain_sessions(*worker, timeout);
        });
      }
      // Once their connections have wound down the contexts run out of work and return.
      keep_running.clear();
    }
  }

  void join() {
    std::lock_guard lock(join_mutex);
    for (auto& w : workers) {
      if (w->thread.joinable()) w->thread.join();
    }
    // Offloaded handlers write into calls that the workers' contexts own: finish them first.
    if (shared.handler_pool) shared.handler_pool->join();
  }
};

endpoint::endpoint(endpoint_options options) : impl_(std::make_unique<impl>()) {
  impl_->options = std::move(options);
  unsigned threads = impl_->options.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  impl_->options.threads = threads;
  for (unsigned i = 0; i < threads; ++i) {
    impl_->workers.push_back(std::make_unique<detail::worker>());
  }
  const auto& builtins = impl_->options.builtins;
  const auto builtin = [this](std::string_view name, raw_handler fn, std::string doc,
                              std::string_view request) {
    command_description d;
    d.doc = std::move(doc);
    d.request_schema = fmt::format("{{\"type\":\"{}\"}}", request);
    d.response_schema = R"({"type":"string"})";
    add_handler(name, std::move(fn), {}, {}, false, false, true, std::move(d));
  };
  if (builtins.health) {
    builtin(detail::health_command, detail::health_handler(*this),
            "SERVING, or DRAINING once the server is shutting down", "none");
  }
  if (builtins.stats) {
    builtin(detail::stats_command, detail::stats_handler(*this),
            "JSON: uptime, version, connections, bytes, and per command calls, errors and "
            "latency",
            "none");
  }
  if (builtins.describe) {
    builtin(detail::describe_command, detail::describe_handler(*this),
            "JSON: every command's form, doc and request and response shapes; the body may name "
            "one command",
            "bytes");
  }
}

void endpoint::enable_pubsub() {
  {
    // Both names are checked first, so a refusal leaves neither registered.
    std::lock_guard lock(impl_->mutex);
    for (const char* name : {"SUBSCRIBE", "PUBLISH"}) {
      if (impl_->handlers.contains(std::string(name))) {
        throw std::invalid_argument(fmt::format(
            "cmdwire::endpoint: enable_pubsub: command '{}' is already registered", name));
      }
    }
  }
  detail::add_pubsub_commands(*this, impl_->broker);
}

endpoint::~endpoint() {
  stop();
  wait();
  // Before the workers' contexts go: the backplane completes calls on their executors.
  impl_->broker.stop();
}

void endpoint::add_handler(std::string_view name, raw_handler sync, async_raw_handler async,
                           stream_handler stream, bool line, bool offloaded, bool builtin,
                           std::optional<command_description> description) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->state != lifecycle::init) {
    throw std::logic_error("cmdwire::endpoint: register handlers before start()");
  }
  if (!wire::valid_command_name(name)) {
    throw std::invalid_argument(fmt::format("cmdwire::endpoint: invalid command name '{}'", name));
  }
  if (name == detail::hello_command) {
    throw std::invalid_argument(
        "cmdwire::endpoint: HELLO is the connection-level negotiation (PROTOCOL.md §8)");
  }
  if (!description) {
    // A raw or stream handler: its form is all that is known.
    description.emplace();
    description->form = stream ? "stream" : line ? "line" : "framed";
  }
  description->name = std::string(name);
  detail::handler_entry entry{
      std::move(sync), std::move(async), std::move(stream),      line,
      offloaded,       builtin,          impl_->handlers.size(), std::move(*description)};
  const auto [it, added] = impl_->handlers.emplace(std::string(name), std::move(entry));
  if (!added && it->second.builtin) {
    throw std::invalid_argument(
        fmt::format("cmdwire::endpoint: '{}' is a built-in command; switch it off in "
                    "endpoint_options::builtins to register your own",
                    name));
  }
  if (!added) {
    throw std::invalid_argument(
        fmt::format("cmdwire::endpoint: command '{}' registered twice", name));
  }
}

void endpoint::handle_raw(std::string_view name, raw_handler fn, bool line) {
  add_handler(name, std::move(fn), {}, {}, line);
}

void endpoint::handle_raw_async(std::string_view name, async_raw_handler fn, bool line) {
  add_handler(name, {}, std::move(fn), {}, line);
}

void endpoint::handle_stream(std::string_view name, stream_handler fn) {
  add_handler(name, {}, {}, std::move(fn), false);
}

namespace {
result<tcp::endpoint> resolve_listen_address(asio::io_context& ctx, std::string_view host,
                                             std::uint16_t port) {
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(std::string(host), ec);
  if (!ec) return tcp::endpoint(addr, port);
  tcp::resolver resolver(ctx);
  auto results = resolver.resolve(std::string(host), std::to_string(port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return error{
        ec ? std::error_code(ec) : make_error_code(errc::bad_address),
        fmt::format("cannot resolve listen host '{}': {}", host, ec ? ec.message() : "no address")};
  }
  return results.begin()->endpoint();
}
}  // namespace

result<std::uint16_t> endpoint::serve(std::string_view host, std::uint16_t port,
                                      connection_handler fn) {
  std::lock_guard lock(impl_->mutex);
  if (auto ready = impl_->ready_to_listen(); !ready) return ready.error();
  auto& ctx = impl_->workers.front()->context;
  auto where = resolve_listen_address(ctx, host, port);
  if (!where) return where.error();
  tcp::acceptor acceptor(ctx);
  boost::system::error_code ec;
  const auto fail = [&](std::string_view step) {
    return error{ec,
                 fmt::format("cannot listen on {}:{} ({}): {}", host, port, step, ec.message())};
  };
  if (acceptor.open(where->protocol(), ec); ec) return fail("open");
  if (acceptor.set_option(tcp::acceptor::reuse_address(true), ec); ec) return fail("option");
  if (acceptor.bind(*where, ec); ec) return fail("bind");
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) return fail("listen");
  const auto bound = acceptor.local_endpoint(ec);
  if (ec) return fail("local_endpoint");
  impl_->listeners.push_back(std::make_unique<detail::listener>(detail::listener{
      asio::basic_socket_acceptor<asio::generic::stream_protocol>(std::move(acceptor)),
      std::move(fn),
      {}}));
  return bound.port();
}

namespace {
/// Makes way for a Unix-domain listener at `path`: a socket file nobody listens on any more
/// (a server that crashed) is removed; a live one, or a file that is not a socket, is an error.
result<void> clear_stale_socket(asio::io_context& ctx, const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return {};  // nothing there
  if (!S_ISSOCK(st.st_mode)) {
    return make_error(
        errc::bad_address,
        fmt::format("cannot listen on unix:{}: the file exists and is not a socket", path));
  }
  asio::local::stream_protocol::socket probe(ctx);
  boost::system::error_code ec;
  probe.connect(asio::local::stream_protocol::endpoint(path), ec);
  if (!ec) {
    return error{
        make_error_code(std::errc::address_in_use),
        fmt::format("cannot listen on unix:{}: a server is already listening there", path)};
  }
  if (ec != asio::error::connection_refused) {
    return error{ec, fmt::format("cannot listen on unix:{}: {}", path, ec.message())};
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return error{std::error_code(errno, std::generic_category()),
                 fmt::format("cannot remove the stale socket file {}", path)};
  }
  return {};
}
}  // namespace

result<void> endpoint::listen_unix(std::string_view path, std::optional<unsigned> mode) {
  std::lock_guard lock(impl_->mutex);
  if (auto ready = impl_->ready_to_listen(); !ready) return ready.error();
  const std::string file(path);
  if (file.empty() || file.size() >= sizeof(sockaddr_un::sun_path)) {
    return make_error(errc::bad_address, fmt::format("a Unix socket path is 1-{} bytes",
                                                     sizeof(sockaddr_un::sun_path) - 1));
  }
  auto& ctx = impl_->workers.front()->context;
  if (auto cleared = clear_stale_socket(ctx, file); !cleared) return cleared.error();
  asio::local::stream_protocol::acceptor acceptor(ctx);
  boost::system::error_code ec;
  const auto fail = [&](std::string_view step) {
    return error{ec, fmt::format("cannot listen on unix:{} ({}): {}", file, step, ec.message())};
  };
  if (acceptor.open(asio::local::stream_protocol(), ec); ec) return fail("open");
  if (acceptor.bind(asio::local::stream_protocol::endpoint(file), ec); ec) return fail("bind");
  if (mode && ::chmod(file.c_str(), static_cast<mode_t>(*mode)) != 0) {
    ec.assign(errno, boost::system::generic_category());
    ::unlink(file.c_str());
    return fail("chmod");
  }
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
    ::unlink(file.c_str());
    return fail("listen");
  }
  impl_->listeners.push_back(std::make_unique<detail::listener>(detail::listener{
      asio::basic_socket_acceptor<asio::generic::stream_protocol>(std::move(acceptor)), {}, file}));
  return {};
}

result<std::uint16_t> endpoint::listen(std::string_view host, std::uint16_t port) {
  return serve(host, port, {});
}

result<std::uint16_t> endpoint::serve_udp(std::string_view host, std::uint16_t port,
                                          datagram_handler fn) {
  using asio::ip::udp;
  std::lock_guard lock(impl_->mutex);
  if (impl_->state != lifecycle::init) {
    return error{make_error_code(errc::not_connected), "serve_udp before start()"};
  }
  auto& ctx = impl_->workers.front()->context;
  auto where = resolve_listen_address(ctx, host, port);
  if (!where) return where.error();
  auto svc = std::make_unique<detail::datagram_service>(
      detail::datagram_service{udp::socket(ctx), std::move(fn)});
  boost::system::error_code ec;
  const auto fail = [&](std::string_view step) {
    return error{ec,
                 fmt::format("cannot serve udp on {}:{} ({}): {}", host, port, step, ec.message())};
  };
  const udp::endpoint local(where->address(), where->port());
  if (svc->socket.open(local.protocol(), ec); ec) return fail("open");
  if (svc->socket.bind(local, ec); ec) return fail("bind");
  const auto bound = svc->socket.local_endpoint(ec);
  if (ec) return fail("local_endpoint");
  impl_->datagram_services.push_back(std::move(svc));
  return bound.port();
}

std::size_t endpoint::publish(std::string_view topic, std::string_view body) {
  return impl_->broker.publish(topic, body);
}

std::uint16_t endpoint::port() const noexcept {
  std::lock_guard lock(impl_->mutex);
  if (impl_->listeners.empty()) return 0;
  boost::system::error_code ec;
  for (const auto& l : impl_->listeners) {
    if (!l->unix_path.empty()) continue;
    const auto ep = l->acceptor.local_endpoint(ec);
    if (ec || ep.size() > sizeof(sockaddr_storage)) return 0;
    tcp::endpoint ip;
    std::memcpy(ip.data(), ep.data(), ep.size());
    ip.resize(ep.size());
    return ip.port();
  }
  return 0;
}

std::vector<std::string> endpoint::command_names() const {
  std::vector<std::string> names;
  names.reserve(impl_->handlers.size());
  for (const auto& [name, entry] : impl_->handlers) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<command_description> endpoint::descriptions() const {
  std::vector<command_description> out;
  out.reserve(impl_->handlers.size());
  for (const auto& [name, entry] : impl_->handlers) out.push_back(entry.description);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

const endpoint_options& endpoint::options() const noexcept { return impl_->options; }

endpoint_stats endpoint::stats() const noexcept {
  const auto& st = impl_->shared;
  return {st.connections.load(),   st.buffered_bytes.load(), st.accepted.load(),
          st.rejected_busy.load(), st.timed_out.load(),      st.task_failures.load()};
}

bool endpoint::draining() const noexcept { return impl_->shared.draining.load(); }

endpoint_report endpoint::report() const {
  const auto& st = impl_->shared;
  endpoint_report r;
  r.version = CMDWIRE_VERSION;
  r.uptime_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - st.started).count();
  r.draining = st.draining.load();
  r.connections = st.connections.load();
  r.accepted = st.accepted.load();
  r.rejected = st.rejected_busy.load();
  r.timed_out = st.timed_out.load();
  r.backplane = impl_->broker.backplane_report();
  r.commands.resize(impl_->handlers.size());
  for (const auto& [name, entry] : impl_->handlers) {
    command_report& c = r.commands[entry.index];
    c.name = name;
    c.latency_buckets.assign(detail::latency_buckets::count + 1, 0);
  }
  for (const auto& w : impl_->workers) {
    const detail::worker_counters& wc = w->counters;
    r.bytes_in += wc.bytes_in.get();
    r.bytes_out += wc.bytes_out.get();
    r.unknown_commands += wc.unknown_commands.get();
    r.protocol_errors += wc.protocol_errors.get();
    // Empty before start(): every command has counted nothing yet.
    for (std::size_t i = 0; i < wc.commands.size() && i < r.commands.size(); ++i) {
      detail::add_counters(wc.commands[i], r.commands[i]);
    }
  }
  for (command_report& c : r.commands) {
    // A bucket's upper edge can pass the slowest call; no quantile is above the maximum.
    const auto quantile = [&c](double p) {
      return std::min(detail::latency_quantile(c.latency_buckets, p), c.latency_max_seconds);
    };
    c.p50_seconds = quantile(0.50);
    c.p90_seconds = quantile(0.90);
    c.p99_seconds = quantile(0.99);
  }
  std::sort(r.commands.begin(), r.commands.end(),
            [](const command_report& a, const command_report& b) { return a.name < b.name; });
  return r;
}

void endpoint::start() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->state != lifecycle::init) return;
  impl_->state = lifecycle::running;
  // The latency clock calibrates itself (2 ms) on first use: here, not in a first request.
  (void)detail::latency_clock::now();
  // Each command has a slot in every worker's counters; the registry is fixed from here on.
  for (auto& w : impl_->workers) w->counters.commands.resize(impl_->handlers.size());
  for (auto& w : impl_->workers) impl_->keep_running.push_back(asio::make_work_guard(w->context));
  for (auto& l : impl_->listeners) {
    asio::co_spawn(impl_->workers.front()->context, impl_->accept_loop(*l),
                   detail::task_end{&impl_->shared, "accept loop"});
  }
  for (auto& svc : impl_->datagram_services) {
    asio::co_spawn(impl_->workers.front()->context,
                   detail::run_datagram_service(*svc, impl_->options),
                   detail::task_end{&impl_->shared, "datagram service"});
  }
  const bool offloads = std::any_of(impl_->handlers.begin(), impl_->handlers.end(),
                                    [](const auto& h) { return h.second.offload; });
  if (offloads) {
    unsigned n = impl_->options.handler_threads;
    if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
    impl_->shared.handler_pool.emplace(n);
  }
  impl_->broker.start();
  for (auto& w : impl_->workers) {
    w->thread = std::thread([ctx = &w->context] { ctx->run(); });
  }
}

void endpoint::stop() {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->state != lifecycle::init && impl_->state != lifecycle::running) return;
    impl_->shared.draining.store(true);
    if (impl_->state == lifecycle::running && impl_->options.drain_grace.count() > 0) {
      // Serve as before while health checks see DRAINING; then drain.
      impl_->state = lifecycle::draining;
      asio::co_spawn(
          impl_->workers.front()->context,
          [this]() -> asio::awaitable<void> {
            asio::steady_timer grace(co_await asio::this_coro::executor,
                                     impl_->options.drain_grace);
            co_await grace.async_wait(nothrow);
            std::lock_guard lock(impl_->mutex);
            impl_->begin_stop();
          },
          detail::task_end{&impl_->shared, "drain grace"});
    } else {
      impl_->begin_stop();
    }
  }
  if (!impl_->on_worker_thread()) wait();
}

void endpoint::wait() {
  if (impl_->on_worker_thread()) {
    throw std::logic_error("cmdwire::endpoint::wait() called from one of its own handlers");
  }
  impl_->join();
  std::lock_guard lock(impl_->mutex);
  if (impl_->state == lifecycle::stopping) impl_->state = lifecycle::stopped;
}

void endpoint::run() {
  start();
  wait();
}

}  // namespace cmdwire
