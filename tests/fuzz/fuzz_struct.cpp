// libFuzzer target: decoding the demo's recursive cereal struct, binary and JSON. Binary bodies
// are also decoded by cereal's own PortableBinary archive (the reference cmdwire's archive must
// agree with) and into a value reused from the previous input (as the server decodes).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "demo/demo_commands.hpp"
#include "tests/support/cereal_reference.hpp"

namespace {

using cmdwire::demo::ComplexData;
using complex_codec = cmdwire::codec<ComplexData>;

std::string encoded(const ComplexData& v) {
  std::string out;
  complex_codec::encode(v, cmdwire::wire::encoding::bin, out);
  return out;
}

void check_against_reference(std::string_view body, bool ours_ok, const ComplexData& ours) {
  // cereal reads any byte 0 other than 1 as big-endian; cmdwire refuses all but 0 and 1.
  if (body.empty() || static_cast<unsigned char>(body[0]) > 1) return;
  ComplexData reference;
  bool reference_ok = true;
  try {
    cmdwire::test::cereal_decode(body, cmdwire::decode_limits{}.max_depth, reference);
  } catch (const std::exception&) {
    reference_ok = false;
  }
  if (reference_ok != ours_ok) std::abort();  // one archive accepted what the other refused
  if (ours_ok && encoded(ours) != encoded(reference)) std::abort();  // different values
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto enc = (data[0] & 1) ? cmdwire::wire::encoding::json : cmdwire::wire::encoding::bin;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  ComplexData value;
  const bool ok = complex_codec::decode(body, enc, value, {}).has_value();
  if (ok) {
    // Whatever decodes must encode again and summarise without trouble.
    std::string again;
    complex_codec::encode(value, enc, again);
    (void)cmdwire::demo::summarize(value);
  }
  if (enc == cmdwire::wire::encoding::bin) {
    check_against_reference(body, ok, value);
    // Decoding into whatever the last input left must give the same result as a new value.
    static ComplexData reused;
    const bool reused_ok = complex_codec::decode(body, enc, reused, {}).has_value();
    if (reused_ok != ok) std::abort();
    if (ok && encoded(reused) != encoded(value)) std::abort();
  }
  return 0;
}
