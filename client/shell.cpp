// `cmdwire shell`: an interactive session on libedit (its readline interface): history kept in
// a file, Tab completion of command names and of request field names from DESCRIBE, and JSON
// bodies that may span lines.
#include <editline/readline.h>
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "client/catalog.hpp"
#include "client/cli.hpp"
#include "client/connect.hpp"
#include "client/json_pretty.hpp"
#include "client/reply_output.hpp"
#include "client/request_build.hpp"

namespace cmdwire::cli {

namespace {

/// History entries kept in memory and in the file.
constexpr int history_size = 1000;

constexpr const char* prompt = "cmdwire> ";
constexpr const char* continuation_prompt = "    ...> ";

constexpr const char* dot_commands[] = {".describe", ".help", ".quit", ".refresh"};

constexpr const char* help_text =
    "Type a command, then Enter:\n"
    "  NAME                 send NAME with no body (PING, STATS, DAYTIME...)\n"
    "  NAME BODY            BODY is JSON for commands that take JSON (PROTO {\"n\":1}),\n"
    "                       the text as it is for string and line commands (ECHO hi there)\n"
    "A JSON body whose { or [ are not closed yet goes on over the next lines.\n"
    "Tab completes command names, and field names inside a JSON body (after {\" or ,\").\n"
    "  .describe [NAME]     what the server says about NAME (every command without NAME)\n"
    "  .refresh             fetch the command list again (after the server changed)\n"
    "  .help                this text\n"
    "  .quit or Ctrl-D      leave\n";

/// What the completion callbacks need: libedit calls plain functions, so this is reached
/// through a pointer set for the shell's lifetime.
struct shell_state {
  std::optional<cmdwire::client> conn;
  catalog commands;                  ///< empty when the server cannot describe itself
  std::string pending;               ///< lines of a multi-line entry typed so far
  std::vector<std::string> matches;  ///< the current completion's candidates
};
shell_state* active = nullptr;

// ---- completion

/// Where the cursor is inside a JSON body: the shape of the object whose member name is being
/// typed (nullptr: not a member name), and whether a `"` already opened it.
struct json_position {
  const schema* object = nullptr;
  bool in_key_string = false;
};

json_position locate_in_json(std::string_view body, const command_info& info) {
  struct frame {
    bool is_object;
    const schema* shape;  ///< resolved; nullptr when not known
    bool want_key = true;
    std::string key;
  };
  std::vector<frame> stack;
  // The shape of a value that starts now, from the frame it is in.
  const auto value_shape = [&]() -> const schema* {
    if (stack.empty()) return info.resolve(info.request.get());
    const frame& top = stack.back();
    if (top.shape == nullptr) return nullptr;
    if (top.is_object && top.shape->type == schema::kind::object) {
      return info.resolve(top.shape->field(top.key));
    }
    if ((top.is_object && top.shape->type == schema::kind::map) ||
        (!top.is_object && top.shape->type == schema::kind::array)) {
      return info.resolve(top.shape->items.get());
    }
    return nullptr;
  };
  bool in_string = false;
  bool key_string = false;
  bool escaped = false;
  std::string text;
  for (const char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
        text += c;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
        if (key_string) stack.back().key = text;
      } else {
        text += c;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        key_string = !stack.empty() && stack.back().is_object && stack.back().want_key;
        text.clear();
        break;
      case '{':
      case '[': {
        const schema* shape = value_shape();
        stack.push_back(frame{c == '{', shape, true, {}});
        break;
      }
      case '}':
      case ']':
        if (!stack.empty()) stack.pop_back();
        break;
      case ':':
        if (!stack.empty() && stack.back().is_object) stack.back().want_key = false;
        break;
      case ',':
        if (!stack.empty() && stack.back().is_object) stack.back().want_key = true;
        break;
      default:
        break;
    }
  }
  json_position at;
  if (stack.empty() || !stack.back().is_object) return at;
  const frame& top = stack.back();
  if (in_string ? !key_string : !top.want_key) return at;
  if (top.shape != nullptr && top.shape->type == schema::kind::object) at.object = top.shape;
  at.in_key_string = in_string;
  return at;
}

/// libedit asks for candidates one by one: state 0 starts a new list.
char* next_match(const char* /*text*/, int state) {
  static std::size_t next = 0;
  if (state == 0) next = 0;
  if (active == nullptr || next >= active->matches.size()) return nullptr;
  return ::strdup(active->matches[next++].c_str());
}

char** complete(const char* text, int start, int /*end*/) {
  rl_attempted_completion_over = 1;  // never fall back to file names
  if (active == nullptr) return nullptr;
  auto& matches = active->matches;
  matches.clear();
  const std::string_view word = text;
  // What comes before the word, earlier lines of the entry included.
  std::string before = active->pending;
  before.append(rl_line_buffer, static_cast<std::size_t>(start));
  const auto first = before.find_first_not_of(" \t\n");
  const auto space = before.find_first_of(" \t\n", first == std::string::npos ? 0 : first);
  const auto add = [&](std::string_view candidate) {
    if (candidate.starts_with(word)) matches.emplace_back(candidate);
  };

  if (first == std::string::npos || space == std::string::npos) {
    // The first word: a command name, or a dot command.
    rl_completion_append_character = ' ';
    for (const auto& c : active->commands.commands) add(c.name);
    if (word.empty() || word.front() == '.') {
      for (const char* d : dot_commands) add(d);
    }
  } else {
    const std::string_view command = std::string_view(before).substr(first, space - first);
    const std::string_view body = std::string_view(before).substr(space + 1);
    if (command == ".describe") {
      rl_completion_append_character = ' ';
      for (const auto& c : active->commands.commands) add(c.name);
    } else if (const command_info* info = active->commands.find(command); info != nullptr) {
      const json_position at = locate_in_json(body, *info);
      if (at.object != nullptr) {
        // Inside "...: the name; before any quote: the opening quote too.
        for (const auto& f : at.object->fields) {
          add(at.in_key_string ? f.first : "\"" + f.first);
        }
        // One match is completed with its closing quote. libedit also prints the append
        // character after each name of a list, so a list gets none.
        rl_completion_append_character = matches.size() == 1 ? '"' : '\0';
      }
    }
  }
  if (matches.empty()) return nullptr;
  return rl_completion_matches(text, next_match);
}

// ---- history

std::string default_history_file() {
  if (const char* env = std::getenv("CMDWIRE_HISTORY"); env != nullptr) return env;
  if (const char* state = std::getenv("XDG_STATE_HOME"); state != nullptr && *state == '/') {
    return std::string(state) + "/cmdwire/history";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::string(home) + "/.local/state/cmdwire/history";
  }
  return {};
}

// ---- running what was typed

class shell {
 public:
  explicit shell(std::string history_file) : history_(std::move(history_file)) {}

  int run() {
    active = &state_;
    const bool interactive = ::isatty(STDIN_FILENO) != 0;
    if (interactive) setup_editline();
    connect();
    if (interactive) {
      fmt::print("cmdwire shell on {}{}. Tab completes, .help for help, Ctrl-D to leave.\n",
                 target().address,
                 state_.conn ? fmt::format(" ({} commands)", state_.commands.commands.size())
                             : std::string(" (not connected yet)"));
    }
    for (;;) {
      std::optional<std::string> entry = read_entry(interactive);
      if (!entry) break;
      const auto first = entry->find_first_not_of(" \t");
      if (first == std::string::npos) continue;
      // Completion leaves a space after a name: history keeps the entry without it.
      entry->erase(entry->find_last_not_of(" \t") + 1);
      if (interactive) remember(*entry);
      if (!execute(entry->substr(first))) break;
      std::fflush(stdout);
    }
    if (interactive) fmt::print("\n");
    active = nullptr;
    return exit_ok;
  }

 private:
  void setup_editline() {
    rl_readline_name = "cmdwire";
    rl_initialize();
    using_history();
    stifle_history(history_size);
    // Field names follow `{"` and `,"`; command names follow the start or a space.
    static char breaks[] = " \t\n\"{[,";
    rl_basic_word_break_characters = breaks;
    rl_completer_word_break_characters = breaks;
    rl_attempted_completion_function = complete;
    if (!history_.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(std::filesystem::path(history_).parent_path(), ec);
      if (ec) {
        fmt::print(stderr, "cmdwire: cannot create the folder of history file {}: {}\n", history_,
                   ec.message());
      }
      read_history(history_.c_str());  // a first run has none yet
    }
  }

  void remember(const std::string& entry) {
    const HIST_ENTRY* last =
        history_length > 0 ? history_get(history_base + history_length - 1) : nullptr;
    if (last != nullptr && entry == last->line) return;
    add_history(entry.c_str());
    // Written after every entry, so a session that is killed keeps what it had.
    if (!history_.empty() && write_history(history_.c_str()) != 0 && !history_warned_) {
      history_warned_ = true;
      fmt::print(stderr, "cmdwire: cannot write history file {}\n", history_);
    }
  }

  /// One line: libedit on a terminal, else plain standard input (no prompt).
  static std::optional<std::string> read_line(bool interactive, const char* p) {
    if (!interactive) {
      std::string line;
      if (!std::getline(std::cin, line)) return std::nullopt;
      return line;
    }
    char* raw = readline(p);
    if (raw == nullptr) return std::nullopt;
    std::string line(raw);
    std::free(raw);
    return line;
  }

  /// A whole entry: a line, and more lines while a JSON body's brackets are open. Continued
  /// lines are joined with spaces (JSON means the same; history keeps one line per entry).
  std::optional<std::string> read_entry(bool interactive) {
    state_.pending.clear();
    auto line = read_line(interactive, prompt);
    if (!line) return std::nullopt;
    std::string entry = std::move(*line);
    for (;;) {
      const auto body = entry.find_first_of(" \t", entry.find_first_not_of(" \t"));
      if (body == std::string::npos || entry[entry.find_first_not_of(" \t")] == '.') break;
      const auto json = entry.find_first_not_of(" \t", body);
      if (json == std::string::npos || (entry[json] != '{' && entry[json] != '[')) break;
      const json_scan scan = scan_json(std::string_view(entry).substr(json));
      if (scan.unbalanced || (scan.open == 0 && !scan.in_string)) break;
      state_.pending = entry + " ";
      auto more = read_line(interactive, continuation_prompt);
      if (!more) {
        fmt::print("\n(entry dropped: its JSON was not closed)\n");
        state_.pending.clear();
        return std::string();
      }
      entry += " " + *more;
    }
    state_.pending.clear();
    return entry;
  }

  /// Connects and reads the command list; says why not on failure.
  bool connect() {
    if (state_.conn) return true;
    try {
      state_.conn.emplace(connect_or_fail(target().address, target().timeout_s));
    } catch (const failure& f) {
      fmt::print("error: {}\n", f.what());
      return false;
    }
    refresh();
    return true;
  }

  void refresh() {
    std::optional<cmdwire::error> failed;
    auto described = fetch_catalog(*state_.conn, {}, &failed);
    state_.commands = described ? std::move(*described) : catalog{};
    if (failed) report(failed.value());
  }

  /// Prints a failed call; a lost connection is dropped, and the next command reconnects.
  void report(const cmdwire::error& e) {
    if (e.code == errc::connection_lost || e.code == errc::not_connected ||
        e.code == errc::protocol_error) {
      state_.conn.reset();
      fmt::print("error: connection to {} lost ({}); the next command reconnects\n",
                 target().address, e.message);
      return;
    }
    print_error_line(e, output_mode::pretty);
  }

  /// Runs one entry; false to leave the shell.
  bool execute(const std::string& entry) {
    if (entry.starts_with('.')) return dot_command(entry);
    auto line = split_request_line(entry);
    if (!line) {
      print_error_line(line.error(), output_mode::pretty);
      return true;
    }
    if (!connect()) return true;
    auto body = body_from_text(line->name, line->body, state_.commands.find(line->name));
    if (!body) {
      print_error_line(body.error(), output_mode::pretty);
      return true;
    }
    call_options opt;
    opt.enc = body->enc;
    auto reply = state_.conn->call_raw(line->name, body->bytes, opt);
    if (!reply) {
      report(reply.error());
      return true;
    }
    print_body(*reply, body->enc == wire::encoding::json, output_mode::pretty);
    return true;
  }

  bool dot_command(const std::string& entry) {
    auto line = split_request_line(entry);
    const std::string_view word = line ? line->name : std::string_view(entry);
    if (word == ".quit" || word == ".exit") return false;
    if (word == ".help") {
      fmt::print("{}", help_text);
    } else if (word == ".refresh") {
      if (connect()) {
        refresh();
        fmt::print("{} commands\n", state_.commands.commands.size());
      }
    } else if (word == ".describe") {
      if (!connect()) return true;
      auto reply = state_.conn->call_raw("DESCRIBE", line ? line->body : std::string_view{});
      if (!reply) {
        report(reply.error());
        return true;
      }
      const auto pretty = pretty_json(*reply);
      fmt::print("{}\n", pretty ? *pretty : *reply);
    } else {
      fmt::print("error: unknown shell command '{}': try .help\n", word);
    }
    return true;
  }

  shell_state state_;
  std::string history_;
  bool history_warned_ = false;
};

}  // namespace

void add_shell_command(CLI::App& app) {
  auto history = std::make_shared<std::string>(default_history_file());
  CLI::App* cmd = app.add_subcommand(
      "shell",
      "Interactive session (also `cmdwire` alone on a terminal): type NAME or NAME BODY; Tab "
      "completes command and field names; .help lists the rest");
  cmd->add_option("--history", *history,
                  "history file, \"\" for none (default: $CMDWIRE_HISTORY, else "
                  "$XDG_STATE_HOME/cmdwire/history, else ~/.local/state/cmdwire/history)");
  cmd->callback([history] {
    shell s(*history);
    s.run();
  });
}

}  // namespace cmdwire::cli
