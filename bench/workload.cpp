// Request frames and expected replies for each command cmdwire-bench knows how to verify.
#include "workload.hpp"

#include <fmt/format.h>

#include <charconv>

#include "demo/demo_commands.hpp"

namespace cmdwire::bench {

namespace {

// Deep enough for any sensible --payload-size, far below the server's decode depth limit.
constexpr std::uint32_t max_sample_depth = 150;

// A mix's cycle is sum(weights) long and every connection walks it: keep it small.
constexpr unsigned max_mix_weight = 1000;
constexpr std::size_t max_mix_commands = 64;

error bad_option(std::string message) {
  return error{make_error_code(errc::bad_request), std::move(message)};
}

/// Printable, position-dependent bytes: a server that reorders or drops bytes fails the check.
std::string make_payload(std::size_t size) {
  std::string body(size, '\0');
  for (std::size_t i = 0; i < size; ++i) body[i] = static_cast<char>('a' + i % 26);
  return body;
}

/// Encodes the shallowest demo chain whose body reaches `size` bytes; its summary, encoded,
/// goes to `expected`.
template <class Request, class Make>
std::string typed_body(wire::encoding enc, std::size_t size, Make make, std::string& expected) {
  Request sample;
  std::string body;
  for (std::uint32_t depth = 1; depth <= max_sample_depth; ++depth) {
    sample = make(depth);
    body.clear();
    codec<Request>::encode(sample, enc, body);
    if (body.size() >= size) break;
  }
  codec<decltype(demo::summarize(sample))>::encode(demo::summarize(sample), enc, expected);
  return body;
}

}  // namespace

result<workload> make_command_workload(std::string_view command, wire::encoding enc,
                                       std::size_t payload_size, const workload_options& options) {
  if (!wire::valid_command_name(command)) {
    return bad_option(fmt::format("'{}' is not a valid command name", command));
  }
  workload w;
  w.name = std::string(command);
  w.limits.max_body = std::max<std::size_t>(w.limits.max_body, 2 * payload_size + 4096);
  std::string body;
  if (command == demo::Echo::name) {
    body = make_payload(payload_size);
    w.expected = body;
  } else if (command == demo::Ping::name) {
    w.expected = "PONG";
  } else if (command == demo::String::name) {
    w.kind = framing::cmdwire_line;
    w.payload_size = std::string_view("Additional data.").size();
    wire::append_line_request(w.request, command, "Additional data.");
    w.expected = "Thank you.";
    wire::append_line(w.expected_frame, w.expected);
    if (options.hello || options.mix_sleep_ms > 0) {
      return bad_option("--hello and --mix-sleep need a framed command, not STRING");
    }
    return w;
  } else if (command == demo::Struct::name) {
    body = typed_body<demo::ComplexData>(
        enc, payload_size, [](std::uint32_t d) { return demo::make_sample(d, 8); }, w.expected);
  } else if (command == demo::Proto::name) {
    body = typed_body<demo::pb::Complex>(
        enc, payload_size, [](std::uint32_t d) { return demo::make_sample_proto(d, 8); },
        w.expected);
  } else {
    body = make_payload(payload_size);
    w.check_body = false;
  }
  w.payload_size = body.size();
  // With out-of-order replies every framed request carries an id. One id for all is enough:
  // the requests of one kind are answered in order among themselves.
  const std::optional<std::uint64_t> id =
      options.hello ? std::optional<std::uint64_t>(1) : std::nullopt;
  wire::append_request(w.request, command, enc, body, id);
  if (w.check_body) wire::append_ok(w.expected_frame, w.expected, id);
  if (options.hello) w.hello = "HELLO 3\nooo";
  if (options.mix_sleep_ms > 0) {
    if (!w.check_body) return bad_option("--mix-sleep needs a command whose reply is checked");
    const std::string ms = std::to_string(options.mix_sleep_ms);
    const std::optional<std::uint64_t> sleep_id =
        options.hello ? std::optional<std::uint64_t>(2) : std::nullopt;
    wire::append_request(w.sleep_request, demo::Sleep::name, wire::encoding::bin, ms, sleep_id);
    wire::append_ok(w.sleep_reply_frame, fmt::format("slept {} ms", ms), sleep_id);
  }
  return w;
}

workload make_echo_workload(std::size_t payload_size) {
  workload w;
  w.name = "raw-echo";
  w.kind = framing::raw;
  w.request = make_payload(payload_size);
  w.expected = w.request;
  w.payload_size = payload_size;
  return w;
}

result<workload> make_raw_workload(std::string_view request, std::string_view expect) {
  auto req = unescape(request);
  if (!req) return req.error();
  auto exp = unescape(expect);
  if (!exp) return exp.error();
  if (req->empty() || exp->empty()) {
    return bad_option("--raw and --expect need at least one byte each");
  }
  workload w;
  w.name = "raw";
  w.kind = framing::raw;
  w.request = std::move(*req);
  w.expected = std::move(*exp);
  w.payload_size = w.request.size();
  return w;
}

result<std::vector<mix_entry>> parse_mix(std::string_view text) {
  std::vector<mix_entry> mix;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const std::size_t colon = item.find(':');
    mix_entry entry;
    entry.command = std::string(item.substr(0, colon));
    if (colon != std::string_view::npos) {
      const std::string_view w = item.substr(colon + 1);
      const auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), entry.weight);
      if (ec != std::errc() || end != w.data() + w.size() || entry.weight == 0 ||
          entry.weight > max_mix_weight) {
        return bad_option(fmt::format("--mix: weight '{}' of {} is not a number from 1 to {}", w,
                                      entry.command, max_mix_weight));
      }
    }
    if (!wire::valid_command_name(entry.command)) {
      return bad_option(fmt::format("--mix: '{}' is not a valid command name", entry.command));
    }
    for (const auto& seen : mix) {
      if (seen.command == entry.command) {
        return bad_option(fmt::format("--mix: {} appears twice", entry.command));
      }
    }
    mix.push_back(std::move(entry));
    if (comma != std::string_view::npos && text.empty()) {
      return bad_option("--mix: a command is missing after the last comma");
    }
  }
  if (mix.empty()) return bad_option("--mix needs at least one COMMAND[:WEIGHT]");
  if (mix.size() > max_mix_commands) {
    return bad_option(fmt::format("--mix: at most {} commands", max_mix_commands));
  }
  return mix;
}

std::vector<std::uint16_t> weighted_cycle(const std::vector<unsigned>& weights) {
  long total = 0;
  for (unsigned w : weights) total += w;
  std::vector<long> current(weights.size(), 0);
  std::vector<std::uint16_t> cycle;
  cycle.reserve(static_cast<std::size_t>(total));
  for (long n = 0; n < total; ++n) {
    std::size_t best = 0;
    for (std::size_t i = 0; i < weights.size(); ++i) {
      current[i] += weights[i];
      if (current[i] > current[best]) best = i;
    }
    current[best] -= total;
    cycle.push_back(static_cast<std::uint16_t>(best));
  }
  return cycle;
}

result<std::string> unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out += text[i];
      continue;
    }
    if (++i == text.size()) return bad_option("dangling backslash at the end");
    switch (text[i]) {
      case 'r':
        out += '\r';
        break;
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case '0':
        out += '\0';
        break;
      case '\\':
        out += '\\';
        break;
      case '"':
        out += '"';
        break;
      case '\'':
        out += '\'';
        break;
      case 'x': {
        const auto hex = [](char c) -> int {
          if (c >= '0' && c <= '9') return c - '0';
          if (c >= 'a' && c <= 'f') return c - 'a' + 10;
          if (c >= 'A' && c <= 'F') return c - 'A' + 10;
          return -1;
        };
        if (i + 2 >= text.size()) return bad_option("\\x needs two hex digits");
        const int hi = hex(text[i + 1]);
        const int lo = hex(text[i + 2]);
        if (hi < 0 || lo < 0) return bad_option("\\x needs two hex digits");
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        break;
      }
      default:
        return bad_option(fmt::format("unknown escape \\{}", text[i]));
    }
  }
  return out;
}

}  // namespace cmdwire::bench
