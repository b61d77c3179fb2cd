// Drives `cmdwire shell` in a real terminal (tmux, on a private socket) against the built
// cmdwire-server: Tab completion of command and field names, replies, multi-line JSON, and the
// history file it leaves behind.
#include <fmt/format.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"

using cmdwire::test::bin_path;
using cmdwire::test::child_process;

namespace {

/// Everything a poll may wait for one screen state before the test fails.
constexpr std::chrono::seconds screen_deadline{20};

/// A tmux server of its own (`tmux -L NAME`), killed when the test ends, however it ends.
class tmux_session {
 public:
  tmux_session(std::string socket, const std::string& command) : socket_(std::move(socket)) {
    const auto r = tmux({"new-session", "-d", "-x", "200", "-y", "50", "-s", "shell", command});
    if (r.exit_code != 0) throw std::runtime_error("tmux new-session failed: " + r.err);
  }
  ~tmux_session() { (void)tmux({"kill-server"}); }
  tmux_session(const tmux_session&) = delete;
  tmux_session& operator=(const tmux_session&) = delete;

  /// Types `keys`, each a tmux key name ("Tab", "Enter") or literal text with -l.
  void type(const std::string& text) { (void)tmux({"send-keys", "-t", "shell", "-l", text}); }
  void key(const std::string& name) { (void)tmux({"send-keys", "-t", "shell", name}); }

  /// The visible screen, one line per row.
  std::string screen() { return tmux({"capture-pane", "-p", "-t", "shell"}).out; }
  [[nodiscard]] bool alive() { return tmux({"has-session", "-t", "shell"}).exit_code == 0; }

  /// Polls the screen until `done` holds; fails the test with the last screen after the
  /// deadline.
  void wait_for(const std::string& what, const std::function<bool(const std::string&)>& done) {
    const auto until = std::chrono::steady_clock::now() + screen_deadline;
    std::string last;
    while (std::chrono::steady_clock::now() < until) {
      last = screen();
      if (done(last)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a poll interval
    }
    FAIL("waited " << screen_deadline.count() << " s for " << what << "; the screen:\n" << last);
  }
  void wait_for_text(const std::string& text) {
    wait_for("'" + text + "'",
             [&](const std::string& s) { return s.find(text) != std::string::npos; });
  }

 private:
  cmdwire::test::run_result tmux(std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/tmux", "-L", socket_});
    return cmdwire::test::run(args);
  }
  std::string socket_;
};

/// The lines of a libedit history file, decoded: it starts with a `_HiStOrY_V2_` line and
/// writes each entry through strvis(3), so a space is `\040`.
std::vector<std::string> read_history(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> entries;
  std::string line;
  while (std::getline(in, line)) {
    if (line == "_HiStOrY_V2_") continue;
    std::string decoded;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '\\' && i + 3 < line.size() && std::isdigit(line[i + 1]) != 0) {
        decoded += static_cast<char>(std::stoi(line.substr(i + 1, 3), nullptr, 8));
        i += 3;
      } else if (line[i] == '\\' && i + 1 < line.size()) {
        decoded += line[++i];
      } else {
        decoded += line[i];
      }
    }
    entries.push_back(decoded);
  }
  return entries;
}

/// The last screen line that starts with the prompt.
std::string prompt_line(const std::string& screen) {
  std::string found;
  std::size_t start = 0;
  while (start < screen.size()) {
    const auto end = screen.find('\n', start);
    const std::string line = screen.substr(start, end - start);
    if (line.starts_with("cmdwire> ")) found = line;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return found;
}

}  // namespace

TEST_CASE("cmdwire shell in a terminal: completion, replies, multi-line JSON, history",
          "[cli][shell]") {
  child_process server({bin_path("cmdwire-server"), "--listen", "127.0.0.1:0", "--threads", "1"});
  const auto listening = server.read_line();
  REQUIRE(listening.has_value());
  const std::string prefix = "cmdwire-server listening on ";
  REQUIRE(listening->starts_with(prefix));
  const std::string addr = listening->substr(prefix.size());

  const std::string unique = fmt::format("cmdwire-shell-test-{}", ::getpid());
  const std::filesystem::path home = std::filesystem::temp_directory_path() / unique;
  std::filesystem::remove_all(home);
  std::filesystem::create_directories(home);
  // A folder that does not exist yet: the shell creates it.
  const std::string history = (home / "state" / "history").string();
  // Its stderr and exit status go to files, checked at the end (a sanitizer's report too).
  const std::string errors = (home / "stderr").string();
  const std::string status = (home / "status").string();
  const std::string command =
      fmt::format("env HOME='{}' TERM=xterm '{}' shell -c {} --history '{}' 2>'{}'; echo $? >'{}'",
                  home.string(), bin_path("cmdwire"), addr, history, errors, status);
  {
    tmux_session tmux(unique, command);
    tmux.wait_for_text("cmdwire>");  // capture-pane drops trailing spaces

    // A command name: PI + Tab is PING, the only name that starts so.
    tmux.type("PI");
    tmux.key("Tab");
    tmux.wait_for("PING completed",
                  [](const std::string& s) { return prompt_line(s).starts_with("cmdwire> PING"); });
    tmux.key("Enter");
    tmux.wait_for_text("PONG");

    // A field name of PROTO's request: Tab after `{"` lists them, and completes a prefix.
    tmux.type("PROTO {\"c\":{\"");
    tmux.key("Tab");
    tmux.key("Tab");
    tmux.wait_for("PROTO's fields listed", [](const std::string& s) {
      for (const char* f : {"n", "s", "m", "p", "c"}) {
        if (s.find(fmt::format("\n{} ", f)) == std::string::npos &&
            s.find(fmt::format(" {} ", f)) == std::string::npos &&
            s.find(fmt::format(" {}\n", f)) == std::string::npos) {
          return false;
        }
      }
      return true;
    });
    tmux.type("s");
    tmux.key("Tab");
    tmux.wait_for("the field name closed by completion", [](const std::string& s) {
      return prompt_line(s).ends_with("PROTO {\"c\":{\"s\"") ||
             prompt_line(s).find("PROTO {\"c\":{\"s\" ") != std::string::npos;
    });
    tmux.type(":\"kid\"},\"s\":\"top\"}");
    tmux.key("Enter");
    tmux.wait_for_text("\"names\": \"top/kid\"");

    // Multi-line: the entry goes on while its braces are open.
    tmux.type("PROTO {\"s\": \"first\",");
    tmux.key("Enter");
    tmux.wait_for_text("...>");
    tmux.type("\"n\": 5}");
    tmux.key("Enter");
    tmux.wait_for_text("\"names\": \"first\"");

    // An error is one line, and the shell goes on.
    tmux.type("NOPE");
    tmux.key("Enter");
    tmux.wait_for_text("error: unknown-command");

    tmux.type(".quit");
    tmux.key("Enter");
    tmux.wait_for("the shell to leave", [&](const std::string&) { return !tmux.alive(); });
  }
  const auto file = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  CHECK(file(status) == "0\n");
  CHECK(file(errors).empty());
  const auto entries = read_history(history);
  INFO("history file " << history);
  CHECK(entries == std::vector<std::string>{"PING", "PROTO {\"c\":{\"s\":\"kid\"},\"s\":\"top\"}",
                                            "PROTO {\"s\": \"first\", \"n\": 5}", "NOPE", ".quit"});
  std::filesystem::remove_all(home);
}
