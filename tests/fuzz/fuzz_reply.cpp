// libFuzzer target: what a client does with bytes from a (possibly hostile) server: parse
// framed or line replies and pub/sub MSG frames, map error codes, decode OK bodies as typed
// responses in either encoding, or pretty-print JSON bodies as the CLI does.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "client/json_pretty.hpp"
#include "cmdwire/codec.hpp"
#include "cmdwire/error.hpp"
#include "cmdwire/pubsub.hpp"
#include "cmdwire/wire.hpp"
#include "demo/demo_commands.hpp"

namespace wire = cmdwire::wire;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

template <class T>
void decode_as(std::string_view body, wire::encoding enc) {
  T value{};
  (void)cmdwire::codec<T>::decode(body, enc, value, {});
}

/// One decoder per input (picked by the first byte), so each execution stays cheap.
void decode_body(std::string_view body, wire::encoding enc, unsigned which) {
  switch (which % 4) {
    case 0:
      decode_as<cmdwire::demo::Summary>(body, enc);
      break;
    case 1:
      decode_as<cmdwire::demo::pb::Summary>(body, enc);
      break;
    case 2:
      decode_as<cmdwire::demo::ComplexData>(body, enc);
      break;
    default:
      if (const auto pretty = cmdwire::cli::pretty_json(body)) require(!pretty->empty());
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool line_replies = data[0] & 1;
  const auto enc = (data[0] & 2) ? wire::encoding::json : wire::encoding::bin;
  const unsigned which = (data[0] >> 2) & 3;
  const wire::limits lim{64u + (data[0] >> 4) * 64u, 1u << 16};
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);

  for (std::string_view buf = rest;;) {
    const wire::reply_parse r =
        line_replies ? wire::parse_line_reply(buf, lim) : wire::parse_reply(buf, lim);
    if (r.state != wire::status::complete) break;
    require(r.size > 0 && r.size <= buf.size());
    if (r.value.ok) {
      decode_body(r.value.body, enc, which);
    } else {
      (void)cmdwire::errc_from_wire_name(r.value.code);
    }
    buf.remove_prefix(r.size);
  }
  for (std::string_view buf = rest;;) {
    const auto m = cmdwire::pubsub::parse_message(buf, lim);
    if (m.state != wire::status::complete) break;
    require(m.size > 0 && m.size <= buf.size());
    buf.remove_prefix(m.size);
  }
  return 0;
}
