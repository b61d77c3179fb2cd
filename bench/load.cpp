// Connections of the load. Each write sends every request that may go now (closed loop: one
// per free slot; open loop: those due, up to the cap) as one buffer, reused from write to
// write: the steady state allocates nothing (Asio recycles the handler memory of each read,
// write and timer wait).
#include "load.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <deque>
#include <future>
#include <thread>

namespace cmdwire::bench {

using asio::ip::tcp;

namespace {
// Room for a burst of pipelined replies; grows when one reply is bigger.
constexpr std::size_t min_read_buffer = 64 * 1024;
constexpr double min_latency_us = 0.1;
constexpr double max_latency_us = 1e8;
constexpr unsigned latency_bins = 1000;
// How much of an unexpected reply an error message quotes.
constexpr std::size_t max_quoted_reply = 80;
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

thread_stats::thread_stats(std::size_t window_count, std::size_t command_count)
    : windows(window_count, window_stats{std::vector<command_stats>(command_count), 0}) {}

void load::readiness::report_ready() {
  {
    const std::lock_guard lock(mutex);
    ++ready;
  }
  changed.notify_all();
}

void load::readiness::report_failure(start_error e) {
  {
    const std::lock_guard lock(mutex);
    if (!failure) failure = std::move(e);
  }
  changed.notify_all();
}

struct load::worker {
  asio::io_context context{1};
  std::thread thread;
};

class load::connection {
 public:
  connection(asio::io_context& ctx, std::span<const workload> work,
             std::span<const std::uint16_t> cycle, const load_options& opt, unsigned index,
             thread_stats& stats, const std::atomic<int>& window, readiness& ready)
      : socket_(ctx),
        timer_(ctx),
        work_(work),
        cycle_(cycle),
        // Connections start at different places in the cycle, so that at any moment the
        // server sees the mix, not every connection sending the same command at once.
        cycle_at_(cycle.empty() ? 0 : index % cycle.size()),
        stats_(stats),
        window_(window),
        ready_(ready),
        rates_(opt.rates),
        open_(!opt.rates.empty() && !opt.idle),
        index_(index),
        conns_(opt.conns),
        mixed_(!work.front().sleep_request.empty() && !opt.idle && opt.depth > 1),
        depth_(opt.idle ? 1 : opt.depth - (mixed_ ? 1 : 0)),
        idle_(opt.idle),
        greeting_(!work.front().hello.empty()),
        ring_(depth_) {
    std::size_t biggest_request = 0;
    std::size_t biggest_reply = 0;
    for (const auto& w : work) {
      biggest_request = std::max(biggest_request, w.request.size());
      biggest_reply = std::max(biggest_reply, w.expected.size() + w.limits.max_line);
    }
    out_.reserve(biggest_request * depth_ + work.front().sleep_request.size());
    in_.resize(std::max(min_read_buffer, 2 * biggest_reply));
  }

  void start(const asio::generic::stream_protocol::endpoint& target) {
    const bool tcp_target = target.protocol().family() != AF_UNIX;
    socket_.async_connect(target, [this, tcp_target](boost::system::error_code ec) {
      if (ec) {
        ready_.report_failure({start_error::kind::connect, ec.message()});
        return fail(fmt::format("connect: {}", ec.message()));
      }
      if (tcp_target) socket_.set_option(tcp::no_delay(true), ec);
      if (greeting_) {
        // HELLO first; the connection is ready once its reply has granted out-of-order
        // replies.
        asio::async_write(socket_, asio::buffer(work_.front().hello),
                          [this](boost::system::error_code wec, std::size_t) {
                            if (wec) fail(fmt::format("write: {}", wec.message()));
                          });
      } else {
        ready_.report_ready();
      }
      start_read();
    });
  }

  /// Starts sending; runs on the connection's thread, after every connection is ready.
  void begin(clock::time_point at) {
    begun_ = true;
    sleep_owed_ = mixed_;
    if (open_) {
      const int w = window_.load(std::memory_order_relaxed);
      schedule_window_ = w;
      const auto interval = interval_for(w);
      schedule_.push_back({0, at + stagger(interval), interval});
    }
    pump();
  }

 private:
  /// A stretch of the open-loop schedule: request n (n >= first) is due at
  /// `base + (n - first) * interval`, until the next segment takes over.
  struct segment {
    std::uint64_t first;
    clock::time_point base;
    clock::duration interval;
  };

  /// An in-flight request: when it was sent (closed loop) or due (open loop), and which
  /// workload it is.
  struct pending {
    clock::time_point since;
    std::uint16_t command;
  };

  enum class outcome { ok, wrong, error_code };

  /// This connection's share of the window's rate: each of `conns_` sends every interval.
  clock::duration interval_for(int window) const {
    const double rate = rates_[window >= 0 ? static_cast<std::size_t>(window) : 0];
    const double seconds = static_cast<double>(conns_) / rate;
    return std::max(clock::duration(1), std::chrono::duration_cast<clock::duration>(
                                            std::chrono::duration<double>(seconds)));
  }

  /// Connections are spread over one interval, so that they do not all send at once.
  clock::duration stagger(clock::duration interval) const { return interval * index_ / conns_; }

  /// Number of requests due at `now`: every request whose time has come, sent or not.
  std::uint64_t due_at(clock::time_point now) const {
    const segment& s = schedule_.back();
    if (now < s.base) return s.first;
    return s.first + static_cast<std::uint64_t>((now - s.base) / s.interval) + 1;
  }

  clock::time_point due_time(std::uint64_t n) const {
    auto s = schedule_.rbegin();
    while (s->first > n) ++s;  // the segments are few: one per rate step at most
    return s->base + s->interval * static_cast<clock::duration::rep>(n - s->first);
  }

  /// A new window with another rate: requests due so far keep their times (and are sent late
  /// if they could not go yet); the new rate applies from now.
  void reschedule(int window, clock::time_point now) {
    schedule_window_ = window;
    const auto interval = interval_for(window);
    if (interval == schedule_.back().interval) return;
    const std::uint64_t due = due_at(now);
    if (schedule_.back().first == due) schedule_.pop_back();  // nothing of it was due yet
    schedule_.push_back({due, now + stagger(interval), interval});
    while (schedule_.size() > 1 && schedule_[1].first <= next_) schedule_.pop_front();
  }

  void fail(std::string why) {
    if (!begun_) ready_.report_failure({start_error::kind::connect, why});
    const int w = window_.load(std::memory_order_relaxed);
    if (w >= 0) {
      ++stats_.windows[static_cast<std::size_t>(w)].connection_errors;
    } else {
      ++stats_.connection_errors_outside;
    }
    stats_.live_errors.fetch_add(1, std::memory_order_relaxed);
    if (stats_.first_error.empty()) stats_.first_error = std::move(why);
    boost::system::error_code ignored;
    socket_.close(ignored);
    timer_.cancel();
  }

  /// Sends every request that may go now in one write; at most one write is in progress.
  void pump() {
    if (!begun_ || writing_ || !socket_.is_open()) return;
    const int w = window_.load(std::memory_order_relaxed);
    if (w == stop_window) return;
    const auto now = clock::now();
    std::uint64_t due = 0;
    std::size_t k = depth_ - in_flight_;
    if (open_) {
      if (w != schedule_window_) reschedule(w, now);
      due = due_at(now);
      k = static_cast<std::size_t>(std::min<std::uint64_t>(k, due - next_));
    } else if (idle_ && next_ > 0) {
      k = 0;  // idle: one request per connection, ever
    }
    if (k > 0 || sleep_owed_) {
      out_.clear();
      // The SLEEP goes first, so the requests after it are the ones it could hold up.
      if (sleep_owed_) out_ += work_.front().sleep_request;
      sleep_owed_ = false;
      for (std::size_t i = 0; i < k; ++i, ++next_) {
        const std::uint16_t command = cycle_[(cycle_at_ + next_) % cycle_.size()];
        ring_[(ring_head_ + in_flight_) % depth_] = {open_ ? due_time(next_) : now, command};
        ++in_flight_;
        out_ += work_[command].request;
      }
      writing_ = true;
      asio::async_write(socket_, asio::buffer(out_),
                        [this](boost::system::error_code ec, std::size_t n) {
                          writing_ = false;
                          if (ec) return fail(fmt::format("write: {}", ec.message()));
                          stats_.bytes_sent += n;
                          pump();
                        });
    }
    if (open_) {
      while (schedule_.size() > 1 && schedule_[1].first <= next_) schedule_.pop_front();
      // At the cap, the next reply calls pump(); otherwise wake up when the next one is due.
      if (in_flight_ < depth_) arm_timer(due_time(std::max(due, next_)));
    }
  }

  void arm_timer(clock::time_point at) {
    if (timer_armed_ && timer_at_ <= at) return;
    timer_armed_ = true;
    timer_at_ = at;
    timer_.expires_at(at);  // cancels an earlier wait, whose handler then does nothing
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec == asio::error::operation_aborted) return;
      timer_armed_ = false;
      pump();
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
                                if (window_.load(std::memory_order_relaxed) != stop_window) {
                                  fail(fmt::format("read: {}", ec.message()));
                                }
                                return;
                              }
                              in_end_ += n;
                              if (on_data()) start_read();
                            });
  }

  /// Records one answered request in the window `w` it arrived in.
  void record(int w, const pending& p, outcome what, std::string_view code, clock::time_point now) {
    if (what != outcome::ok) {
      stats_.live_errors.fetch_add(1, std::memory_order_relaxed);
      if (stats_.first_error.empty()) {
        stats_.first_error = what == outcome::wrong
                                 ? fmt::format("wrong reply to {}", work_[p.command].name)
                                 : fmt::format("ERR {} to {}", code, work_[p.command].name);
      }
    }
    if (w < 0) return;
    command_stats& cs = stats_.windows[static_cast<std::size_t>(w)].commands[p.command];
    switch (what) {
      case outcome::ok: {
        const double us = std::chrono::duration<double, std::micro>(now - p.since).count();
        cs.latency(us);
        cs.max_us = std::max(cs.max_us, us);
        ++cs.ok;
        break;
      }
      case outcome::wrong:
        ++cs.wrong;
        break;
      case outcome::error_code:
        if (auto it = cs.codes.find(code); it != cs.codes.end()) {
          ++it->second;
        } else {
          cs.codes.emplace(std::string(code), 1);  // once per code: not in the steady state
        }
        break;
    }
  }

  /// Consumes every complete reply; false when the stream can no longer be trusted.
  bool on_data() {
    const int w = window_.load(std::memory_order_relaxed);
    const auto now = clock::now();
    std::size_t done = 0;
    while (in_end_ > in_begin_) {
      const std::string_view data(in_.data() + in_begin_, in_end_ - in_begin_);
      if (greeting_) {
        const wire::reply_parse hello = wire::parse_reply(data, work_.front().limits);
        if (hello.state == wire::status::need_more) break;
        if (hello.state == wire::status::error || !hello.value.ok ||
            !wire::has_feature(hello.value.body, "ooo")) {
          ready_.report_failure(
              {start_error::kind::hello, "the server did not grant out-of-order replies"});
          fail("the server did not grant out-of-order replies (HELLO ooo)");
          return false;
        }
        in_begin_ += hello.size;
        greeting_ = false;
        ready_.report_ready();
        continue;
      }
      const std::string_view sleep_frame = work_.front().sleep_reply_frame;
      if (mixed_ && data.starts_with(sleep_frame)) {
        in_begin_ += sleep_frame.size();
        sleep_owed_ = true;  // replaced at the next write; its latency is not the point
        continue;
      }
      if (mixed_ && sleep_frame.starts_with(data)) break;  // may become the SLEEP reply
      if (in_flight_ == 0) {
        // E.g. `ERR busy` from a server at its connection limit, sent on accept.
        fail(fmt::format("a reply nobody asked for: '{}'",
                         data.substr(0, std::min(data.find('\n'), max_quoted_reply))));
        return false;
      }
      const pending& p = ring_[ring_head_];
      const workload& work = work_[p.command];
      const std::string_view frame = work.expected_frame;
      std::size_t size = 0;
      outcome what = outcome::ok;
      std::string_view code;
      if (work.kind == framing::raw) {
        if (data.size() < work.expected.size()) break;
        size = work.expected.size();
        if (std::memcmp(data.data(), work.expected.data(), size) != 0) what = outcome::wrong;
      } else if (!frame.empty() && data.starts_with(frame)) {
        // The exact reply: as cheap to check as raw bytes, so the tool costs the same per
        // reply whatever the server speaks.
        size = frame.size();
      } else if (!frame.empty() && frame.starts_with(data)) {
        break;  // the start of the exact reply: wait for the rest
      } else {
        const wire::reply_parse parsed = work.kind == framing::cmdwire
                                             ? wire::parse_reply(data, work.limits)
                                             : wire::parse_line_reply(data, work.limits);
        if (parsed.state == wire::status::need_more) break;
        if (parsed.state == wire::status::error) {
          // Not a reply at all: nothing after it can be paired with a request.
          record(w, p, outcome::wrong, {}, now);
          fail(fmt::format("bad reply to {}: {}", work.name, parsed.detail));
          return false;
        }
        size = parsed.size;
        if (!parsed.value.ok) {
          what = outcome::error_code;
          code = parsed.value.code;
        } else if (work.check_body && parsed.value.body != work.expected) {
          what = outcome::wrong;
        }
      }
      record(w, p, what, code, now);  // before the buffer moves on: `code` points into it
      in_begin_ += size;
      ring_head_ = (ring_head_ + 1) % depth_;
      --in_flight_;
      ++done;
    }
    if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;
    stats_.live_replies.fetch_add(done, std::memory_order_relaxed);
    if (done > 0 || sleep_owed_) pump();
    return true;
  }

  asio::generic::stream_protocol::socket socket_;
  asio::steady_timer timer_;
  std::span<const workload> work_;
  std::span<const std::uint16_t> cycle_;
  const std::size_t cycle_at_;
  thread_stats& stats_;
  const std::atomic<int>& window_;
  readiness& ready_;
  const std::vector<double>& rates_;
  const bool open_;
  const unsigned index_;
  const unsigned conns_;
  const bool mixed_;  ///< one SLEEP in flight besides the depth_ measured requests
  const unsigned depth_;
  const bool idle_;
  bool greeting_;  ///< waiting for the HELLO reply
  bool begun_ = false;
  bool sleep_owed_ = false;
  std::string out_;            ///< the frames of the write in progress
  std::vector<pending> ring_;  ///< in-flight requests, oldest at ring_head_
  std::size_t ring_head_ = 0;
  std::size_t in_flight_ = 0;
  std::uint64_t next_ = 0;  ///< index of the next request to send
  bool writing_ = false;
  std::deque<segment> schedule_;  ///< open loop: when each request is due
  int schedule_window_ = warmup_window;
  bool timer_armed_ = false;
  clock::time_point timer_at_;
  std::vector<char> in_;
  std::size_t in_begin_ = 0;
  std::size_t in_end_ = 0;
};

load::load(std::span<const workload> work, std::span<const std::uint16_t> cycle,
           const load_options& options, const std::atomic<int>& window)
    : options_(options) {
  const unsigned threads = std::max(1u, std::min(options.threads, options.conns));
  const std::size_t windows = std::max<std::size_t>(1, options.rates.size());
  for (unsigned t = 0; t < threads; ++t) {
    stats_.push_back(std::make_unique<thread_stats>(windows, work.size()));
    workers_.push_back(std::make_unique<worker>());
  }
  for (unsigned i = 0; i < options.conns; ++i) {
    connections_.push_back(std::make_unique<connection>(workers_[i % threads]->context, work, cycle,
                                                        options_, i, *stats_[i % threads], window,
                                                        readiness_));
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

std::optional<start_error> load::wait_ready(clock::time_point deadline) {
  std::unique_lock lock(readiness_.mutex);
  const bool settled = readiness_.changed.wait_until(lock, deadline, [&] {
    return readiness_.failure.has_value() || readiness_.ready == options_.conns;
  });
  if (readiness_.failure) return readiness_.failure;
  if (!settled) return start_error{start_error::kind::timeout, "Connection timed out"};
  return std::nullopt;
}

void load::begin(clock::time_point at) {
  const std::size_t threads = workers_.size();
  for (std::size_t i = 0; i < connections_.size(); ++i) {
    asio::post(workers_[i % threads]->context, [c = connections_[i].get(), at] { c->begin(at); });
  }
}

void load::sync() {
  // A handler posted now runs after every handler that may have read the old window; its
  // completion, seen through the future, orders their writes before main's reads.
  std::vector<std::future<void>> seen;
  for (auto& w : workers_) {
    auto done = std::make_shared<std::promise<void>>();
    seen.push_back(done->get_future());
    asio::post(w->context, [done] { done->set_value(); });
  }
  for (auto& f : seen) f.wait();
}

void load::stop_and_join() {
  for (auto& w : workers_) w->context.stop();
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

std::uint64_t load::live_replies() const noexcept {
  std::uint64_t sum = 0;
  for (const auto& s : stats_) sum += s->live_replies.load(std::memory_order_relaxed);
  return sum;
}

std::uint64_t load::live_errors() const noexcept {
  std::uint64_t sum = 0;
  for (const auto& s : stats_) sum += s->live_errors.load(std::memory_order_relaxed);
  return sum;
}

}  // namespace cmdwire::bench
