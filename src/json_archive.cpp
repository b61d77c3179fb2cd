// The non-template half of cmdwire's cereal JSON archives: rapidjson's writer on the way out,
// rapidjson's DOM on the way in, and the bookkeeping that names a value's path in errors.
#include "cmdwire/detail/json_archive.hpp"

#include <fmt/format.h>

#include <cfloat>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "cmdwire/detail/rapidjson.hpp"

namespace cmdwire::detail {

namespace {

/// rapidjson's output stream concept over the caller's string: the JSON lands in place.
struct string_sink {
  using Ch = char;
  std::string* out;
  void Put(char c) { out->push_back(c); }
  void Flush() {}
};

// NaN and the infinities as the tokens cereal's JSON archive wrote (and guard_json admits).
using json_writer =
    rj::Writer<string_sink, rj::UTF8<>, rj::UTF8<>, rj::CrtAllocator, rj::kWriteNanAndInfFlag>;

/// A struct's value while it is being written or read: an object of fields, or, when cereal
/// sends a size tag (its generic containers), an array. Undecided until the first field or tag.
enum class node_kind { pending, object, array, container };

void write_escaped(std::string& out, std::string_view s) {
  rj::StringBuffer buf;
  rj::Writer<rj::StringBuffer> w(buf);
  w.String(s.data(), static_cast<rj::SizeType>(s.size()));
  out.append(buf.GetString(), buf.GetSize());
}

/// A name as it appears in an error: quoted and escaped, and cut short so that a hostile 1 MB
/// key does not become a 1 MB error reply.
std::string quote_name(std::string_view name) {
  constexpr std::size_t shown = 40;
  std::string out;
  if (name.size() <= shown) {
    write_escaped(out, name);
    return out;
  }
  std::size_t cut = shown;
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
  write_escaped(out, name.substr(0, cut));
  out.insert(out.size() - 1, "...");
  out += " (" + std::to_string(name.size()) + " bytes)";
  return out;
}

bool is_identifier(std::string_view s) {
  if (s.empty() || s.size() > 40) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

const char* kind_of(const rj::Value& v) {
  switch (v.GetType()) {
    case rj::kNullType:
      return "null";
    case rj::kFalseType:
    case rj::kTrueType:
      return "boolean";
    case rj::kObjectType:
      return "object";
    case rj::kArrayType:
      return "array";
    case rj::kStringType:
      return "string";
    case rj::kNumberType:
      return v.IsInt64() || v.IsUint64() ? "integer" : "number";
  }
  return "value";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Output

struct json_output_archive::impl {
  struct frame {
    node_kind kind;
    std::size_t unnamed = 0;  ///< fields without a name so far: cereal's value0, value1...
  };

  explicit impl(std::string& out) : sink{&out}, writer(sink) {}

  /// Every value starts here: inside a struct, a value that no name announced gets cereal's.
  void begin_value() {
    if (named) {
      named = false;
      return;
    }
    if (frames.empty()) return;
    frame& f = frames.back();
    if (f.kind == node_kind::pending) {
      writer.StartObject();
      f.kind = node_kind::object;
    }
    if (f.kind == node_kind::object) {
      const std::string name = "value" + std::to_string(f.unnamed++);
      writer.Key(name.data(), static_cast<rj::SizeType>(name.size()));
    }
  }

  string_sink sink;
  json_writer writer;
  std::vector<frame> frames;
  bool named = false;  ///< a key is written and waits for its value
};

json_output_archive::json_output_archive(std::string& out)
    : OutputArchive(this), impl_(std::make_unique<impl>(out)) {}
json_output_archive::~json_output_archive() noexcept = default;

void json_output_archive::start_node() {
  impl_->begin_value();
  impl_->frames.push_back({node_kind::pending});
}

void json_output_archive::end_node() {
  switch (impl_->frames.back().kind) {
    case node_kind::pending:  // a struct without fields
      impl_->writer.StartObject();
      impl_->writer.EndObject();
      break;
    case node_kind::object:
      impl_->writer.EndObject();
      break;
    case node_kind::array:
    case node_kind::container:
      impl_->writer.EndArray();
      break;
  }
  impl_->frames.pop_back();
}

void json_output_archive::name_next(std::string_view name) {
  if (impl_->frames.empty() || impl_->frames.back().kind == node_kind::array ||
      impl_->frames.back().kind == node_kind::container) {
    throw std::logic_error("cmdwire JSON: a named value outside a struct");
  }
  impl::frame& f = impl_->frames.back();
  if (f.kind == node_kind::pending) {
    impl_->writer.StartObject();
    f.kind = node_kind::object;
  }
  impl_->writer.Key(name.data(), static_cast<rj::SizeType>(name.size()));
  impl_->named = true;
}

void json_output_archive::size_tag() {
  if (impl_->frames.empty() || impl_->frames.back().kind != node_kind::pending) {
    throw std::logic_error("cmdwire JSON: a size tag after the fields of a struct");
  }
  impl_->writer.StartArray();
  impl_->frames.back().kind = node_kind::array;
}

void json_output_archive::write_null() {
  impl_->begin_value();
  impl_->writer.Null();
}
void json_output_archive::write_bool(bool v) {
  impl_->begin_value();
  impl_->writer.Bool(v);
}
void json_output_archive::write_signed(std::int64_t v) {
  impl_->begin_value();
  impl_->writer.Int64(v);
}
void json_output_archive::write_unsigned(std::uint64_t v) {
  impl_->begin_value();
  impl_->writer.Uint64(v);
}
void json_output_archive::write_double(double v) {
  impl_->begin_value();
  impl_->writer.Double(v);
}
void json_output_archive::write_string(std::string_view v) {
  impl_->begin_value();
  impl_->writer.String(v.data(), static_cast<rj::SizeType>(v.size()));
}
void json_output_archive::start_array() {
  impl_->begin_value();
  impl_->writer.StartArray();
  impl_->frames.push_back({node_kind::container});
}
void json_output_archive::end_array() {
  impl_->writer.EndArray();
  impl_->frames.pop_back();
}
void json_output_archive::start_object() {
  impl_->begin_value();
  impl_->writer.StartObject();
  impl_->frames.push_back({node_kind::container});
}
void json_output_archive::key(std::string_view key) {
  impl_->writer.Key(key.data(), static_cast<rj::SizeType>(key.size()));
  impl_->named = true;
}
void json_output_archive::end_object() {
  impl_->writer.EndObject();
  impl_->frames.pop_back();
}

// ---------------------------------------------------------------------------------------------
// Input

struct json_input_archive::impl {
  /// One step of the path to the value being read, for error messages.
  struct segment {
    enum kind_t { name, element, unnamed } kind;
    std::string_view text;   ///< name: a field name or a map key (the DOM or cereal owns it)
    std::size_t number = 0;  ///< element: its index; unnamed: N of valueN
  };
  struct frame {
    frame(const rj::Value* v, node_kind k) : value(v), kind(k) {}
    const rj::Value* value;
    node_kind kind;
    std::size_t cursor = 0;     ///< array: elements taken; object: unnamed fields taken
    std::vector<bool> seen;     ///< object: members a field asked for
    bool owns_segment = false;  ///< the top path segment is this frame's current element
  };

  [[noreturn]] void fail(std::string_view what) const {
    throw json_archive_error(path() + ": " + std::string(what));
  }
  [[noreturn]] void mismatch(const char* expected, const rj::Value& got) const {
    fail(fmt::format("expected {}, got {}", expected, kind_of(got)));
  }

  std::string path() const {
    std::string out = "$";
    for (const segment& s : segments) {
      switch (s.kind) {
        case segment::name:
          if (is_identifier(s.text)) {
            out.append(".").append(s.text);
          } else {
            out.append("[").append(quote_name(s.text)).append("]");
          }
          break;
        case segment::element:
          out.append("[").append(std::to_string(s.number)).append("]");
          break;
        case segment::unnamed:
          out.append(".value").append(std::to_string(s.number));
          break;
      }
    }
    return out;
  }

  void become_object(frame& f) {
    if (!f.value->IsObject()) mismatch("object", *f.value);
    f.kind = node_kind::object;
    f.seen.assign(f.value->MemberCount(), false);
  }

  void drop_owned(frame& f) {
    if (f.owns_segment) {
      segments.pop_back();
      f.owns_segment = false;
    }
  }

  void own(frame& f, segment s) {
    if (f.owns_segment) {
      segments.back() = s;
    } else {
      segments.push_back(s);
      f.owns_segment = true;
    }
  }

  /// The value the next read takes.
  const rj::Value& next() {
    if (slot != nullptr) return *std::exchange(slot, nullptr);
    if (frames.empty()) {
      if (root_taken) throw std::logic_error("cmdwire JSON: a second top-level value");
      root_taken = true;
      return doc;
    }
    frame& f = frames.back();
    if (f.kind == node_kind::pending) become_object(f);
    if (f.kind == node_kind::object) {
      // A field without a name: cereal's name for it, which the object must have.
      const std::size_t n = f.cursor++;
      own(f, {segment::unnamed, {}, n});
      const std::string name = "value" + std::to_string(n);
      for (rj::SizeType i = 0; i < f.value->MemberCount(); ++i) {
        const rj::Value& key = f.value->MemberBegin()[i].name;
        if (!f.seen[i] && std::string_view(key.GetString(), key.GetStringLength()) == name) {
          f.seen[i] = true;
          return f.value->MemberBegin()[i].value;
        }
      }
      fail("missing (a field without a name must be present)");
    }
    if (f.kind == node_kind::array) {
      if (f.cursor >= f.value->Size()) fail("array too short");
      own(f, {segment::element, {}, f.cursor});
      return (*f.value)[static_cast<rj::SizeType>(f.cursor++)];
    }
    throw std::logic_error("cmdwire JSON: a value read without selecting an element");
  }

  frame& top_struct() {
    if (frames.empty() || frames.back().kind == node_kind::container) {
      throw std::logic_error("cmdwire JSON: a struct operation outside a struct");
    }
    return frames.back();
  }

  rj::Document doc;
  const rj::Value* slot = nullptr;  ///< selected by a field, element or member; read next
  bool root_taken = false;
  std::vector<frame> frames;
  std::vector<segment> segments;
};

json_input_archive::json_input_archive(std::string_view json)
    : InputArchive(this), impl_(std::make_unique<impl>()) {
  // Iterative: the parse itself does not recurse, whatever the nesting (guard_json bounds it for
  // the loads, which do). Full precision: correctly rounded doubles, safe on guarded numbers.
  constexpr unsigned flags =
      rj::kParseIterativeFlag | rj::kParseFullPrecisionFlag | rj::kParseNanAndInfFlag;
  impl_->doc.Parse<flags>(json.data(), json.size());
  if (impl_->doc.HasParseError()) {
    throw json_archive_error(fmt::format("invalid JSON at offset {}: {}",
                                         impl_->doc.GetErrorOffset(),
                                         rj::GetParseError_En(impl_->doc.GetParseError())));
  }
}
json_input_archive::~json_input_archive() noexcept = default;

void json_input_archive::start_node() {
  const rj::Value& v = impl_->next();
  impl_->frames.emplace_back(&v, node_kind::pending);
}

void json_input_archive::end_node() {
  impl::frame& f = impl_->frames.back();
  impl_->drop_owned(f);
  if (f.kind == node_kind::pending) impl_->become_object(f);  // a struct without fields
  if (f.kind == node_kind::object) {
    const rj::Value& obj = *f.value;
    for (rj::SizeType i = 0; i < obj.MemberCount(); ++i) {
      if (f.seen[i]) continue;
      const rj::Value& key = obj.MemberBegin()[i].name;
      const std::string_view name(key.GetString(), key.GetStringLength());
      bool duplicate = false;
      for (rj::SizeType j = 0; j < obj.MemberCount() && !duplicate; ++j) {
        const rj::Value& other = obj.MemberBegin()[j].name;
        duplicate =
            f.seen[j] && name == std::string_view(other.GetString(), other.GetStringLength());
      }
      throw json_archive_error(fmt::format("{} field {} in object at {}",
                                           duplicate ? "duplicate" : "unknown", quote_name(name),
                                           impl_->path()));
    }
  } else if (f.kind == node_kind::array && f.cursor != f.value->Size()) {
    impl_->fail(fmt::format("array of {} elements, {} read", f.value->Size(), f.cursor));
  }
  impl_->frames.pop_back();
}

bool json_input_archive::enter_field(std::string_view name) {
  impl::frame& f = impl_->top_struct();
  impl_->drop_owned(f);
  if (f.kind == node_kind::pending) impl_->become_object(f);
  if (f.kind != node_kind::object) {
    throw std::logic_error("cmdwire JSON: a named field in a sequence");
  }
  const rj::Value& obj = *f.value;
  for (rj::SizeType i = 0; i < obj.MemberCount(); ++i) {
    const rj::Value& key = obj.MemberBegin()[i].name;
    if (std::string_view(key.GetString(), key.GetStringLength()) == name) {
      // The first member of that name; a second one stays unseen and end_node refuses it.
      f.seen[i] = true;
      impl_->slot = &obj.MemberBegin()[i].value;
      impl_->segments.push_back({impl::segment::name, name});
      return true;
    }
  }
  return false;
}

void json_input_archive::leave() { impl_->segments.pop_back(); }

std::size_t json_input_archive::size_tag() {
  impl::frame& f = impl_->top_struct();
  if (f.kind != node_kind::pending) {
    throw std::logic_error("cmdwire JSON: a size tag after the fields of a struct");
  }
  if (!f.value->IsArray()) impl_->mismatch("array", *f.value);
  f.kind = node_kind::array;
  return f.value->Size();
}

bool json_input_archive::take_null() {
  const rj::Value& v = impl_->next();
  if (v.IsNull()) return true;
  impl_->slot = &v;  // read again by the value's own load
  return false;
}

bool json_input_archive::read_bool() {
  const rj::Value& v = impl_->next();
  if (!v.IsBool()) impl_->mismatch("boolean", v);
  return v.GetBool();
}

namespace {
// 2^63 and 2^64 as doubles: the bounds of an integral double that fits int64 / uint64.
constexpr double two63 = 9223372036854775808.0;
constexpr double two64 = 18446744073709551616.0;

bool integral(double d) { return std::isfinite(d) && std::trunc(d) == d; }
}  // namespace

std::int64_t json_input_archive::read_signed(std::int64_t lo, std::int64_t hi,
                                             std::string_view type) {
  const rj::Value& v = impl_->next();
  const auto out_of_range = [&](auto shown) {
    impl_->fail(fmt::format("integer {} is out of range for {}", shown, type));
  };
  if (v.IsInt64()) {
    const std::int64_t x = v.GetInt64();
    if (x < lo || x > hi) out_of_range(x);
    return x;
  }
  if (v.IsUint64()) out_of_range(v.GetUint64());  // above int64's range
  if (v.IsNumber() && integral(v.GetDouble())) {
    // 1e3 or 5.0: an integer written as a double. Exact, or refused.
    const double d = v.GetDouble();
    if (d < -two63 || d >= two63) out_of_range(d);
    const auto x = static_cast<std::int64_t>(d);
    if (x < lo || x > hi) out_of_range(x);
    return x;
  }
  if (v.IsNumber()) impl_->fail(fmt::format("expected integer, got number {}", v.GetDouble()));
  impl_->mismatch("integer", v);
}

std::uint64_t json_input_archive::read_unsigned(std::uint64_t hi, std::string_view type) {
  const rj::Value& v = impl_->next();
  const auto out_of_range = [&](auto shown) {
    impl_->fail(fmt::format("integer {} is out of range for {}", shown, type));
  };
  if (v.IsUint64()) {
    const std::uint64_t x = v.GetUint64();
    if (x > hi) out_of_range(x);
    return x;
  }
  if (v.IsInt64()) out_of_range(v.GetInt64());  // negative
  if (v.IsNumber() && integral(v.GetDouble())) {
    const double d = v.GetDouble();
    if (d < 0 || d >= two64) out_of_range(d);
    const auto x = static_cast<std::uint64_t>(d);
    if (x > hi) out_of_range(x);
    return x;
  }
  if (v.IsNumber()) impl_->fail(fmt::format("expected integer, got number {}", v.GetDouble()));
  impl_->mismatch("integer", v);
}

double json_input_archive::read_double(bool single) {
  const rj::Value& v = impl_->next();
  if (!v.IsNumber()) impl_->mismatch("number", v);
  const double d = v.GetDouble();
  if (single && std::isfinite(d) && std::fabs(d) > FLT_MAX) {
    impl_->fail(fmt::format("number {} is out of range for float", d));
  }
  return d;
}

void json_input_archive::read_string(std::string& out) {
  const rj::Value& v = impl_->next();
  if (!v.IsString()) impl_->mismatch("string", v);
  out.assign(v.GetString(), v.GetStringLength());
}

std::size_t json_input_archive::start_array() {
  const rj::Value& v = impl_->next();
  if (!v.IsArray()) impl_->mismatch("array", v);
  impl_->frames.emplace_back(&v, node_kind::container);
  return v.Size();
}

void json_input_archive::start_pair() {
  const rj::Value& v = impl_->next();
  if (!v.IsArray() || v.Size() != 2) {
    impl_->fail(v.IsArray()
                    ? fmt::format("expected a [key, value] pair, got an array of {}", v.Size())
                    : fmt::format("expected a [key, value] pair, got {}", kind_of(v)));
  }
  impl_->frames.emplace_back(&v, node_kind::container);
}

void json_input_archive::element(std::size_t index) {
  impl_->slot = &(*impl_->frames.back().value)[static_cast<rj::SizeType>(index)];
  impl_->segments.push_back({impl::segment::element, {}, index});
}

std::size_t json_input_archive::start_object() {
  const rj::Value& v = impl_->next();
  if (!v.IsObject()) impl_->mismatch("object", v);
  impl_->frames.emplace_back(&v, node_kind::container);
  return v.MemberCount();
}

std::string_view json_input_archive::member(std::size_t index) {
  const auto& m = impl_->frames.back().value->MemberBegin()[static_cast<rj::SizeType>(index)];
  const std::string_view name(m.name.GetString(), m.name.GetStringLength());
  impl_->slot = &m.value;
  impl_->segments.push_back({impl::segment::name, name});
  return name;
}

void json_input_archive::end_container() { impl_->frames.pop_back(); }

void json_input_archive::fail(std::string_view what) const { impl_->fail(what); }

}  // namespace cmdwire::detail
