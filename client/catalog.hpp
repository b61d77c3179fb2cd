// What the CLI knows about a server's commands, read from DESCRIBE (PROTOCOL.md §11): each
// command's form and request shape, for `call --attr`, `call --stdin` and the shell.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cmdwire/client.hpp"

namespace cmdwire::cli {

/// One JSON shape of DESCRIBE, as a tree. Types this build does not know are `other`, and
/// the CLI then takes any JSON for them.
struct schema {
  enum class kind {
    none,
    string,
    bytes,
    integer,
    number,
    boolean,
    enumeration,
    object,
    array,
    map,
    ref,
    other
  };
  kind type = kind::other;
  std::string type_word;  ///< DESCRIBE's own word ("integer"), for messages
  std::string name;       ///< object: the type's name; ref: the enclosing object it names
  std::string format;     ///< integer/number: "int64", "double"...
  std::vector<std::pair<std::string, std::shared_ptr<const schema>>> fields;  ///< object
  std::shared_ptr<const schema> items;  ///< array: the items; map: the values
  std::vector<std::string> values;      ///< enumeration

  /// The member `field` of an object (nullptr if there is none).
  [[nodiscard]] const schema* field(std::string_view field) const;
  /// The field names of an object, joined with ", ".
  [[nodiscard]] std::string field_list() const;
};

/// One command as DESCRIBE tells it.
struct command_info {
  std::string name;
  std::string form;                       ///< "framed", "line" or "stream"
  std::shared_ptr<const schema> request;  ///< nullptr: the server does not know the type
  /// Objects by name, for resolving `ref` shapes (recursion is shown once).
  std::map<std::string, const schema*, std::less<>> objects;

  /// `s` itself, or the object a `ref` names (nullptr if the name is not known).
  [[nodiscard]] const schema* resolve(const schema* s) const;
  /// The request shape is an object: the body is JSON with fields.
  [[nodiscard]] bool takes_fields() const;
};

/// The commands of one server, sorted by name.
struct catalog {
  std::vector<command_info> commands;
  [[nodiscard]] const command_info* find(std::string_view name) const;
};

/// Parses DESCRIBE's reply body; nullopt if it is not the JSON PROTOCOL.md §11 describes.
[[nodiscard]] std::optional<catalog> parse_describe(std::string_view json);

/// Asks `conn` for DESCRIBE (of `name` only, when given, else of every command). nullopt when
/// the server cannot describe it: DESCRIBE switched off, an older server, a reply that is not
/// §11's JSON, `name` unknown, or a failed call; then `*failed` (when given) holds the call's
/// error, if the call itself failed.
[[nodiscard]] std::optional<catalog> fetch_catalog(cmdwire::client& conn, std::string_view name,
                                                   std::optional<cmdwire::error>* failed = nullptr);

}  // namespace cmdwire::cli
