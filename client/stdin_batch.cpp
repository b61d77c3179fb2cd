// Pipelined requests from standard input (client/stdin_batch.hpp).
#include "client/stdin_batch.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>

#include "client/catalog.hpp"
#include "client/cli.hpp"
#include "client/connect.hpp"
#include "client/request_build.hpp"

namespace cmdwire::cli {

namespace {

/// Requests sent and not yet printed, at most. Enough to keep a LAN connection busy; small
/// enough that a million-line input costs a few hundred replies of memory, and well under the
/// server's max_pipelined (1024), so the server never holds replies back for us.
constexpr std::size_t window = 256;

/// One request of the batch, in input order. The call's completion (on the client's thread)
/// fills it under `batch::mutex`.
struct slot {
  bool done = false;
  std::error_code ec;
  std::string body;   ///< the reply, or the error message
  bool json = false;  ///< asked for as JSON: the reply is JSON
};

struct batch {
  std::mutex mutex;
  std::condition_variable done;
};

/// True if a read of standard input would not block: bytes buffered or ready, or EOF.
bool input_ready() {
  if (std::cin.rdbuf()->in_avail() > 0) return true;
  pollfd p{STDIN_FILENO, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

bool connection_gone(const std::error_code& ec) {
  return ec == errc::connection_lost || ec == errc::not_connected || ec == errc::protocol_error;
}

}  // namespace

void run_stdin_batch(cmdwire::client& conn, const std::string& name,
                     std::optional<wire::encoding> enc, output_mode mode) {
  // Each command's shape, asked once; without DESCRIBE, bodies are shaped by their looks.
  std::optional<catalog> described;
  if (!enc) {
    std::optional<cmdwire::error> failed;
    described = fetch_catalog(conn, name, &failed);
    if (failed && failed->code != errc::unknown_command) fail_call("DESCRIBE", *failed);
  }

  auto state = std::make_shared<batch>();
  std::deque<std::shared_ptr<slot>> pending;  // touched by this thread only
  std::size_t total = 0;
  std::size_t failed = 0;
  std::optional<cmdwire::error> lost;

  // Prints finished replies from the front, in order; with `wait`, waits for the front first.
  const auto print_front = [&](bool wait) {
    while (!pending.empty()) {
      {
        std::unique_lock lock(state->mutex);
        if (wait) {
          state->done.wait(lock, [&] { return pending.front()->done; });
        } else if (!pending.front()->done) {
          return;
        }
      }
      const std::shared_ptr<slot> s = std::move(pending.front());
      pending.pop_front();
      wait = false;
      if (s->ec) {
        ++failed;
        const cmdwire::error e{s->ec, s->body};
        if (connection_gone(s->ec) && !lost) lost = e;
        print_error_line(e, mode);
      } else {
        print_body(s->body, s->json, mode);
        if (mode == output_mode::raw) std::fputc('\n', stdout);
      }
    }
  };
  const auto fail_now = [&](cmdwire::error e) {
    auto s = std::make_shared<slot>();
    s->done = true;
    s->ec = e.code;
    s->body = std::move(e.message);
    pending.push_back(std::move(s));
  };

  std::ios::sync_with_stdio(false);  // lets std::cin buffer, and input_ready() see it
  std::string line;
  for (;;) {
    if (!input_ready()) {
      // The feeder is waiting on us: answer everything before blocking on it.
      while (!pending.empty()) print_front(true);
      std::fflush(stdout);
    }
    if (lost || !std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string_view command = name;
    std::string_view text = line;
    if (name.empty()) {
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      auto split = split_request_line(line);
      if (!split) {
        ++total;
        fail_now(split.error());
        continue;
      }
      command = split->name;
      text = split->body;
    }
    ++total;
    result<request_body> body = request_body{std::string(text), enc.value_or(wire::encoding::bin)};
    if (!enc) body = body_from_text(command, text, described ? described->find(command) : nullptr);
    if (!body) {
      fail_now(body.error());
    } else {
      auto s = std::make_shared<slot>();
      s->json = body->enc == wire::encoding::json;
      call_options opt;
      opt.enc = body->enc;
      conn.async_call_raw(command, body->bytes, opt,
                          [state, s](std::error_code ec, std::string reply) {
                            {
                              std::lock_guard lock(state->mutex);
                              s->ec = ec;
                              s->body = std::move(reply);
                              s->done = true;
                            }
                            state->done.notify_all();
                          });
      pending.push_back(std::move(s));
    }
    print_front(false);
    while (pending.size() >= window) print_front(true);
  }
  while (!pending.empty()) print_front(true);
  std::fflush(stdout);
  if (lost) {
    throw failure(exit_connection,
                  fmt::format("connection lost after {} requests ({} failed; input after "
                              "them not read): {}",
                              total, failed, lost->message));
  }
  if (failed > 0) {
    throw failure(exit_error_reply,
                  fmt::format("{} of {} requests failed (their lines say why)", failed, total));
  }
}

}  // namespace cmdwire::cli
