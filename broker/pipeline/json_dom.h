// Internal to broker/pipeline/ (never included from outside it): the simdjson/RapidJSON adapter
// the stages share. Reading a payload (parse with a located error), resolving field paths on the
// DOM, naming JSON types in messages and writing DOM values with RapidJSON's Writer.
#pragma once

#include "broker/pipeline/context.h"
#include "broker/pipeline/error.h"
#include "broker/pipeline/field_path.h"

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>

namespace switchboard::pipeline::detail {

namespace dom = simdjson::dom;
using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

// translate's scratch tree (translate_apply.cc): the output as the input's DOM plus the objects an
// operation changed. An object that no operation touched stays a DOM element and is written as is.
inline constexpr std::uint32_t no_node = 0xffffffff;
struct tree_value {
  dom::element element;          // when node == no_node: a value of the payload or of the spec
  std::uint32_t node = no_node;  // else: index of a tree_object in context_state::nodes
};
struct tree_member {
  std::string_view key;  // points into the payload's DOM or into the compiled spec
  tree_value value;
};
struct tree_object {
  std::vector<tree_member> members;  // in output order
};

struct context_state {
  dom::parser parser;
  rapidjson::StringBuffer out;
  json_writer writer{out};         // Reset() per event: keeps its stack's capacity
  std::vector<tree_object> nodes;  // nodes[0 .. used) are live; the rest keep their capacity
  std::size_t used = 0;
};

// `v` as an object / array. Precondition: v.is_object() / v.is_array().
inline dom::object as_object(dom::element v) noexcept {
  dom::object o;
  if (v.get(o) != simdjson::SUCCESS) return {};
  return o;
}
inline dom::array as_array(dom::element v) noexcept {
  dom::array a;
  if (v.get(a) != simdjson::SUCCESS) return {};
  return a;
}

// Parses `payload` with the context's parser. The element is valid until the parser parses again.
// Error: invalid_event "payload is not JSON: <reason>" (see describe_json_error).
[[nodiscard]] std::expected<dom::element, error> parse_payload(context_state& cx, std::string_view payload);

// Why `text` is not JSON, for a document simdjson rejected with `err`: RapidJSON's reader (iterative,
// validating UTF-8) locates the first error: "<reason> at byte <N>" (reason lower-case, without the
// final period; depth beyond 1024: "nested deeper than 1024 levels at byte <N>"). When RapidJSON
// accepts the text, simdjson's message: an integer beyond 64 bits ("Problem while parsing a
// number": RapidJSON reads it as a double, simdjson's DOM cannot hold it), or a NUL after the value
// (RapidJSON's reader takes NUL for the end of input).
[[nodiscard]] std::string describe_json_error(std::string_view text, simdjson::error_code err);

// The value at `path` (reading rules of field_path.h), or nullopt.
[[nodiscard]] std::optional<dom::element> resolve(dom::element root, const field_path& path) noexcept;

// "a string", "a number", "an integer", "a boolean", "an object", "an array", "null". Integers are
// values simdjson holds as int64/uint64 (no fraction, no exponent); other numbers are "a number".
[[nodiscard]] std::string_view type_phrase(dom::element v) noexcept;

// Limits on what a stage writes. Depth counts containers: the root object is at depth 1, and
// simdjson (hence every later stage and subscriber filter) rejects documents deeper than 1024.
struct write_budget {
  std::size_t max_depth = 1024;
  std::size_t max_bytes = static_cast<std::size_t>(-1);
  const rapidjson::StringBuffer* out = nullptr;  // the buffer whose size max_bytes bounds
  bool too_deep = false;
  bool too_large = false;

  // Entering a container at `depth`, or writing a member: false (and the flag set) once over a limit.
  bool allows(std::size_t depth) noexcept {
    if (depth > max_depth) too_deep = true;
    if (out != nullptr && out->GetSize() > max_bytes) too_large = true;
    return !too_deep && !too_large;
  }
};

// Writes `v`, whose container (if any) sits at `depth` (1 for a root). Returns false, leaving the
// document unfinished, when `budget` is exceeded. Recursion is bounded by budget.max_depth.
// Strings are re-escaped by RapidJSON (only `"`, `\` and control characters; UTF-8 is written as
// is), int64/uint64 exactly, doubles in the shortest form that reads back to the same double
// (Grisu2), e.g. 1e300, -0.0.
bool write_element(json_writer& w, dom::element v, std::size_t depth, write_budget& budget);

inline void write_string(json_writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
inline void write_key(json_writer& w, std::string_view s) {
  w.Key(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// For spec compilers: "attribute <quoted path>" as channel_config.h writes it.
[[nodiscard]] std::string attribute_phrase(std::string_view path);
[[nodiscard]] std::unexpected<error> invalid_spec(std::string message);
// Parses a spec document into `doc` (which must not move while its elements are used).
// Errors: invalid_spec "attribute "<attribute>" is not JSON: <describe_json_error>".
[[nodiscard]] std::expected<dom::element, error> parse_spec_document(dom::document& doc,
                                                                     std::string_view json,
                                                                     std::string_view attribute);
// Parses a field path given at spec path `where`. Error: invalid_spec
// `attribute "<where>" holds an invalid field path: "<path>" <reason>`.
[[nodiscard]] std::expected<field_path, error> parse_field_path(std::string_view text,
                                                                std::string_view where);

}  // namespace switchboard::pipeline::detail
