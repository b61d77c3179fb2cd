// One file built with `pkg-config --cflags --libs cmdwire` (tests/package/check): encodes and
// decodes through the codec, and formats a request on the wire. Exits 0 if both agree.
#include <cmdwire/codec.hpp>
#include <cmdwire/wire.hpp>
#include <cstdio>
#include <string>

int main() {
  std::string body;
  cmdwire::codec<std::string>::encode("hello", cmdwire::wire::encoding::bin, body);
  std::string frame;
  cmdwire::wire::append_request(frame, "ECHO", cmdwire::wire::encoding::bin, body);
  if (frame != "ECHO 5\nhello") {
    std::fprintf(stderr, "pkgconfig_main: unexpected frame\n");
    return 1;
  }
  std::printf("%s", frame.c_str());
  return 0;
}
