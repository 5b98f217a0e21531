#include "broker/pipeline/filter.h"

#include <string>

#include <gtest/gtest.h>

namespace switchboard::pipeline {
namespace {

class filter_test : public ::testing::Test {
 protected:
  bool matches(std::string_view spec, std::string_view payload) {
    auto f = filter_spec::compile(spec);
    EXPECT_TRUE(f) << spec << ": " << f.error().message;
    return f && f->matches(payload, cx);
  }
  std::string spec_error(std::string_view spec) {
    auto f = filter_spec::compile(spec);
    EXPECT_FALSE(f) << "compiled: " << spec;
    if (f) return {};
    EXPECT_EQ(f.error().code, errc::invalid_spec);
    return f.error().message;
  }
  context cx;
};

TEST_F(filter_test, equality_on_a_dotted_path) {
  constexpr std::string_view spec = R"({"data.call_sid":"CA1"})";
  EXPECT_TRUE(matches(spec, R"({"data":{"call_sid":"CA1"}})"));
  EXPECT_TRUE(matches(spec, R"({"type":"x","data":{"from":"+1","call_sid":"CA1"}})"));
  EXPECT_FALSE(matches(spec, R"({"data":{"call_sid":"CA2"}})"));
  EXPECT_FALSE(matches(spec, R"({"data":{"call_sid":"CA1x"}})"));
  EXPECT_FALSE(matches(spec, R"({"data":{"call_sid":["CA1"]}})"));
  EXPECT_FALSE(matches(spec, R"({"data.call_sid":"CA1"})"));  // a literal dotted key is not the path
  EXPECT_FALSE(matches(spec, R"({"call_sid":"CA1"})"));
  EXPECT_FALSE(matches(spec, R"({"data":"CA1"})"));
}

TEST_F(filter_test, prefix) {
  constexpr std::string_view spec = R"({"data.from":{"prefix":"+1415"}})";
  EXPECT_TRUE(matches(spec, R"({"data":{"from":"+14155550100"}})"));
  EXPECT_TRUE(matches(spec, R"({"data":{"from":"+1415"}})"));
  EXPECT_FALSE(matches(spec, R"({"data":{"from":"+1416"}})"));
  EXPECT_FALSE(matches(spec, R"({"data":{"from":"+141"}})"));
  EXPECT_FALSE(matches(spec, R"({"data":{"from":14155550100}})"));
  EXPECT_TRUE(matches(R"({"a":{"prefix":""}})", R"({"a":""})"));
  EXPECT_FALSE(matches(R"({"a":{"prefix":""}})", R"({"a":null})"));
}

TEST_F(filter_test, in) {
  constexpr std::string_view spec = R"({"status":{"in":["ringing","answered"]}})";
  EXPECT_TRUE(matches(spec, R"({"status":"ringing"})"));
  EXPECT_TRUE(matches(spec, R"({"status":"answered"})"));
  EXPECT_FALSE(matches(spec, R"({"status":"completed"})"));
  EXPECT_FALSE(matches(spec, R"({"state":"ringing"})"));
  EXPECT_TRUE(matches(R"({"n":{"in":[1,"1",true,null,2.5]}})", R"({"n":null})"));
  EXPECT_TRUE(matches(R"({"n":{"in":[1,"1",true,null,2.5]}})", R"({"n":2.5})"));
  EXPECT_FALSE(matches(R"({"n":{"in":[1,"1",true,null,2.5]}})", R"({"n":false})"));
}

TEST_F(filter_test, several_fields_are_and) {
  constexpr std::string_view spec =
      R"({"data.call_sid":"CA1","status":{"in":["ringing"]},"data.from":{"prefix":"+44"}})";
  EXPECT_TRUE(matches(spec, R"({"status":"ringing","data":{"call_sid":"CA1","from":"+4420"}})"));
  EXPECT_FALSE(matches(spec, R"({"status":"ringing","data":{"call_sid":"CA1","from":"+3320"}})"));
  EXPECT_FALSE(matches(spec, R"({"status":"ended","data":{"call_sid":"CA1","from":"+4420"}})"));
  EXPECT_FALSE(matches(spec, R"({"status":"ringing","data":{"from":"+4420"}})"));
}

TEST_F(filter_test, equality_is_by_type_and_value) {
  EXPECT_TRUE(matches(R"({"n":5})", R"({"n":5})"));
  EXPECT_FALSE(matches(R"({"n":5})", R"({"n":5.0})"));
  EXPECT_FALSE(matches(R"({"n":5})", R"({"n":"5"})"));
  EXPECT_TRUE(matches(R"({"n":5.0})", R"({"n":5.0})"));
  EXPECT_TRUE(matches(R"({"n":5.0})", R"({"n":50e-1})"));
  EXPECT_TRUE(matches(R"({"n":0.0})", R"({"n":-0.0})"));
  EXPECT_FALSE(matches(R"({"n":0})", R"({"n":-0.0})"));
  EXPECT_TRUE(matches(R"({"n":0})", R"({"n":-0})"));
  EXPECT_TRUE(matches(R"({"n":-9223372036854775808})", R"({"n":-9223372036854775808})"));
  EXPECT_TRUE(matches(R"({"n":18446744073709551615})", R"({"n":18446744073709551615})"));
  EXPECT_FALSE(matches(R"({"n":18446744073709551615})", R"({"n":-1})"));
  EXPECT_TRUE(matches(R"({"b":true})", R"({"b":true})"));
  EXPECT_FALSE(matches(R"({"b":true})", R"({"b":1})"));
  EXPECT_TRUE(matches(R"({"z":null})", R"({"z":null})"));
  EXPECT_FALSE(matches(R"({"z":null})", R"({})"));
  EXPECT_FALSE(matches(R"({"z":null})", R"({"z":0})"));
}

TEST_F(filter_test, strings_compare_unescaped) {
  // Escapes in the payload (the early-out is skipped when the payload holds a backslash).
  EXPECT_TRUE(matches(R"({"call_sid":"CA1"})", R"({"call\u005fsid":"CA\u0031"})"));
  EXPECT_TRUE(matches(R"({"k":"caf\u00e9"})", "{\"k\":\"caf\xc3\xa9\"}"));
  EXPECT_TRUE(matches("{\"k\":\"caf\xc3\xa9\"}", R"({"k":"caf\u00e9"})"));
  // A key or value that JSON must escape cannot appear in a payload without backslashes.
  EXPECT_TRUE(matches(R"({"a\"b":"x\ny"})", R"({"a\"b":"x\ny"})"));
  EXPECT_FALSE(matches(R"({"a\"b":"x"})", R"({"ab":"x"})"));
  EXPECT_TRUE(matches(R"({"a":{"prefix":"\t"}})", R"({"a":"\tb"})"));
  EXPECT_FALSE(matches(R"({"a":{"prefix":"\t"}})", R"({"a":"tb"})"));
  // The early-out is only a necessary condition: the needle may sit elsewhere.
  EXPECT_FALSE(matches(R"({"a":"b"})", R"({"x":"a","a":"c","y":"b"})"));
  EXPECT_TRUE(matches(R"({"a":"b"})", R"({"x":"a","a" : "b"})"));
}

TEST_F(filter_test, non_matching_payloads) {
  constexpr std::string_view spec = R"({"a":"x"})";
  EXPECT_FALSE(matches(spec, R"([{"a":"x"}])"));
  EXPECT_FALSE(matches(spec, R"("a")"));
  EXPECT_FALSE(matches(spec, R"({"a":"x")"));  // not JSON
  EXPECT_FALSE(matches(spec, ""));
  EXPECT_FALSE(matches(spec, std::string_view()));  // regression (fuzz): memchr on a null pointer
  EXPECT_FALSE(matches(spec, R"({"a":"x","b":1e400})"));
  const std::string deep = R"({"a":"x","b":)" + std::string(5000, '[') + std::string(5000, ']') + "}";
  EXPECT_FALSE(matches(spec, deep));
}

TEST_F(filter_test, empty_filter_matches_everything) {
  auto f = filter_spec::compile("{}");
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->empty());
  EXPECT_TRUE(f->matches("not json", cx));
  EXPECT_TRUE(f->matches("[1]", cx));
}

TEST_F(filter_test, duplicate_keys_and_arrays_in_paths) {
  EXPECT_TRUE(matches(R"({"a":"x"})", R"({"a":"x","a":"y"})"));
  EXPECT_FALSE(matches(R"({"a":"y"})", R"({"a":"x","a":"y"})"));
  EXPECT_TRUE(matches(R"({"items.1.sku":"B"})", R"({"items":[{"sku":"A"},{"sku":"B"}]})"));
  EXPECT_FALSE(matches(R"({"items.2.sku":"B"})", R"({"items":[{"sku":"A"},{"sku":"B"}]})"));
  EXPECT_TRUE(matches(R"({"items.0":7})", R"({"items":[7]})"));
  EXPECT_TRUE(matches(R"({"items.0":7})", R"({"items":{"0":7}})"));
}

TEST_F(filter_test, durable_filters_compile_to_the_same_conditions) {
  // The JSON of broker/durable/subscription_spec.h's filter.
  auto f = filter_spec::compile(R"({"call_sid":"CA1","from":{"prefix":"+44"},"n":7,"ok":true})");
  ASSERT_TRUE(f);
  ASSERT_EQ(f->conditions().size(), 4u);
  EXPECT_EQ(f->conditions()[0].how, filter_condition::match::equals);
  EXPECT_EQ(f->conditions()[0].values, std::vector<filter_value>{std::string("CA1")});
  EXPECT_EQ(f->conditions()[1].how, filter_condition::match::prefix);
  EXPECT_EQ(f->conditions()[2].values, std::vector<filter_value>{std::int64_t{7}});
  EXPECT_EQ(f->conditions()[3].values, std::vector<filter_value>{true});
  EXPECT_TRUE(f->matches(R"({"ok":true,"n":7,"from":"+4420","call_sid":"CA1"})", cx));
}

TEST_F(filter_test, to_json_round_trips) {
  constexpr std::string_view spec =
      R"({"b":"x\"\u00e9","a.c":{"prefix":"+1"},"n":{"in":[1,-2,18446744073709551615,2.5,true,null,"s"]},"z":null,"d":-0.0})";
  auto f = filter_spec::compile(spec);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->to_json(),
            "{\"b\":\"x\\\"\xc3\xa9\",\"a.c\":{\"prefix\":\"+1\"},\"n\":{\"in\":[1,-2,18446744073709551615,2."
            "5,true,null,"
            "\"s\"]},\"z\":null,\"d\":-0.0}");
  auto again = filter_spec::compile(f->to_json());
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *f);
}

TEST_F(filter_test, spec_errors) {
  EXPECT_EQ(spec_error("{"), R"(attribute "filter" is not JSON: missing a name for object member at byte 1)");
  EXPECT_EQ(spec_error(R"(["a"])"), R"(attribute "filter" must be an object)");
  EXPECT_EQ(spec_error(R"({"a":1,"a":2})"), R"(attribute "filter.a" appears more than once)");
  EXPECT_EQ(
      spec_error(R"({"a..b":1})"),
      R"(attribute "filter.a..b" holds an invalid field path: "a..b" has an empty segment at position 2)");
  EXPECT_EQ(spec_error(R"({"":1})"), R"(attribute "filter." holds an invalid field path: "" is empty)");
  constexpr std::string_view what =
      R"( must be a string, a number, a boolean, null, {"prefix": string} or {"in": [value, …]})";
  EXPECT_EQ(spec_error(R"({"a":[1]})"), R"(attribute "filter.a")" + std::string(what));
  EXPECT_EQ(spec_error(R"({"a":{}})"), R"(attribute "filter.a")" + std::string(what));
  EXPECT_EQ(spec_error(R"({"a":{"eq":1}})"), R"(attribute "filter.a")" + std::string(what));
  EXPECT_EQ(spec_error(R"({"a":{"prefix":"x","in":["x"]}})"), R"(attribute "filter.a")" + std::string(what));
  EXPECT_EQ(spec_error(R"({"a":{"prefix":1}})"), R"(attribute "filter.a.prefix" must be a string)");
  EXPECT_EQ(spec_error(R"({"a":{"in":[]}})"),
            R"(attribute "filter.a.in" must be a non-empty array of strings, numbers, booleans or null)");
  EXPECT_EQ(spec_error(R"({"a":{"in":"x"}})"),
            R"(attribute "filter.a.in" must be a non-empty array of strings, numbers, booleans or null)");
  EXPECT_EQ(spec_error(R"({"a":{"in":[{"b":1}]}})"),
            R"(attribute "filter.a.in" must be a non-empty array of strings, numbers, booleans or null)");
}

}  // namespace
}  // namespace switchboard::pipeline
