// Test fixture: runs a built binary as a child process with its stdout and stderr on pipes.
// No shell, no sleeps: reads wait on poll() with a deadline, so a hung child fails the test
// instead of hanging it.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace cmdwire::test {

/// Path of a built executable: `$CMDWIRE_BIN_DIR/name` (ctest sets the variable).
inline std::string bin_path(std::string_view name) {
  const char* dir = std::getenv("CMDWIRE_BIN_DIR");
  if (dir == nullptr || *dir == '\0') {
    throw std::runtime_error("CMDWIRE_BIN_DIR is not set: run the test through ctest");
  }
  return std::string(dir) + "/" + std::string(name);
}

/// What a finished child left behind.
struct run_result {
  int exit_code = -1;  ///< exit status; 128 + N if killed by signal N.
  std::string out;     ///< stdout (with stderr too when run merged).
  std::string err;     ///< stderr; empty when run merged.
};

/// How a child's stderr is captured.
enum class stderr_mode {
  separate,  ///< its own pipe: run_result::err.
  merged,    ///< the stdout pipe, interleaved as a user would see them.
};

/// How long any one wait on a child may take before the test gives up on it.
inline constexpr std::chrono::seconds child_deadline{60};

/// A running child process. Owns it: the destructor kills and reaps a child still running.
class child_process {
 public:
  /// Starts `argv[0]` (a path) with `argv[1..]`, the test's environment and stdin from
  /// `stdin_path` (/dev/null unless given). Throws std::runtime_error if it cannot be started.
  explicit child_process(const std::vector<std::string>& argv,
                         stderr_mode mode = stderr_mode::separate,
                         const std::string& stdin_path = "/dev/null") {
    int out[2] = {-1, -1};
    int err[2] = {-1, -1};
    if (::pipe2(out, O_CLOEXEC) != 0) throw_errno("pipe2");
    if (mode == stderr_mode::separate && ::pipe2(err, O_CLOEXEC) != 0) {
      const int saved = errno;
      close_fd(out[0]);
      close_fd(out[1]);
      errno = saved;
      throw_errno("pipe2");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, stdin_path.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, mode == stderr_mode::merged ? out[1] : err[1], 2);
    // Asio's sockets are not close-on-exec: keep the test's servers and clients out of the child.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);

    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close_fd(out[1]);
    close_fd(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
    if (rc != 0) {
      close_fds();
      throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
    }
  }

  ~child_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    close_fds();
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// The next line of stdout, without its LF; nullopt at EOF. Throws after child_deadline.
  std::optional<std::string> read_line() {
    const auto deadline = std::chrono::steady_clock::now() + child_deadline;
    for (;;) {
      if (const auto lf = out_.find('\n'); lf != std::string::npos) {
        std::string line = out_.substr(0, lf);
        out_.erase(0, lf + 1);
        return line;
      }
      if (out_fd_ < 0) return std::nullopt;
      pump(deadline);
    }
  }

  /// Sends signal `sig` (SIGTERM, SIGINT...) to the child.
  void signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }

  /// Reads stdout and stderr to EOF, then reaps the child. Unread stdout lines are included.
  /// Throws (after killing the child) if that takes longer than child_deadline.
  run_result wait() {
    const auto deadline = std::chrono::steady_clock::now() + child_deadline;
    while (out_fd_ >= 0 || err_fd_ >= 0) pump(deadline);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0) {
      if (errno != EINTR) throw_errno("waitpid");
    }
    pid_ = -1;
    run_result result;
    result.exit_code = WIFEXITED(status)     ? WEXITSTATUS(status)
                       : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                             : -1;
    result.out = std::move(out_);
    result.err = std::move(err_);
    return result;
  }

 private:
  [[noreturn]] static void throw_errno(const char* what) {
    throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
  }
  static void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  void close_fds() {
    close_fd(out_fd_);
    close_fd(err_fd_);
  }

  /// Waits for output on the open pipes and appends what arrived; closes a pipe at EOF.
  void pump(std::chrono::steady_clock::time_point deadline) {
    std::array<pollfd, 2> fds{pollfd{out_fd_, POLLIN, 0}, pollfd{err_fd_, POLLIN, 0}};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    const int ready = left.count() > 0 ? ::poll(fds.data(), fds.size(), left.count()) : 0;
    if (ready < 0 && errno == EINTR) return;
    if (ready < 0) throw_errno("poll");
    if (ready == 0) {
      signal(SIGKILL);
      throw std::runtime_error("child process produced no output and did not exit within " +
                               std::to_string(child_deadline.count()) + " s");
    }
    drain(fds[0], out_fd_, out_);
    drain(fds[1], err_fd_, err_);
  }

  static void drain(const pollfd& p, int& fd, std::string& into) {
    if (fd < 0 || p.revents == 0) return;
    std::array<char, 4096> chunk{};
    const ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n > 0) {
      into.append(chunk.data(), static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      close_fd(fd);
    }
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_;
  std::string err_;
};

/// Runs `argv` to completion (stdin from `stdin_path`) and returns its exit code and output.
inline run_result run(const std::vector<std::string>& argv,
                      stderr_mode mode = stderr_mode::separate,
                      const std::string& stdin_path = "/dev/null") {
  return child_process(argv, mode, stdin_path).wait();
}

}  // namespace cmdwire::test
