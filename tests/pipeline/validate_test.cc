#include "broker/pipeline/validate.h"

#include <string>

#include <gtest/gtest.h>

namespace switchboard::pipeline {
namespace {

class validate_test : public ::testing::Test {
 protected:
  compiled_validate compile(std::string_view spec) {
    auto v = validate_spec::compile(spec);
    EXPECT_TRUE(v) << spec << ": " << v.error().message;
    return v ? *v : compiled_validate{};
  }
  std::string spec_error(std::string_view spec) {
    auto v = validate_spec::compile(spec);
    EXPECT_FALSE(v) << "compiled: " << spec;
    if (v) return {};
    EXPECT_EQ(v.error().code, errc::invalid_spec);
    return v.error().message;
  }
  // "ok" or the event error's message (asserting its code).
  std::string check(std::string_view spec, std::string_view payload) {
    auto r = compile(spec).check(payload, cx);
    if (r) return "ok";
    EXPECT_EQ(r.error().code, errc::invalid_event);
    return r.error().message;
  }
  context cx;
};

constexpr std::string_view typed =
    R"({"required":{"call_sid":"string","duration":"number","data.from":"string"}})";

TEST_F(validate_test, accepts_an_event_with_the_required_fields) {
  EXPECT_EQ(check(typed, R"({"call_sid":"CA1","duration":12.5,"data":{"from":"+1415"}})"), "ok");
  EXPECT_EQ(check(typed, R"({"x":[1],"data":{"from":"","more":null},"duration":-0,"call_sid":"\u00e9"})"),
            "ok");
}

TEST_F(validate_test, names_the_missing_field) {
  EXPECT_EQ(check(typed, R"({"duration":1,"data":{"from":"+1"}})"), R"(missing required field "call_sid")");
  EXPECT_EQ(check(typed, R"({"call_sid":"CA1","duration":1,"data":{}})"),
            R"(missing required field "data.from")");
  // A parent that is not an object: the field is missing.
  EXPECT_EQ(check(typed, R"({"call_sid":"CA1","duration":1,"data":"x"})"),
            R"(missing required field "data.from")");
  EXPECT_EQ(check(typed, R"({"call_sid":"CA1","duration":1,"data":[{"from":"+1"}]})"),
            R"(missing required field "data.from")");
}

TEST_F(validate_test, names_the_field_with_the_wrong_type) {
  EXPECT_EQ(check(typed, R"({"call_sid":"CA1","duration":"12","data":{"from":"+1"}})"),
            R"(field "duration" must be a number, not a string)");
  EXPECT_EQ(check(typed, R"({"call_sid":null,"duration":1,"data":{"from":"+1"}})"),
            R"(field "call_sid" must be a string, not null)");
  EXPECT_EQ(check(typed, R"({"call_sid":"CA1","duration":1,"data":{"from":7}})"),
            R"(field "data.from" must be a string, not an integer)");
}

TEST_F(validate_test, reports_the_first_failure_in_spec_order) {
  EXPECT_EQ(check(typed, R"({"duration":"x"})"), R"(missing required field "call_sid")");
  EXPECT_EQ(check(R"({"required":{"b":"string","a":"string"}})", R"({"a":1,"b":2})"),
            R"(field "b" must be a string, not an integer)");
}

TEST_F(validate_test, every_type) {
  constexpr std::string_view spec =
      R"({"required":{"s":"string","n":"number","i":"integer","b":"boolean","o":"object","a":"array","z":"null","x":"any"}})";
  EXPECT_EQ(check(spec, R"({"s":"","n":1e400,"i":1,"b":true,"o":{},"a":[],"z":null,"x":{}})"),
            "payload is not JSON: number too big to be stored in double at byte 12");
  EXPECT_EQ(
      check(spec, R"({"s":"","n":1e300,"i":-9223372036854775808,"b":false,"o":{},"a":[],"z":null,"x":[]})"),
      "ok");
  EXPECT_EQ(
      check(spec,
            R"({"s":"","n":7,"i":18446744073709551615,"b":false,"o":{"k":1},"a":[[]],"z":null,"x":null})"),
      "ok");
  EXPECT_EQ(check(spec, R"({"s":"","n":1,"i":1.0,"b":true,"o":{},"a":[],"z":null,"x":0})"),
            R"(field "i" must be an integer, not a number with a fraction or exponent)");
  EXPECT_EQ(check(spec, R"({"s":"","n":1,"i":1E2,"b":true,"o":{},"a":[],"z":null,"x":0})"),
            R"(field "i" must be an integer, not a number with a fraction or exponent)");
  EXPECT_EQ(check(spec, R"({"s":"","n":1,"i":1,"b":"true","o":{},"a":[],"z":null,"x":0})"),
            R"(field "b" must be a boolean, not a string)");
  EXPECT_EQ(check(spec, R"({"s":"","n":1,"i":1,"b":true,"o":[],"a":[],"z":null,"x":0})"),
            R"(field "o" must be an object, not an array)");
  EXPECT_EQ(check(spec, R"({"s":"","n":1,"i":1,"b":true,"o":{},"a":{},"z":null,"x":0})"),
            R"(field "a" must be an array, not an object)");
  EXPECT_EQ(check(spec, R"({"s":"","n":1,"i":1,"b":true,"o":{},"a":[],"z":0,"x":0})"),
            R"(field "z" must be null, not an integer)");
  EXPECT_EQ(check(spec, R"({"s":"","n":1,"i":1,"b":true,"o":{},"a":[],"z":null})"),
            R"(missing required field "x")");
  EXPECT_EQ(check(R"({"required":{"n":"integer"}})", R"({"n":-0.0})"),
            R"(field "n" must be an integer, not a number with a fraction or exponent)");
  EXPECT_EQ(check(R"({"required":{"n":"integer"}})", R"({"n":-0})"), "ok");
  EXPECT_EQ(check(R"({"required":{"s":"string"}})", R"({"s":1.5})"),
            R"(field "s" must be a string, not a number)");
}

TEST_F(validate_test, json_is_required) {
  EXPECT_EQ(check("{}", R"([1,2])"), "ok");
  EXPECT_EQ(check("{}", R"("just a string")"), "ok");
  EXPECT_EQ(check("{}", ""), "payload is not JSON: the document is empty at byte 0");
  EXPECT_EQ(check("{}", "   "), "payload is not JSON: the document is empty at byte 3");
  EXPECT_EQ(check("{}", R"({"a":1,})"), "payload is not JSON: missing a name for object member at byte 7");
  EXPECT_EQ(check("{}", R"({"a":1 "b":2})"),
            "payload is not JSON: missing a comma or '}' after an object member at byte 7");
  EXPECT_EQ(check("{}", R"([1,2)"),
            "payload is not JSON: missing a comma or ']' after an array element at byte 4");
  EXPECT_EQ(check("{}", R"({"a":tru})"), "payload is not JSON: invalid value at byte 8");
  EXPECT_EQ(check("{}", R"({} x)"),
            "payload is not JSON: the document root must not be followed by other values at byte 3");
  EXPECT_EQ(check("{}", "\"\xff\""), "payload is not JSON: invalid encoding in string at byte 1");
  EXPECT_EQ(check("{}", R"("\ud800")"),
            "payload is not JSON: the surrogate pair in string is invalid at byte 1");
  EXPECT_EQ(check("{}", "123456789012345678901234567890"),
            "payload is not JSON: Problem while parsing a number");
  // RapidJSON's reader takes NUL for the end of input: simdjson's message, without a position.
  EXPECT_EQ(check("{}", std::string_view("{\"a\":1}\0", 8)),
            "payload is not JSON: The JSON document has an improper structure: missing or superfluous "
            "commas, braces, "
            "missing keys, etc.");
}

TEST_F(validate_test, deep_nesting_is_refused_without_recursion) {
  const std::string ok = std::string(1024, '[') + std::string(1024, ']');
  EXPECT_EQ(check("{}", ok), "ok");
  const std::string deep = std::string(1025, '[') + std::string(1025, ']');
  EXPECT_EQ(check("{}", deep), "payload is not JSON: nested deeper than 1024 levels at byte 1024");
  const std::string very_deep(1'000'000, '[');  // would overflow a recursive parser's stack
  EXPECT_EQ(check("{}", very_deep), "payload is not JSON: nested deeper than 1024 levels at byte 1024");
}

TEST_F(validate_test, required_fields_need_an_object) {
  EXPECT_EQ(check(typed, R"([{"call_sid":"CA1"}])"), "payload must be a JSON object, not an array");
  EXPECT_EQ(check(typed, "null"), "payload must be a JSON object, not null");
  EXPECT_EQ(check(typed, "42"), "payload must be a JSON object, not an integer");
  EXPECT_EQ(check(typed, R"("x")"), "payload must be a JSON object, not a string");
}

TEST_F(validate_test, keys_are_compared_unescaped) {
  EXPECT_EQ(check(R"({"required":{"call_sid":"string"}})", R"({"call\u005fsid":"CA1"})"), "ok");
  EXPECT_EQ(check(R"({"required":{"caf\u00e9":"string"}})", "{\"caf\xc3\xa9\":\"x\"}"), "ok");
  EXPECT_EQ(check(R"({"required":{"a\"b":"string"}})", R"({"a\"b":"x"})"), "ok");
  // Messages quote names in printable ASCII.
  EXPECT_EQ(check(R"({"required":{"caf\u00e9":"string"}})", "{}"), R"(missing required field "caf\xc3\xa9")");
  EXPECT_EQ(check(R"({"required":{"a\"b\n":"string"}})", "{}"), R"(missing required field "a\"b\n")");
}

TEST_F(validate_test, duplicate_keys_use_the_first) {
  EXPECT_EQ(check(R"({"required":{"a":"string"}})", R"({"a":"x","a":1})"), "ok");
  EXPECT_EQ(check(R"({"required":{"a":"string"}})", R"({"a":1,"a":"x"})"),
            R"(field "a" must be a string, not an integer)");
}

TEST_F(validate_test, array_indexes_in_paths) {
  constexpr std::string_view spec = R"({"required":{"items.0.sku":"string","items.1":"integer"}})";
  EXPECT_EQ(check(spec, R"({"items":[{"sku":"A"},2]})"), "ok");
  EXPECT_EQ(check(spec, R"({"items":[{"sku":"A"}]})"), R"(missing required field "items.1")");
  EXPECT_EQ(check(spec, R"({"items":{"0":{"sku":"A"},"1":2}})"), "ok");  // a decimal key of an object
  EXPECT_EQ(check(R"({"required":{"items.01":"any"}})", R"({"items":[1,2]})"),
            R"(missing required field "items.01")");
}

TEST_F(validate_test, list_form_requires_presence) {
  const auto v = compile(R"({"required":["call_sid","data.from"]})");
  ASSERT_EQ(v.required().size(), 2u);
  EXPECT_EQ(v.required()[1].path.text(), "data.from");
  EXPECT_EQ(v.required()[1].type, field_type::any);
  EXPECT_EQ(check(R"({"required":["call_sid","data.from"]})", R"({"call_sid":null,"data":{"from":[]}})"),
            "ok");
  EXPECT_EQ(check(R"({"required":["call_sid","data.from"]})", R"({"call_sid":null})"),
            R"(missing required field "data.from")");
}

TEST_F(validate_test, an_empty_spec_and_empty_required) {
  EXPECT_TRUE(compile("{}").required().empty());
  EXPECT_EQ(check(R"({"required":{}})", "[]"), "ok");
  EXPECT_EQ(check(R"({"required":[]})", "1"), "ok");
}

TEST_F(validate_test, spec_errors) {
  EXPECT_EQ(spec_error(""), R"(attribute "validate" is not JSON: the document is empty at byte 0)");
  EXPECT_EQ(spec_error("[]"), R"(attribute "validate" must be an object)");
  EXPECT_EQ(spec_error(R"({"require":{}})"), R"(unknown attribute "validate.require")");
  EXPECT_EQ(spec_error(R"({"required":{},"required":{}})"),
            R"(attribute "validate.required" appears more than once)");
  EXPECT_EQ(
      spec_error(R"({"required":"call_sid"})"),
      R"(attribute "validate.required" must be an object of field paths to types, or an array of field paths)");
  EXPECT_EQ(
      spec_error(R"({"required":{"a":"str"}})"),
      R"(attribute "validate.required.a" must be one of string, number, integer, boolean, object, array, null, any)");
  EXPECT_EQ(
      spec_error(R"({"required":{"a":1}})"),
      R"(attribute "validate.required.a" must be one of string, number, integer, boolean, object, array, null, any)");
  EXPECT_EQ(spec_error(R"({"required":{"a":"string","a":"number"}})"),
            R"(attribute "validate.required.a" appears more than once)");
  EXPECT_EQ(
      spec_error(R"({"required":{"a..b":"string"}})"),
      R"(attribute "validate.required.a..b" holds an invalid field path: "a..b" has an empty segment at position 2)");
  EXPECT_EQ(spec_error(R"({"required":{"":"string"}})"),
            R"(attribute "validate.required." holds an invalid field path: "" is empty)");
  EXPECT_EQ(spec_error(R"({"required":["a",2]})"), R"(attribute "validate.required[1]" must be a string)");
  EXPECT_EQ(spec_error(R"({"required":["a","b","a"]})"),
            R"(attribute "validate.required[2]" repeats field "a")");
  EXPECT_EQ(
      spec_error(R"({"required":["a."]})"),
      R"(attribute "validate.required[0]" holds an invalid field path: "a." has an empty segment at position 2)");
  auto named = validate_spec::compile("[]", "schema");
  ASSERT_FALSE(named);
  EXPECT_EQ(named.error().message, R"(attribute "schema" must be an object)");
}

TEST_F(validate_test, to_string_names_types_as_the_spec_does) {
  EXPECT_EQ(to_string(field_type::string), "string");
  EXPECT_EQ(to_string(field_type::integer), "integer");
  EXPECT_EQ(to_string(field_type::any), "any");
}

}  // namespace
}  // namespace switchboard::pipeline
