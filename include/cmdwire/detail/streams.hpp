// std::streambuf adapters that let cereal write into a reused std::string and read from a
// byte view, so encoding and decoding copy nothing beyond what the archive itself does.
#pragma once

#include <cstddef>
#include <streambuf>
#include <string>
#include <string_view>

namespace cmdwire::detail {

/// Appends everything written to a std::string it borrows for its lifetime.
class string_appender : public std::streambuf {
 public:
  explicit string_appender(std::string& out) : out_(out) {}

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    out_.append(s, static_cast<std::size_t>(n));
    return n;
  }
  int_type overflow(int_type ch) override {
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      out_.push_back(traits_type::to_char_type(ch));
    }
    return traits_type::not_eof(ch);
  }

 private:
  std::string& out_;
};

/// Reads from a byte view it borrows for its lifetime.
class view_source : public std::streambuf {
 public:
  explicit view_source(std::string_view bytes) {
    // The get area is never written through; std::streambuf just wants char*.
    char* p = const_cast<char*>(bytes.data());
    setg(p, p, p + bytes.size());
  }
  /// Bytes not read yet: the most any length prefix in the rest of the body can honestly claim.
  [[nodiscard]] std::size_t remaining() const noexcept {
    return static_cast<std::size_t>(egptr() - gptr());
  }
};

}  // namespace cmdwire::detail
