// The `translate` stage (DESIGN.md "Channel configuration attributes"): a declarative rewrite of a
// JSON object payload, compiled once per spec and applied per event.
//
// Spec (JSON object; every operation optional, each at most once):
//   {"copy":     {"caller": "from.number"},      target path <- value at source path
//    "rename":   {"call_sid": "sid"},            source path -> target path (the value moves)
//    "drop":     ["debug", "data.raw"],          remove these paths
//    "set":      {"v": 2, "meta.src": "pbx"},    target path <- constant (any JSON value)
//    "template": {"id": "{{sid}}",               the output is this object, each string value
//                 "who": {"from": "{{caller}}"}}}  "{{path}}" replaced by the value at that path
//
// Order. Operations apply in this fixed order whatever the order of the spec's members: copy,
// rename, drop, set, then template; entries of one operation apply in spec order, each seeing the
// result of the ones before. So a rename may move a copied field, a set may re-add a dropped one, and
// template placeholders read the result of copy/rename/drop/set (`{{sid}}` after renaming call_sid).
//
// Paths (field_path.h). Reading (copy sources, template placeholders) may index arrays
// (`items.0.sku`). Writing (rename source and target, drop, set and copy targets) walks objects only.
// Missing values are skipped silently, never an error:
//   - copy/rename whose source is absent, drop of an absent path: nothing happens;
//   - a target whose intermediate objects are absent: they are created (appended as `{}`);
//   - a target or source path that meets a non-object before its last segment (a string, an array,
//     a number …): the operation is skipped and the payload is left as it was;
//   - a template member whose placeholder finds nothing is left out of its object; an array item
//     whose placeholder finds nothing is written as null (positions keep their meaning).
// Only a whole string "{{path}}" is a placeholder (spaces inside the braces are allowed); any other
// string, number, boolean, null, array or object in a template is written as it is (arrays and
// objects are searched for placeholders recursively).
//
// Writing a target. An existing member is replaced in place (keeps its position); otherwise the
// member is appended to its object. Rename within one object (`a` -> `b`) keeps the member's
// position and removes any other member named like the target. Rename to another object removes the
// source and writes the target as above. A rename whose target lies inside its source (`a` ->
// `a.b`) is a spec error; copy may do that (`a` -> `a.b` copies the old `a` into itself). Renaming
// or copying a path to itself does nothing.
//
// Output. Deterministic: the same spec and payload always give the same bytes. Minified; members of
// the input keep their order, new members follow in the order they were added. Strings are
// re-escaped by RapidJSON (`"`, `\` and control characters only; `\u00e9` in the input is written as
// the UTF-8 bytes; `\/` as `/`); integers are written exactly (int64/uint64); other numbers in the
// shortest form that reads back to the same double (`1.50` -> `1.5`, `1E2` -> `100.0`, `-0.0`
// stays `-0.0`, `-0` is the integer 0). Duplicate keys: a path names the first member with its key;
// an untouched object keeps its duplicates; writing or dropping a key removes its other duplicates
// in that object.
//
// Event errors (code invalid_event):
//   payload is not JSON: <reason>                      (the messages of validate.h)
//   payload must be a JSON object, not <type>          (type as in validate.h: "an array", "null" …)
//   translated payload would be nested deeper than 1024 levels
//   translated payload exceeds <N> bytes               (N: apply's max_output_bytes)
//   translated payload changes more than 16384 objects (max_translate_objects)
// The limits exist because a spec may grow the output: each copy of `a` into `a.x` doubles `a`.
//
// Spec errors (code invalid_spec; `translate` is the `attribute` argument of compile):
//   attribute "translate" is not JSON: <reason>
//   attribute "translate" must be an object
//   unknown operation "translate.<name>" (expected copy, rename, drop, set, template)
//   attribute "translate.<op>" appears more than once
//   attribute "translate.copy" must be an object of target paths to source paths
//   attribute "translate.rename" must be an object of source paths to target paths
//   attribute "translate.<op>.<path>" must be a string
//   attribute "translate.<op>.<path>" appears more than once
//   attribute "translate.rename.<source>" moves a field inside itself (to "<target>")
//   attribute "translate.drop" must be an array of field paths
//   attribute "translate.drop[<i>]" must be a string
//   attribute "translate.set" must be an object of target paths to values
//   attribute "translate.template" must be an object
//   attribute "<where>" holds an invalid field path: "<path>" <field_path::parse reason>
//     (<where> is e.g. translate.rename.a..b, translate.drop[2], translate.template.who.from)
//
// Thread-safety: compiled_translate is immutable and cheap to copy (it shares its program); apply()
// may run on many threads at once, each with its own context.
#pragma once

#include "broker/pipeline/context.h"
#include "broker/pipeline/error.h"

#include <cstddef>
#include <expected>
#include <memory>
#include <string>
#include <string_view>

namespace switchboard::pipeline {

// Output limits of apply(). Depth: simdjson's default, so the output stays readable by every later
// stage and filter. Objects: how many objects one event's operations may change (materialize),
// which bounds the per-context scratch memory. Bytes: the default; the router passes its own.
inline constexpr std::size_t max_output_depth = 1024;
inline constexpr std::size_t max_translate_objects = 16384;
inline constexpr std::size_t default_max_output_bytes = std::size_t{4} << 20;

namespace detail {
struct translate_program;  // the compiled operations; simdjson stays in the .cc files
}  // namespace detail

class compiled_translate {
 public:
  // Applies the spec to `payload`. Returns the output, a view into `cx` valid until the next call
  // using `cx` (copy it to keep it); `payload` may itself point into `cx` (it is read before the
  // output is written). Error: invalid_event (see above); the output is at most `max_output_bytes`.
  // Once `cx` is warm, allocates nothing on success; does not block.
  [[nodiscard]] std::expected<std::string_view, error> apply(
      std::string_view payload, context& cx, std::size_t max_output_bytes = default_max_output_bytes) const;

  // The spec this was compiled from, minified (a canonical form for logs and the admin API).
  [[nodiscard]] const std::string& spec_json() const noexcept;

  [[nodiscard]] const detail::translate_program& program() const noexcept { return *_program; }

 private:
  friend struct translate_spec;
  explicit compiled_translate(std::shared_ptr<const detail::translate_program> p) : _program(std::move(p)) {}
  std::shared_ptr<const detail::translate_program> _program;
};

struct translate_spec {
  // Compiles a spec (see above). `attribute` names the spec in error messages. Allocates; does not
  // block.
  [[nodiscard]] static std::expected<compiled_translate, error> compile(
      std::string_view json, std::string_view attribute = "translate");
};

}  // namespace switchboard::pipeline
