// Replays every example of docs/PROTOCOL.md and README.md against a live server and compares
// the bytes, so that an example the server no longer matches fails here, not in a reader's hands.
//
// The convention (PROTOCOL.md, "How the examples are checked"):
//   - a ```console block is an example; every other block is not, and may not hold an `| nc`;
//   - `$ ` starts a command, and the lines after it, up to the next `$ ` or the block's end,
//     are what it prints (each ends in LF);
//   - `$ PRODUCER | nc [OPTIONS] 127.0.0.1 PORT [| FILTER] [>/dev/null] [&] [# comment]`:
//     PRODUCER runs in bash, and its output is sent to a fresh connection; the test reads as
//     many bytes as the block shows (none with a FILTER or >/dev/null), then half-closes and
//     reads to EOF; FILTER (xxd, od) runs in bash on what came back. With `&` the command stays
//     open in the background: its first reply is read before the next command runs, the rest
//     when the block ends;
//   - `$ NAME=VALUE` is kept for the block's later commands; `$ cmdwire ...` runs the built
//     CLI in bash, with the block's port replaced by the server's;
//   - `<!-- replay: ... -->` on the line before a block starts its server differently
//     (`server=example-server`, `auth-token=T`, `args=...`); otherwise every block gets a
//     fresh `cmdwire-server --listen 127.0.0.1:0`;
//   - only values that genuinely vary are normalised (see normalise()).
#include <catch2/catch.hpp>

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "support/process.hpp"
#include "support/test_server.hpp"

namespace {

using cmdwire::test::bin_path;
using cmdwire::test::child_process;
using cmdwire::test::raw_socket;

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::filesystem::path source_dir() { return std::filesystem::path(CMDWIRE_SOURCE_DIR); }

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t lf = text.find('\n', start);
    if (lf == std::string::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, lf - start));
    start = lf + 1;
  }
  return lines;
}

// ---- the markdown

struct step {
  std::size_t line = 0;  ///< 1-based line of the `$` in the document
  std::string command;   ///< without the `$ `
  std::string expected;  ///< the lines after it, each with its LF
};

struct example_block {
  std::string document;
  std::size_t line = 0;   ///< of the opening fence
  std::string directive;  ///< the text of a `<!-- replay: ... -->` just before it
  std::vector<step> steps;
};

struct parsed_document {
  std::vector<example_block> blocks;
  std::vector<std::string> problems;  ///< anything that cannot be replayed
};

parsed_document parse_document(const std::string& name, const std::string& text) {
  parsed_document out;
  const std::vector<std::string> lines = split_lines(text);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (!lines[i].starts_with("```")) continue;
    const std::string info = lines[i].substr(3);
    const std::size_t open = i;
    std::size_t close = open + 1;
    while (close < lines.size() && !lines[close].starts_with("```")) ++close;
    if (close == lines.size()) {
      out.problems.push_back(fmt::format("{}:{}: unclosed fence", name, open + 1));
      break;
    }
    if (info != "console") {
      for (std::size_t j = open + 1; j < close; ++j) {
        if (lines[j].find("| nc ") != std::string::npos) {
          out.problems.push_back(fmt::format(
              "{}:{}: an nc example outside a ```console block is never replayed", name, j + 1));
        }
      }
      i = close;
      continue;
    }
    example_block b;
    b.document = name;
    b.line = open + 1;
    if (open > 0) {
      static const std::regex directive(R"(^<!-- replay: (.*) -->$)");
      std::smatch m;
      if (std::regex_match(lines[open - 1], m, directive)) b.directive = m[1];
    }
    for (std::size_t j = open + 1; j < close; ++j) {
      if (lines[j].starts_with("$ ")) {
        b.steps.push_back(step{j + 1, lines[j].substr(2), {}});
      } else if (b.steps.empty()) {
        out.problems.push_back(
            fmt::format("{}:{}: output before the block's first `$ ` command", name, j + 1));
      } else {
        b.steps.back().expected += lines[j] + "\n";
      }
    }
    if (b.steps.empty()) {
      out.problems.push_back(fmt::format("{}:{}: a console block with no command", name, open + 1));
    }
    out.blocks.push_back(std::move(b));
    i = close;
  }
  return out;
}

// ---- one command line

/// `cmd` cut at the top-level `|`, `#`, `>`, `&` (outside quotes and parentheses).
struct command_shape {
  std::vector<std::string> pipeline;  ///< the commands between top-level `|`, trimmed
  bool to_dev_null = false;
  bool background = false;
  std::string problem;
};

std::string trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return std::string(s);
}

command_shape shape_of(const std::string& cmd) {
  command_shape out;
  char quote = 0;
  int depth = 0;
  std::string current;
  std::string tail;  // after the last command: `>/dev/null`, `&`
  bool in_tail = false;
  for (std::size_t i = 0; i < cmd.size(); ++i) {
    const char c = cmd[i];
    if (quote != 0) {
      if (c == '\\' && quote == '"' && i + 1 < cmd.size()) {
        current += c;
        current += cmd[++i];
        continue;
      }
      if (c == quote) quote = 0;
      current += c;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      current += c;
      continue;
    }
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (depth == 0 && c == '#' && (i == 0 || cmd[i - 1] == ' ')) break;  // a comment
    if (depth == 0 && (c == '>' || c == '&')) in_tail = true;
    if (in_tail) {
      tail += c;
      continue;
    }
    if (depth == 0 && c == '|') {
      out.pipeline.push_back(trim(current));
      current.clear();
      continue;
    }
    current += c;
  }
  if (quote != 0 || depth != 0) out.problem = "unbalanced quotes or parentheses";
  out.pipeline.push_back(trim(current));
  std::string t;
  for (char c : tail) {
    if (c != ' ') t += c;
  }
  if (t == ">/dev/null") {
    out.to_dev_null = true;
  } else if (t == "&") {
    out.background = true;
  } else if (!t.empty()) {
    out.problem = "cannot replay `" + t + "`";
  }
  return out;
}

// ---- the server a block runs against

struct live_server {
  std::unique_ptr<child_process> process;
  std::uint16_t port = 0;
  std::string token_file;

  ~live_server() {
    if (!token_file.empty()) std::filesystem::remove(token_file);
  }
};

std::unique_ptr<live_server> start_server(const std::string& directive) {
  auto s = std::make_unique<live_server>();
  std::string binary = "cmdwire-server";
  std::vector<std::string> extra;
  std::istringstream words(directive);
  std::string word;
  bool in_args = false;
  while (words >> word) {
    if (in_args) {
      extra.push_back(word);
    } else if (word.starts_with("server=")) {
      binary = word.substr(7);
    } else if (word.starts_with("auth-token=")) {
      s->token_file = fmt::format("{}/cmdwire-protocol-token-{}",
                                  std::filesystem::temp_directory_path().string(), ::getpid());
      std::ofstream(s->token_file) << word.substr(11) << "\n";
      extra.insert(extra.end(), {"--auth-token-file", s->token_file});
    } else if (word.starts_with("args=")) {
      in_args = true;
      if (word.size() > 5) extra.push_back(word.substr(5));
    } else {
      throw std::runtime_error("unknown replay directive: " + word);
    }
  }
  std::vector<std::string> argv{bin_path(binary)};
  if (binary == "example-server") {
    argv.push_back("0");
  } else {
    argv.insert(argv.end(), {"--listen", "127.0.0.1:0", "--log-level", "off"});
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  s->process = std::make_unique<child_process>(argv);
  const auto line = s->process->read_line();
  if (!line) throw std::runtime_error(binary + " printed no port");
  s->port = static_cast<std::uint16_t>(std::stoi(line->substr(line->find_last_of(": ") + 1)));
  return s;
}

// ---- running things

/// Runs `script` in bash with the built binaries first on PATH; stdin from `input` if given.
/// Returns stdout; a non-zero exit fails the test.
std::string run_bash(const std::string& script, const std::optional<std::string>& input = {}) {
  std::string stdin_path = "/dev/null";
  std::string temp;
  if (input) {
    temp = fmt::format("{}/cmdwire-protocol-input-{}",
                       std::filesystem::temp_directory_path().string(), ::getpid());
    std::ofstream(temp, std::ios::binary) << *input;
    stdin_path = temp;
  }
  const std::string with_path =
      fmt::format("export PATH='{}':\"$PATH\"; export LC_ALL=C; {}", bin_path(""), script);
  child_process p({"/bin/bash", "-c", with_path}, cmdwire::test::stderr_mode::separate, stdin_path);
  auto r = p.wait();
  if (!temp.empty()) std::filesystem::remove(temp);
  INFO("bash -c " << script << "\nstderr: " << r.err);
  CHECK(r.exit_code == 0);
  return r.out;
}

/// One reply, as a client reads it (PROTOCOL.md §1 "Reading a reply"): a framed head's length
/// says how much follows; any other head is a whole line reply.
std::string read_one_reply(raw_socket& s) {
  std::string head;
  while (head.empty() || head.back() != '\n') head += s.read_exact(1);
  static const std::regex framed(R"(^(OK|ERR \S+) (\d+)( .*)?\n$)");
  std::smatch m;
  if (std::regex_match(head, m, framed)) head += s.read_exact(std::stoul(m[2]) + 1);
  return head;
}

/// Makes equal the values that genuinely vary from run to run, and nothing else:
///   - STATS: `uptime_seconds`, and the figures inside each `latency_us` object;
///   - DAYTIME: the date and time;
///   - the length in `OK N` of a reply whose one-line body holds one of them (after checking
///     that N is that body's length).
std::string normalise(const std::string& text, std::vector<std::string>& problems) {
  static const std::regex uptime(R"("uptime_seconds":[0-9.e+-]+)");
  static const std::regex latency(R"("latency_us":\{[^}]*\})");
  static const std::regex daytime(
      R"([A-Z][a-z]+day, [A-Z][a-z]+ [0-9]{2}, [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}-UTC)");
  static const std::regex ok_head(R"(^OK (\d+)((?: .*)?)$)");
  std::vector<std::string> lines = split_lines(text);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string n = std::regex_replace(lines[i], uptime, R"("uptime_seconds":…)");
    n = std::regex_replace(n, latency, R"("latency_us":{…})");
    n = std::regex_replace(n, daytime, "<the time>");
    if (n == lines[i]) continue;
    std::smatch m;
    if (i > 0 && std::regex_match(lines[i - 1], m, ok_head)) {
      if (std::stoul(m[1]) != lines[i].size()) {
        problems.push_back(
            fmt::format("`{}` is followed by a body of {} bytes", lines[i - 1], lines[i].size()));
      }
      lines[i - 1] = "OK …" + m[2].str();
    }
    lines[i] = n;
  }
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  if (!text.empty() && text.back() != '\n') out.pop_back();
  return out;
}

/// Reads until `n` bytes have come, or EOF; fails the test after 10 s without data.
std::string read_up_to(raw_socket& s, std::size_t n) {
  std::string out;
  while (out.size() < n) {
    pollfd p{s.socket().native_handle(), POLLIN, 0};
    if (::poll(&p, 1, 10000) == 0) {
      throw std::runtime_error(
          fmt::format("no reply within 10 s; {} bytes so far: {}", out.size(), out));
    }
    std::string chunk(n - out.size(), '\0');
    const ssize_t got = ::recv(s.socket().native_handle(), chunk.data(), chunk.size(), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    out.append(chunk.data(), static_cast<std::size_t>(got));
  }
  return out;
}

struct background {
  std::unique_ptr<raw_socket> socket;
  std::string got;
  const step* from = nullptr;
};

/// Half-closes, reads to EOF and compares what came in total with the step's output.
void finish_and_compare(raw_socket& s, std::string got, const step& st, const std::string& filter,
                        bool to_dev_null) {
  s.shutdown_send();
  got += s.read_to_eof();
  if (to_dev_null) return;
  std::string shown = filter.empty() ? got : run_bash(filter, got);
  std::vector<std::string> problems;
  const std::string expected = normalise(st.expected, problems);
  const std::string actual = normalise(shown, problems);
  for (const auto& p : problems) FAIL_CHECK(p);
  CHECK(actual == expected);
}

void replay(const example_block& b) {
  INFO(b.document << ":" << b.line << " (a ```console block)");
  const auto server = start_server(b.directive);
  std::string assignments;
  std::vector<background> waiting;
  static const std::regex nc_command(R"(^nc(?: -[A-Za-z0-9]+)* 127\.0\.0\.1 \d+$)");
  static const std::regex assignment(R"(^[A-Za-z_][A-Za-z0-9_]*=\S.*$)");
  for (const step& st : b.steps) {
    INFO("line " << st.line << ": $ " << st.command);
    const command_shape shape = shape_of(st.command);
    REQUIRE(shape.problem.empty());
    std::size_t nc_at = shape.pipeline.size();
    for (std::size_t i = 0; i < shape.pipeline.size(); ++i) {
      if (std::regex_match(shape.pipeline[i], nc_command)) {
        nc_at = i;
        break;
      }
    }
    if (nc_at == shape.pipeline.size()) {
      if (shape.pipeline.size() == 1 && std::regex_match(shape.pipeline[0], assignment)) {
        CHECK(st.expected.empty());
        assignments += shape.pipeline[0] + "\n";
        continue;
      }
      // The CLI: run as typed on a terminal (`script` gives it one), pointed at this block's
      // server.
      REQUIRE(st.command.starts_with("cmdwire "));
      static const std::regex address(R"(127\.0\.0\.1:\d+)");
      const std::string cmd =
          std::regex_replace(st.command, address, fmt::format("127.0.0.1:{}", server->port));
      std::string quoted = "'";
      for (const char c : cmd) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
      quoted += "'";
      std::string shown = run_bash("script -qec " + quoted + " /dev/null");
      std::erase(shown, '\r');  // the terminal's CR LF
      CHECK(shown == st.expected);
      continue;
    }
    REQUIRE(nc_at > 0);  // something must feed nc
    std::string producer;
    for (std::size_t i = 0; i < nc_at; ++i) producer += (i ? " | " : "") + shape.pipeline[i];
    std::string filter;
    for (std::size_t i = nc_at + 1; i < shape.pipeline.size(); ++i) {
      filter += (i > nc_at + 1 ? " | " : "") + shape.pipeline[i];
    }
    const std::string request = run_bash(assignments + producer);
    auto s = std::make_unique<raw_socket>(server->port);
    s->send(request);
    if (shape.background) {
      REQUIRE(filter.empty());
      background bg{std::move(s), {}, &st};
      bg.got = read_one_reply(*bg.socket);  // e.g. SUBSCRIBE's ack: it is in place from now on
      waiting.push_back(std::move(bg));
      continue;
    }
    std::string got;
    // A reply whose length varies (DAYTIME's) cannot be waited for by its size: the request
    // is then answered in order anyway, and half-closing at once loses nothing.
    std::vector<std::string> ignored;
    const bool shows_reply =
        filter.empty() && !shape.to_dev_null && normalise(st.expected, ignored) == st.expected;
    if (shows_reply) {
      got = read_up_to(*s, st.expected.size());
    }
    finish_and_compare(*s, std::move(got), st, filter, shape.to_dev_null);
  }
  for (background& bg : waiting) {
    INFO("line " << bg.from->line << ": $ " << bg.from->command);
    if (bg.got.size() < bg.from->expected.size()) {
      bg.got += read_up_to(*bg.socket, bg.from->expected.size() - bg.got.size());
    }
    finish_and_compare(*bg.socket, std::move(bg.got), *bg.from, {}, false);
  }
}

parsed_document parse_source_file(const std::string& relative) {
  return parse_document(relative, read_file(source_dir() / relative));
}

}  // namespace

TEST_CASE("the example-block convention is parsed, and what breaks it is reported",
          "[protocol-examples]") {
  const auto doc = parse_document("t.md",
                                  "<!-- replay: auth-token=x -->\n"
                                  "```console\n"
                                  "$ printf 'PING\\n' | nc -q1 127.0.0.1 61000   # a comment\n"
                                  "OK 4\n"
                                  "PONG\n"
                                  "$ J='a|b' \n"
                                  "```\n"
                                  "```\n"
                                  "$ printf 'PING\\n' | nc -q1 127.0.0.1 61000\n"
                                  "```\n"
                                  "```console\n"
                                  "OK 4\n"
                                  "```\n");
  REQUIRE(doc.blocks.size() == 2);
  CHECK(doc.blocks[0].directive == "auth-token=x");
  REQUIRE(doc.blocks[0].steps.size() == 2);
  CHECK(doc.blocks[0].steps[0].expected == "OK 4\nPONG\n");
  const auto shape = shape_of(doc.blocks[0].steps[0].command);
  CHECK(shape.pipeline == std::vector<std::string>{"printf 'PING\\n'", "nc -q1 127.0.0.1 61000"});
  CHECK(shape_of("J='a|b'").pipeline.size() == 1);
  CHECK(shape_of("(printf 'x'; sleep 1) | nc 127.0.0.1 1 &").background);
  CHECK(shape_of("printf 'x' | nc 127.0.0.1 1 >/dev/null").to_dev_null);
  CHECK_FALSE(shape_of("printf 'x' | nc 127.0.0.1 1 2>&1").problem.empty());
  CHECK_FALSE(shape_of("printf 'x").problem.empty());
  REQUIRE(doc.problems.size() == 3);
  CHECK(doc.problems[0] == "t.md:9: an nc example outside a ```console block is never replayed");
  CHECK(doc.problems[1] == "t.md:12: output before the block's first `$ ` command");
  CHECK(doc.problems[2] == "t.md:11: a console block with no command");

  std::vector<std::string> problems;
  CHECK(normalise("OK 22\n{\"uptime_seconds\":1.5}\n", problems) ==
        "OK …\n{\"uptime_seconds\":…}\n");
  CHECK(problems.empty());
  CHECK(normalise("OK 23\n{\"uptime_seconds\":1.5}\n", problems) ==
        "OK …\n{\"uptime_seconds\":…}\n");
  CHECK(problems.size() == 1);  // a stale length is still caught
  CHECK(normalise("OK 4\nPONG\n", problems) == "OK 4\nPONG\n");
}

TEST_CASE("docs/PROTOCOL.md: every example replays byte for byte", "[protocol-examples]") {
  const auto doc = parse_source_file("docs/PROTOCOL.md");
  for (const auto& p : doc.problems) FAIL_CHECK(p);
  CHECK(doc.blocks.size() >= 15);  // the page's examples did not silently stop being parsed
  for (const auto& b : doc.blocks) replay(b);
}

TEST_CASE("README.md: every console example replays byte for byte", "[protocol-examples]") {
  const auto doc = parse_source_file("README.md");
  for (const auto& p : doc.problems) FAIL_CHECK(p);
  CHECK(doc.blocks.size() >= 1);
  for (const auto& b : doc.blocks) replay(b);
}

TEST_CASE("cmdwire-server --help names every command COMMANDS lists", "[protocol-examples]") {
  const auto server = start_server("");
  raw_socket s(server->port);
  s.send("COMMANDS\n");
  const std::string reply = read_one_reply(s);
  REQUIRE(reply.starts_with("OK "));
  const std::string body = reply.substr(reply.find('\n') + 1);
  child_process help({bin_path("cmdwire-server"), "--help"});
  const std::string text = help.wait().out;
  std::size_t names = 0;
  for (const std::string& name : split_lines(body.substr(0, body.size() - 1))) {
    INFO(name);
    CHECK(text.find(name) != std::string::npos);
    ++names;
  }
  CHECK(names >= 10);
}
