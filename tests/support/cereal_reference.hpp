// cereal's own PortableBinary archives, run the way cmdwire ran them before it had archives of
// its own: the reference that tests, the fuzzer and the codec benchmark compare against.
#pragma once

#include <cereal/archives/portable_binary.hpp>
#include <cereal/details/helpers.hpp>
#include <cstddef>
#include <cstdint>
#include <istream>
#include <ostream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <string_view>

namespace cmdwire::test {

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

/// Active for one decode on this thread; cereal's prologue/epilogue hooks below consult it.
/// Archives decoded while no guard is active (user code using cereal directly) are unaffected.
class cereal_guard {
 public:
  struct violation : std::runtime_error {
    using std::runtime_error::runtime_error;
  };

  cereal_guard(std::size_t max_depth, const view_source* source) noexcept
      : max_depth_(max_depth), source_(source), previous_(current_) {
    current_ = this;
  }
  ~cereal_guard() { current_ = previous_; }
  cereal_guard(const cereal_guard&) = delete;
  cereal_guard& operator=(const cereal_guard&) = delete;

  [[nodiscard]] static cereal_guard* current() noexcept { return current_; }

  void enter() {
    if (++depth_ > max_depth_) {
      throw violation("nesting deeper than the limit of " + std::to_string(max_depth_));
    }
  }
  void leave() noexcept { --depth_; }

  /// Every element of a container takes at least one byte, so a size prefix larger than the
  /// bytes left is a lie; refusing it here stops the allocation cereal would make next.
  void check_size(std::uint64_t declared) const {
    if (declared > source_->remaining()) {
      throw violation("length prefix " + std::to_string(declared) + " exceeds the " +
                      std::to_string(source_->remaining()) + " bytes left in the body");
    }
  }

 private:
  std::size_t max_depth_;
  std::size_t depth_ = 0;
  const view_source* source_;
  cereal_guard* previous_;
  static inline thread_local cereal_guard* current_ = nullptr;
};

/// cereal's PortableBinaryOutputArchive appending to `out`.
template <class T>
void cereal_encode(const T& value, std::string& out) {
  string_appender sink(out);
  std::ostream os(&sink);
  cereal::PortableBinaryOutputArchive ar(os);
  ar(value);
}

/// cereal's PortableBinaryInputArchive under the guard; throws on anything malformed,
/// trailing bytes included.
template <class T>
void cereal_decode(std::string_view body, std::size_t max_depth, T& value) {
  view_source src(body);
  std::istream is(&src);
  cereal_guard guard(max_depth, &src);
  cereal::PortableBinaryInputArchive ar(is);
  ar(value);
  if (src.remaining() != 0) throw cereal_guard::violation("trailing bytes after the value");
}

}  // namespace cmdwire::test

namespace cereal {
// More specialised than cereal's generic no-op hooks, so these win for portable binary input.
template <class T>
void prologue(PortableBinaryInputArchive&, const T&) {
  if (auto* guard = cmdwire::test::cereal_guard::current()) guard->enter();
}
template <class T>
void epilogue(PortableBinaryInputArchive&, const T&) {
  if (auto* guard = cmdwire::test::cereal_guard::current()) guard->leave();
}
template <class T>
void epilogue(PortableBinaryInputArchive&, const SizeTag<T>& tag) {
  if (auto* guard = cmdwire::test::cereal_guard::current()) {
    guard->leave();
    guard->check_size(static_cast<std::uint64_t>(tag.size));
  }
}
}  // namespace cereal
