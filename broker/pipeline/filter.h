// Subscriber filters (DESIGN.md: "Per subscriber: a filter (field equality / prefix on the JSON
// payload)"): compiled once per subscription, matched against every event the subscription sees.
//
// Spec: a JSON object of field path (field_path.h) -> condition; all conditions must hold (AND);
// `{}` matches every event.
//   {"data.call_sid": "CA1"}                        equality: a string, integer, number, boolean or
//                                                   null; the field holds the same JSON type and value
//   {"data.from": {"prefix": "+1415"}}              the field is a string starting with these bytes
//   {"status": {"in": ["ringing", "answered"]}}     equality with any of the listed values
//                                                   (non-empty; strings, numbers, booleans, null)
// Equality is by JSON type and value: strings byte for byte after unescaping (`"\u0041"` equals
// "A"); integers (no fraction, no exponent) compare with integers only, so 5 does not match 5.0;
// other numbers compare as doubles (0.0 equals -0.0). An event does not match when its payload is
// not JSON, is not an object, lacks a field, or holds it with another type.
//
// This is a superset of durable subscriptions' filter (broker/durable/subscription_spec.h): the same
// JSON for equality on strings, integers and booleans and for {"prefix": …}; in addition dotted
// paths, `in`, null and non-integer numbers. One difference: a durable filter key is a top-level
// member name taken literally, so a key with a dot ("a.b") named member "a.b" there and names
// member "b" of member "a" here.
//
// Cost: compiled once. matches() first checks, without parsing, that each condition's last member
// name (and an equality string) occurs in the payload text, when the payload holds no backslash
// (so the text shows every key and string unescaped): a payload that lacks a field is rejected by a
// memmem, in tens of nanoseconds. Otherwise it parses the payload with the context's parser.
//
// Spec errors (code invalid_spec; `filter` is the `attribute` argument of compile):
//   attribute "filter" is not JSON: <reason>
//   attribute "filter" must be an object
//   attribute "filter.<path>" appears more than once
//   attribute "filter.<path>" holds an invalid field path: "<path>" <field_path::parse reason>
//   attribute "filter.<path>" must be a string, a number, a boolean, null, {"prefix": string} or
//     {"in": [value, …]}                                       (one line in the message)
//   attribute "filter.<path>.prefix" must be a string
//   attribute "filter.<path>.in" must be a non-empty array of strings, numbers, booleans or null
//
// Thread-safety: compiled_filter is an immutable value; matches() uses the caller's context.
#pragma once

#include "broker/pipeline/context.h"
#include "broker/pipeline/error.h"
#include "broker/pipeline/field_path.h"

#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace switchboard::pipeline {

// A value a condition compares with. int64 holds every integer simdjson holds as int64; uint64 only
// those above 2^63-1 (as simdjson does), so equal integers always have the same alternative.
using filter_value = std::variant<std::nullptr_t, bool, std::int64_t, std::uint64_t, double, std::string>;

struct filter_condition {
  enum class match : std::uint8_t { equals, prefix, in };
  field_path path;
  match how = match::equals;
  std::vector<filter_value> values;  // equals, prefix: exactly one (prefix: a string); in: one or more

  // Early-out (see the file comment): when the payload holds no backslash, the payload must contain
  // each of these byte strings for the condition to hold. `impossible`: the condition names a key
  // (or string) that needs escaping in JSON, so a payload without backslashes cannot match.
  std::vector<std::string> needles;
  bool impossible_unescaped = false;

  friend bool operator==(const filter_condition& a, const filter_condition& b) {
    return a.path == b.path && a.how == b.how && a.values == b.values;
  }
};

class compiled_filter {
 public:
  // The conditions, in spec order (the order they are evaluated).
  [[nodiscard]] std::span<const filter_condition> conditions() const noexcept { return _conditions; }
  [[nodiscard]] bool empty() const noexcept { return _conditions.empty(); }

  // True when `payload` satisfies every condition (see above). Never fails; allocates nothing once
  // `cx` is warm; does not block.
  [[nodiscard]] bool matches(std::string_view payload, context& cx) const;

  // The canonical JSON form: conditions in spec order, an equality as its bare value, `in` lists
  // in spec order. filter_spec::compile(to_json()) compiles to an equal filter.
  [[nodiscard]] std::string to_json() const;

  friend bool operator==(const compiled_filter&, const compiled_filter&) = default;

 private:
  friend struct filter_spec;
  std::vector<filter_condition> _conditions;
};

struct filter_spec {
  // Compiles a spec (see above). `attribute` names the spec in error messages.
  [[nodiscard]] static std::expected<compiled_filter, error> compile(std::string_view json,
                                                                     std::string_view attribute = "filter");
};

}  // namespace switchboard::pipeline
