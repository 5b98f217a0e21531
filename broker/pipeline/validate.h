// The `validate` stage (DESIGN.md `schema` / `validate`): an event must be JSON and, optionally,
// hold required fields of given types.
//
// Spec (JSON object; every member optional):
//   {}                                           the payload must be JSON (any JSON value)
//   {"required": {"call_sid": "string",          field path -> type; the payload must be a JSON
//                 "duration": "number",          object holding every path (field_path.h) with a
//                 "data.from": "string"}}        value of that type
//   {"required": ["call_sid", "data.from"]}      the same with type "any" (channels::schema_spec's
//                                                form, so a stored `schema` attribute compiles as is)
// Types: string | number (any JSON number) | integer (a number simdjson holds as a 64-bit integer:
// no fraction, no exponent) | boolean | object | array | null | any (present, any value).
//
// Checks run in spec order and the first failure is reported (code invalid_event):
//   payload is not JSON: <reason> at byte <N>        e.g. "missing a comma or '}' after an object
//                                                    member at byte 12" (json_dom.h)
//   payload is not JSON: number too big to be stored in double at byte <N>     (1e400)
//   payload is not JSON: Problem while parsing a number     (an integer beyond 64 bits: simdjson's DOM
//                                                    cannot hold it; RapidJSON would read a double)
//   payload is not JSON: nested deeper than 1024 levels at byte <N>
//   payload must be a JSON object, not <type>        (only when `required` is not empty)
//   missing required field "<path>"                  (also when a parent is not an object)
//   field "<path>" must be <type>, not <actual>      e.g. `field "duration" must be a number, not a
//                                                    string`; actual is "a string", "an integer", "a
//                                                    number", "a boolean", "an object", "an array" or
//                                                    "null"; a number with a fraction or exponent
//                                                    where an integer is required is "a number with a
//                                                    fraction or exponent"
// Paths in messages are quoted by router::quote_name (printable ASCII).
//
// Spec errors (code invalid_spec; `validate` is the `attribute` argument of compile):
//   attribute "validate" is not JSON: <reason>
//   attribute "validate" must be an object
//   unknown attribute "validate.<name>"
//   attribute "validate.<name>" appears more than once
//   attribute "validate.required" must be an object of field paths to types, or an array of field paths
//   attribute "validate.required.<path>" must be one of string, number, integer, boolean, object,
//     array, null, any                                         (one line in the message)
//   attribute "validate.required.<path>" appears more than once
//   attribute "validate.required[<i>]" must be a string
//   attribute "validate.required[<i>]" repeats field "<path>"
//   attribute "<where>" holds an invalid field path: "<path>" <field_path::parse reason>
//
// Thread-safety: compiled_validate is an immutable value; check() uses the caller's context.
#pragma once

#include "broker/pipeline/context.h"
#include "broker/pipeline/error.h"
#include "broker/pipeline/field_path.h"

#include <cstdint>
#include <expected>
#include <span>
#include <string_view>
#include <vector>

namespace switchboard::pipeline {

enum class field_type : std::uint8_t { string, number, integer, boolean, object, array, null, any };

// "string", "number", … as in the spec.
[[nodiscard]] std::string_view to_string(field_type t) noexcept;

struct required_field {
  field_path path;
  field_type type = field_type::any;

  friend bool operator==(const required_field&, const required_field&) = default;
};

class compiled_validate {
 public:
  // The required fields, in spec order.
  [[nodiscard]] std::span<const required_field> required() const noexcept { return _required; }

  // Returns nothing when `payload` passes, else the first invalid_event error (see above).
  // Does not allocate on success once `cx` is warm; does not block.
  [[nodiscard]] std::expected<void, error> check(std::string_view payload, context& cx) const;

 private:
  friend struct validate_spec;
  std::vector<required_field> _required;
};

struct validate_spec {
  // Compiles a spec (see above). `attribute` names the spec in error messages.
  [[nodiscard]] static std::expected<compiled_validate, error> compile(
      std::string_view json, std::string_view attribute = "validate");
};

}  // namespace switchboard::pipeline
