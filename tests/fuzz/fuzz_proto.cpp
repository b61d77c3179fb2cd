// libFuzzer target: decoding the demo's recursive protobuf message, binary and JSON.
#include <cstddef>
#include <cstdint>
#include <string>

#include "demo/demo_commands.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto enc = (data[0] & 1) ? cmdwire::wire::encoding::json : cmdwire::wire::encoding::bin;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  cmdwire::demo::pb::Complex value;
  if (cmdwire::codec<cmdwire::demo::pb::Complex>::decode(body, enc, value, {})) {
    (void)cmdwire::demo::summarize(value);
  }
  return 0;
}
