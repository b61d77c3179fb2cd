// Connections of the closed loop. Every request is the same frame, so the send buffer holds
// `depth` copies once and a batch of k requests is its first k frames: the steady state
// allocates nothing (Asio recycles the handler memory of each read and write).
#include "load.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <thread>

namespace cmdwire::bench {

using asio::ip::tcp;
using clock = std::chrono::steady_clock;

namespace {
// Room for a burst of pipelined replies; grows when one reply is bigger.
constexpr std::size_t min_read_buffer = 64 * 1024;
constexpr double min_latency_us = 0.1;
constexpr double max_latency_us = 1e8;
constexpr unsigned latency_bins = 1000;
}  // namespace

latency_histogram make_latency_histogram() {
  return boost::histogram::make_histogram_with(
      std::vector<std::uint64_t>{}, latency_axis(latency_bins, min_latency_us, max_latency_us));
}

double quantile_us(const latency_histogram& h, double q, double max_us) {
  double total = 0;
  for (auto&& x : boost::histogram::indexed(h, boost::histogram::coverage::all)) total += *x;
  if (total == 0) return 0;
  const double target = q * total;
  double seen = 0;
  for (auto&& x : boost::histogram::indexed(h, boost::histogram::coverage::all)) {
    seen += *x;
    if (seen >= target && *x > 0) return std::min(x.bin().upper(), max_us);
  }
  return max_us;
}

struct load::worker {
  asio::io_context context{1};
  std::thread thread;
};

class load::connection {
 public:
  connection(asio::io_context& ctx, const workload& work, const load_options& opt,
             thread_stats& stats, const std::atomic<phase>& current)
      : socket_(ctx),
        work_(work),
        stats_(stats),
        current_(current),
        mixed_(!work.sleep_request.empty() && !opt.idle && opt.depth > 1),
        depth_(opt.idle ? 1 : opt.depth - (mixed_ ? 1 : 0)),
        idle_(opt.idle),
        greeting_(!work.hello.empty()),
        sent_at_(depth_),
        in_(std::max(min_read_buffer, 2 * work.expected.size() + 2 * work.limits.max_line)) {
    batch_.reserve(work.request.size() * depth_);
    for (unsigned i = 0; i < depth_; ++i) batch_ += work.request;
  }

  void start(const asio::generic::stream_protocol::endpoint& target) {
    const bool tcp_target = target.protocol().family() != AF_UNIX;
    socket_.async_connect(target, [this, tcp_target](boost::system::error_code ec) {
      if (ec) return fail(fmt::format("connect: {}", ec.message()));
      if (tcp_target) socket_.set_option(tcp::no_delay(true), ec);
      if (greeting_) {
        // HELLO first; the load starts once its reply has granted out-of-order replies.
        asio::async_write(socket_, asio::buffer(work_.hello),
                          [this](boost::system::error_code wec, std::size_t) {
                            if (wec) fail(fmt::format("write: {}", wec.message()));
                          });
      } else {
        begin_load();
      }
      start_read();
    });
  }

 private:
  void fail(std::string why) {
    ++stats_.errors;
    if (stats_.first_error.empty()) stats_.first_error = std::move(why);
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  void begin_load() {
    owed_ = depth_;
    sleep_owed_ = mixed_;
    pump_write();
  }

  /// Sends every request owed in one write; at most one write is in progress.
  void pump_write() {
    if (writing_ || (owed_ == 0 && !sleep_owed_) || !socket_.is_open()) return;
    if (current_.load(std::memory_order_relaxed) == phase::stop) return;
    const std::size_t k = owed_;
    owed_ = 0;
    const auto now = clock::now();
    for (std::size_t i = 0; i < k; ++i) {
      sent_at_[(sent_head_ + in_flight_) % depth_] = now;
      ++in_flight_;
    }
    // The SLEEP goes first, so the requests after it are the ones it could hold up.
    const std::size_t sleep_bytes = sleep_owed_ ? work_.sleep_request.size() : 0;
    sleep_owed_ = false;
    const std::array<asio::const_buffer, 2> both{
        asio::buffer(work_.sleep_request.data(), sleep_bytes),
        asio::buffer(batch_.data(), k * work_.request.size())};
    writing_ = true;
    asio::async_write(socket_, both, [this](boost::system::error_code ec, std::size_t n) {
      writing_ = false;
      if (ec) return fail(fmt::format("write: {}", ec.message()));
      stats_.bytes_sent += n;
      pump_write();
    });
  }

  void start_read() {
    if (in_end_ == in_.size()) {
      if (in_begin_ > 0) {
        std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
        in_end_ -= in_begin_;
        in_begin_ = 0;
      } else {
        in_.resize(2 * in_.size());  // one reply bigger than the buffer: rare, not per request
      }
    }
    socket_.async_read_some(asio::buffer(in_.data() + in_end_, in_.size() - in_end_),
                            [this](boost::system::error_code ec, std::size_t n) {
                              if (ec) {
                                if (current_.load(std::memory_order_relaxed) != phase::stop) {
                                  fail(fmt::format("read: {}", ec.message()));
                                }
                                return;
                              }
                              in_end_ += n;
                              if (on_data()) start_read();
                            });
  }

  /// Consumes every complete reply; false when the stream can no longer be trusted.
  bool on_data() {
    const phase now_phase = current_.load(std::memory_order_relaxed);
    const auto now = clock::now();
    std::size_t done = 0;
    while (in_end_ > in_begin_) {
      const std::string_view data(in_.data() + in_begin_, in_end_ - in_begin_);
      std::size_t size = 0;
      bool good = false;
      const std::string_view frame = work_.expected_frame;
      if (greeting_) {
        const wire::reply_parse hello = wire::parse_reply(data, work_.limits);
        if (hello.state == wire::status::need_more) break;
        if (hello.state == wire::status::error || !hello.value.ok ||
            !wire::has_feature(hello.value.body, "ooo")) {
          fail("the server did not grant out-of-order replies (HELLO ooo)");
          return false;
        }
        in_begin_ += hello.size;
        greeting_ = false;
        begin_load();
        continue;
      }
      const std::string_view sleep_frame = work_.sleep_reply_frame;
      if (mixed_ && data.starts_with(sleep_frame)) {
        in_begin_ += sleep_frame.size();
        sleep_owed_ = true;  // replaced at the next write; its latency is not the point
        continue;
      }
      if (mixed_ && sleep_frame.starts_with(data)) break;  // may become the SLEEP reply
      if (work_.kind == framing::raw) {
        if (data.size() < work_.expected.size()) break;
        size = work_.expected.size();
        good = std::memcmp(data.data(), work_.expected.data(), size) == 0;
      } else if (!frame.empty() && data.starts_with(frame)) {
        // The exact reply: as cheap to check as raw bytes, so the tool costs the same per
        // reply whatever the server speaks.
        size = frame.size();
        good = true;
      } else if (!frame.empty() && frame.starts_with(data)) {
        break;  // the start of the exact reply: wait for the rest
      } else {
        const wire::reply_parse parsed = work_.kind == framing::cmdwire
                                             ? wire::parse_reply(data, work_.limits)
                                             : wire::parse_line_reply(data, work_.limits);
        if (parsed.state == wire::status::need_more) break;
        if (parsed.state == wire::status::error) {
          fail(fmt::format("bad reply: {}", parsed.detail));
          return false;
        }
        size = parsed.size;
        good = parsed.value.ok && (!work_.check_body || parsed.value.body == work_.expected);
        if (!good && stats_.first_error.empty()) {
          stats_.first_error = fmt::format("wrong reply: {}{}", parsed.value.ok ? "" : "ERR ",
                                           parsed.value.ok ? "unexpected body" : parsed.value.code);
        }
      }
      in_begin_ += size;
      if (in_flight_ == 0) {
        fail("a reply nobody asked for");
        return false;
      }
      const auto sent = sent_at_[sent_head_];
      sent_head_ = (sent_head_ + 1) % depth_;
      --in_flight_;
      ++done;
      if (!good) {
        ++stats_.errors;
        if (stats_.first_error.empty()) stats_.first_error = "wrong reply";
        continue;
      }
      if (now_phase == phase::measure) {
        const double us = std::chrono::duration<double, std::micro>(now - sent).count();
        stats_.latency(us);
        stats_.max_us = std::max(stats_.max_us, us);
        ++stats_.completed;
      }
    }
    if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;
    stats_.live_completed.store(stats_.completed, std::memory_order_relaxed);
    stats_.live_replies.fetch_add(done, std::memory_order_relaxed);
    if (!idle_) {
      owed_ += done;
      pump_write();
    }
    return true;
  }

  asio::generic::stream_protocol::socket socket_;
  const workload& work_;
  thread_stats& stats_;
  const std::atomic<phase>& current_;
  const bool mixed_;  ///< one SLEEP in flight besides the depth_ measured requests
  const unsigned depth_;
  const bool idle_;
  bool greeting_;  ///< waiting for the HELLO reply
  bool sleep_owed_ = false;
  std::string batch_;                       ///< `depth_` copies of the request frame
  std::vector<clock::time_point> sent_at_;  ///< ring of send times, oldest at sent_head_
  std::size_t sent_head_ = 0;
  std::size_t in_flight_ = 0;
  std::size_t owed_ = 0;  ///< requests answered but not yet replaced by new ones
  bool writing_ = false;
  std::vector<char> in_;
  std::size_t in_begin_ = 0;
  std::size_t in_end_ = 0;
};

load::load(const workload& work, const load_options& options, const std::atomic<phase>& current) {
  const unsigned threads = std::max(1u, std::min(options.threads, options.conns));
  for (unsigned t = 0; t < threads; ++t) {
    stats_.push_back(std::make_unique<thread_stats>());
    workers_.push_back(std::make_unique<worker>());
  }
  for (unsigned i = 0; i < options.conns; ++i) {
    connections_.push_back(std::make_unique<connection>(workers_[i % threads]->context, work,
                                                        options, *stats_[i % threads], current));
  }
  for (unsigned i = 0; i < options.conns; ++i) connections_[i]->start(options.target);
}

load::~load() { stop_and_join(); }

void load::start() {
  for (auto& w : workers_) {
    w->thread = std::thread([ctx = &w->context] {
      auto guard = asio::make_work_guard(*ctx);  // idle connections have no pending work
      ctx->run();
    });
  }
}

void load::stop_and_join() {
  for (auto& w : workers_) w->context.stop();
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

std::uint64_t load::live_completed() const noexcept {
  std::uint64_t sum = 0;
  for (const auto& s : stats_) sum += s->live_completed.load(std::memory_order_relaxed);
  return sum;
}

std::uint64_t load::live_replies() const noexcept {
  std::uint64_t sum = 0;
  for (const auto& s : stats_) sum += s->live_replies.load(std::memory_order_relaxed);
  return sum;
}

}  // namespace cmdwire::bench
