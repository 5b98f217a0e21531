#include "broker/pipeline/translate.h"

#include <string>

#include <gtest/gtest.h>

namespace switchboard::pipeline {
namespace {

class translate_test : public ::testing::Test {
 protected:
  // The output, or "error: <message>" (asserting the event error's code).
  std::string run(std::string_view spec, std::string_view payload) {
    auto t = translate_spec::compile(spec);
    EXPECT_TRUE(t) << spec << ": " << t.error().message;
    if (!t) return "spec error";
    auto out = t->apply(payload, cx);
    if (out) return std::string(*out);
    EXPECT_EQ(out.error().code, errc::invalid_event);
    return std::string("error: ").append(out.error().message);  // not "…" + s: g++ 12 -O3 false -Wrestrict
  }
  std::string spec_error(std::string_view spec) {
    auto t = translate_spec::compile(spec);
    EXPECT_FALSE(t) << "compiled: " << spec;
    if (t) return {};
    EXPECT_EQ(t.error().code, errc::invalid_spec);
    return t.error().message;
  }
  context cx;
};

TEST_F(translate_test, the_issue_example) {
  EXPECT_EQ(
      run(R"({"rename":{"call_sid":"sid"},"drop":["debug"],"set":{"v":2},"copy":{"caller":"from.number"}})",
          R"({"call_sid":"CA1","debug":{"x":1},"from":{"number":"+1415"},"status":"ringing"})"),
      R"({"sid":"CA1","from":{"number":"+1415"},"status":"ringing","caller":"+1415","v":2})");
}

// The examples of docs/PIPELINE.md.
TEST_F(translate_test, documented_examples) {
  constexpr std::string_view in =
      R"({"call_sid":"CA1","debug":{"x":1},"from":{"number":"+1415"},"status":"ringing"})";
  EXPECT_EQ(run(R"({"template":{"id":"{{call_sid}}","who":{"from":"{{from.number}}"}}})", in),
            R"({"id":"CA1","who":{"from":"+1415"}})");
  EXPECT_EQ(run(R"({"rename":{"from.number":"caller.number"}})", in),
            R"({"call_sid":"CA1","debug":{"x":1},"from":{},"status":"ringing","caller":{"number":"+1415"}})");
  EXPECT_EQ(run(R"({"set":{"status.code":1}})", in), in);
  EXPECT_EQ(run(R"({"template":{"a":"{{nope}}","l":["{{nope}}","{{status}}"]}})", in),
            R"({"l":[null,"ringing"]})");
}

TEST_F(translate_test, empty_spec_minifies) {
  EXPECT_EQ(run("{}", " { \"a\" : [ 1 , 2.50 , \"x\" ] , \"b\" : { } } "), R"({"a":[1,2.5,"x"],"b":{}})");
  EXPECT_EQ(run("{}", "{}"), "{}");
}

TEST_F(translate_test, rename_top_level_keeps_position) {
  EXPECT_EQ(run(R"({"rename":{"b":"x"}})", R"({"a":1,"b":2,"c":3})"), R"({"a":1,"x":2,"c":3})");
  // A member already named like the target is replaced by the renamed one.
  EXPECT_EQ(run(R"({"rename":{"c":"a"}})", R"({"a":1,"b":2,"c":3})"), R"({"b":2,"a":3})");
  // Missing source: nothing happens.
  EXPECT_EQ(run(R"({"rename":{"zz":"a"}})", R"({"a":1})"), R"({"a":1})");
  // To itself: nothing happens.
  EXPECT_EQ(run(R"({"rename":{"a":"a"}})", R"({"a":1})"), R"({"a":1})");
}

TEST_F(translate_test, rename_dotted) {
  EXPECT_EQ(run(R"({"rename":{"data.from":"data.caller"}})", R"({"data":{"from":"+1","to":"+2"},"z":0})"),
            R"({"data":{"caller":"+1","to":"+2"},"z":0})");
  // Across objects: removed from the source, appended at the target (parents created).
  EXPECT_EQ(run(R"({"rename":{"data.from":"caller.number"}})", R"({"data":{"from":"+1","to":"+2"},"z":0})"),
            R"({"data":{"to":"+2"},"z":0,"caller":{"number":"+1"}})");
  EXPECT_EQ(run(R"({"rename":{"from":"data.from"}})", R"({"from":"+1","data":{"to":"+2"}})"),
            R"({"data":{"to":"+2","from":"+1"}})");
  // Existing target replaced in place.
  EXPECT_EQ(run(R"({"rename":{"from":"data.to"}})", R"({"from":"+1","data":{"to":"+2","x":1}})"),
            R"({"data":{"to":"+1","x":1}})");
  // Out of its parent: a.b -> a replaces a with its old member b.
  EXPECT_EQ(run(R"({"rename":{"a.b":"a"}})", R"({"a":{"b":{"c":1},"d":2},"e":3})"), R"({"a":{"c":1},"e":3})");
  // Through a non-object: skipped.
  EXPECT_EQ(run(R"({"rename":{"a.b":"x"}})", R"({"a":"str"})"), R"({"a":"str"})");
  EXPECT_EQ(run(R"({"rename":{"a":"s.x"}})", R"({"a":1,"s":"str"})"), R"({"a":1,"s":"str"})");
  // Write paths do not enter arrays.
  EXPECT_EQ(run(R"({"rename":{"items.0":"first"}})", R"({"items":[1,2]})"), R"({"items":[1,2]})");
}

TEST_F(translate_test, drop) {
  EXPECT_EQ(run(R"({"drop":["debug","data.raw","missing","data.none.deeper"]})",
                R"({"debug":true,"data":{"raw":"..","keep":1},"x":[]})"),
            R"({"data":{"keep":1},"x":[]})");
  EXPECT_EQ(run(R"({"drop":["a","b"]})", R"({"a":1,"b":2})"), "{}");
  EXPECT_EQ(run(R"({"drop":["s.x","items.0"]})", R"({"s":"str","items":[1]})"), R"({"s":"str","items":[1]})");
}

TEST_F(translate_test, set_constants_of_every_type) {
  EXPECT_EQ(run(R"({"set":{"v":2,"s":"x\"y","n":null,"b":false,"o":{"k":[1,{"z":-1.5e-7}]},"a":[],"f":1.0}})",
                "{}"),
            R"({"v":2,"s":"x\"y","n":null,"b":false,"o":{"k":[1,{"z":-1.5e-7}]},"a":[],"f":1.0})");
  // Existing members are replaced in place; new ones appended; parents created.
  EXPECT_EQ(run(R"({"set":{"a":"new","meta.src":"pbx","meta.v":1}})", R"({"a":1,"b":2})"),
            R"({"a":"new","b":2,"meta":{"src":"pbx","v":1}})");
  EXPECT_EQ(run(R"({"set":{"data.x.y":true}})", R"({"data":{"w":0}})"), R"({"data":{"w":0,"x":{"y":true}}})");
  // A parent that is not an object: skipped (never overwritten).
  EXPECT_EQ(run(R"({"set":{"a.b":1}})", R"({"a":[0]})"), R"({"a":[0]})");
  // Sequential within set: the second entry meets the first's number.
  EXPECT_EQ(run(R"({"set":{"a":1,"a.b":2}})", "{}"), R"({"a":1})");
  EXPECT_EQ(run(R"({"set":{"a.b":2,"a":1}})", "{}"), R"({"a":1})");
}

TEST_F(translate_test, copy) {
  EXPECT_EQ(
      run(R"({"copy":{"caller":"from.number","first":"items.0","deep":"items.1.k"}})",
          R"({"from":{"number":"+1"},"items":[{"a":1},{"k":[true]}]})"),
      R"({"from":{"number":"+1"},"items":[{"a":1},{"k":[true]}],"caller":"+1","first":{"a":1},"deep":[true]})");
  // Missing source: skipped.
  EXPECT_EQ(run(R"({"copy":{"x":"nope.nope","y":"items.5"}})", R"({"items":[]})"), R"({"items":[]})");
  // Into a nested new target.
  EXPECT_EQ(run(R"({"copy":{"a.b.c":"v"}})", R"({"v":1})"), R"({"v":1,"a":{"b":{"c":1}}})");
  // Into itself: the old value is copied.
  EXPECT_EQ(run(R"({"copy":{"a.self":"a"}})", R"({"a":{"x":1}})"), R"({"a":{"x":1,"self":{"x":1}}})");
  // A later copy sees an earlier one, and copies do not share: changing one leaves the other.
  EXPECT_EQ(run(R"({"copy":{"b":"a","b.y":"n","c":"b"},"set":{"b.z":3}})", R"({"a":{"x":1},"n":0})"),
            R"({"a":{"x":1},"n":0,"b":{"x":1,"y":0,"z":3},"c":{"x":1,"y":0}})");
}

TEST_F(translate_test, operations_apply_in_the_documented_order) {
  // copy (reads the input), rename (moves the copy), drop (removes the renamed), set (re-adds).
  EXPECT_EQ(
      run(R"({"set":{"gone":"back"},"drop":["gone"],"rename":{"tmp":"gone","a":"b"},"copy":{"tmp":"a"}})",
          R"({"a":1})"),
      R"({"b":1,"gone":"back"})");
  // The template reads the result of the other operations.
  EXPECT_EQ(
      run(R"({"template":{"id":"{{sid}}","v":"{{v}}","old":"{{call_sid}}"},"rename":{"call_sid":"sid"},"set":{"v":2}})",
          R"({"call_sid":"CA1"})"),
      R"({"id":"CA1","v":2})");
}

TEST_F(translate_test, template_projects) {
  EXPECT_EQ(run(R"({"template":{"id":"{{call_sid}}","who":{"from":"{{from.number}}"}}})",
                R"({"call_sid":"CA1","from":{"number":"+1415","name":"x"},"other":1})"),
            R"({"id":"CA1","who":{"from":"+1415"}})");
  // Literals of every kind; arrays; spaces inside braces; whole values (objects) placeholders.
  EXPECT_EQ(
      run(R"({"template":{"k":"v","n":1.5,"z":null,"arr":["{{ a }}","lit",{"x":"{{b}}"}],"all":"{{o}}","t":true}})",
          R"({"a":1,"b":"B","o":{"p":[1]}})"),
      R"({"k":"v","n":1.5,"z":null,"arr":[1,"lit",{"x":"B"}],"all":{"p":[1]},"t":true})");
  // Missing: object members left out, array items null.
  EXPECT_EQ(
      run(R"({"template":{"a":"{{nope}}","b":["{{nope}}","{{x}}"],"c":{"d":"{{nope}}"}}})", R"({"x":0})"),
      R"({"b":[null,0],"c":{}})");
  // Not placeholders: written as they are.
  EXPECT_EQ(
      run(R"({"template":{"a":"{{x}} and more","b":"{x}","c":"{{","d":"{{}","e":"x{{x}}"}})", R"({"x":0})"),
      R"({"a":"{{x}} and more","b":"{x}","c":"{{","d":"{{}","e":"x{{x}}"})");
  // Array indexes in placeholders.
  EXPECT_EQ(run(R"({"template":{"first":"{{items.0.sku}}","second":"{{items.1}}"}})",
                R"({"items":[{"sku":"A"},"B"]})"),
            R"({"first":"A","second":"B"})");
  EXPECT_EQ(run(R"({"template":{}})", R"({"a":1})"), "{}");
}

TEST_F(translate_test, unicode_and_escapes) {
  // Escapes are decoded, UTF-8 written as is, only required escapes written.
  EXPECT_EQ(run("{}", R"({"caf\u00e9":"\u00e9\/\t\"\\\u0001\ud83d\ude00"})"),
            "{\"caf\xc3\xa9\":\"\xc3\xa9/\\t\\\"\\\\\\u0001\xf0\x9f\x98\x80\"}");
  // Paths match unescaped keys; new keys from the spec are written escaped as needed.
  EXPECT_EQ(run(R"({"rename":{"caf\u00e9":"a\"b"},"set":{"\u00fc.\n":1}})", "{\"caf\xc3\xa9\":1}"),
            "{\"a\\\"b\":1,\"\xc3\xbc\":{\"\\n\":1}}");
  EXPECT_EQ(run(R"({"copy":{"x":"call_sid"}})", R"({"call\u005fsid":"CA\u0031"})"),
            R"({"call_sid":"CA1","x":"CA1"})");
  // An empty-string key and a key with NUL.
  EXPECT_EQ(run(R"({"rename":{"a\u0000b":"c"}})", R"({"":1,"a\u0000b":2})"), R"({"":1,"c":2})");
}

TEST_F(translate_test, numbers) {
  EXPECT_EQ(
      run("{}",
          R"({"a":-0,"b":-0.0,"c":0.1,"d":1E2,"e":1e300,"f":18446744073709551615,"g":-9223372036854775808,"h":1e-400,"i":5e-324})"),
      R"({"a":0,"b":-0.0,"c":0.1,"d":100.0,"e":1e300,"f":18446744073709551615,"g":-9223372036854775808,"h":0.0,"i":5e-324})");
  EXPECT_EQ(run("{}", R"({"a":1e400})"),
            "error: payload is not JSON: number too big to be stored in double at byte 5");
  EXPECT_EQ(run("{}", R"({"a":123456789012345678901234567890})"),
            "error: payload is not JSON: Problem while parsing a number");
}

TEST_F(translate_test, duplicate_keys) {
  // Untouched: kept. A path names the first.
  EXPECT_EQ(run(R"({"copy":{"x":"a"}})", R"({"a":1,"a":2})"), R"({"a":1,"a":2,"x":1})");
  // Written or dropped: the other duplicates go.
  EXPECT_EQ(run(R"({"set":{"a":0}})", R"({"a":1,"b":0,"a":2})"), R"({"a":0,"b":0})");
  EXPECT_EQ(run(R"({"drop":["a"]})", R"({"a":1,"b":0,"a":2})"), R"({"b":0})");
  EXPECT_EQ(run(R"({"rename":{"a":"c"}})", R"({"a":1,"b":0,"a":2})"), R"({"c":1,"b":0})");
  EXPECT_EQ(run(R"({"rename":{"a":"b"}})", R"({"b":0,"a":1,"b":9})"), R"({"b":1})");
  // Untouched nested duplicates stay; touched nested objects lose the written key's duplicates.
  EXPECT_EQ(run(R"({"set":{"o.k":3}})", R"({"o":{"k":1,"k":2},"p":{"k":1,"k":2}})"),
            R"({"o":{"k":3},"p":{"k":1,"k":2}})");
}

TEST_F(translate_test, payload_must_be_an_object) {
  EXPECT_EQ(run("{}", "[1]"), "error: payload must be a JSON object, not an array");
  EXPECT_EQ(run(R"({"template":{"a":"{{0}}"}})", "[1]"),
            "error: payload must be a JSON object, not an array");
  EXPECT_EQ(run("{}", "null"), "error: payload must be a JSON object, not null");
  EXPECT_EQ(run("{}", R"("s")"), "error: payload must be a JSON object, not a string");
  EXPECT_EQ(run("{}", "1.5"), "error: payload must be a JSON object, not a number");
  EXPECT_EQ(run("{}", "{"), "error: payload is not JSON: missing a name for object member at byte 1");
  EXPECT_EQ(run("{}", ""), "error: payload is not JSON: the document is empty at byte 0");
  EXPECT_EQ(run("{}", std::string_view()), "error: payload is not JSON: the document is empty at byte 0");
}

TEST_F(translate_test, output_limits) {
  // Each copy of `a` into itself doubles it.
  std::string spec = R"({"copy":{)";
  for (int i = 0; i < 30; ++i) {
    if (i > 0) spec += ",";
    spec += "\"a.c";
    spec += std::to_string(i);
    spec += "\":\"a\"";
  }
  spec += "}}";
  std::string payload = R"({"a":{"x":")";
  payload.append(100, 'y').append(R"("}})");
  EXPECT_EQ(run(spec, payload), "error: translated payload changes more than 16384 objects");

  auto t = translate_spec::compile(R"({"copy":{"b":"a","c":"a","d":"a"}})");
  ASSERT_TRUE(t);
  auto small = t->apply(payload, cx, 300);
  ASSERT_FALSE(small);
  EXPECT_EQ(small.error().message, "translated payload exceeds 300 bytes");
  EXPECT_TRUE(t->apply(payload, cx, 1000));

  // Depth: a payload 1024 deep (simdjson's limit) is fine; moving it one level down is not.
  std::string deep = "{\"a\":";
  deep.append(1023, '[').append(1023, ']').append("}");
  EXPECT_EQ(run("{}", deep), deep);
  EXPECT_EQ(run(R"({"rename":{"a":"b.c"}})", deep),
            "error: translated payload would be nested deeper than 1024 levels");
  EXPECT_EQ(run(R"({"template":{"x":{"y":"{{a}}"}}})", deep),
            "error: translated payload would be nested deeper than 1024 levels");
}

TEST_F(translate_test, output_may_feed_the_next_apply_on_the_same_context) {
  auto t = translate_spec::compile(R"({"rename":{"n":"m"},"set":{"n":1}})");
  ASSERT_TRUE(t);
  std::string_view p = R"({"n":1,"k":"v"})";
  for (int i = 0; i < 3; ++i) {
    auto out = t->apply(p, cx);
    ASSERT_TRUE(out) << out.error().message;
    p = *out;  // a view into cx
  }
  EXPECT_EQ(p, R"({"k":"v","m":1,"n":1})");
}

TEST_F(translate_test, spec_json_is_minified) {
  auto t = translate_spec::compile(R"( { "set" : { "v" : 2 } , "drop" : [ "x" ] } )");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->spec_json(), R"({"set":{"v":2},"drop":["x"]})");
}

TEST_F(translate_test, spec_errors) {
  EXPECT_EQ(spec_error("{"),
            R"(attribute "translate" is not JSON: missing a name for object member at byte 1)");
  EXPECT_EQ(spec_error("[]"), R"(attribute "translate" must be an object)");
  EXPECT_EQ(spec_error(R"({"move":{}})"),
            R"(unknown operation "translate.move" (expected copy, rename, drop, set, template))");
  EXPECT_EQ(spec_error(R"({"drop":[],"drop":[]})"), R"(attribute "translate.drop" appears more than once)");
  EXPECT_EQ(spec_error(R"({"rename":["a"]})"),
            R"(attribute "translate.rename" must be an object of source paths to target paths)");
  EXPECT_EQ(spec_error(R"({"copy":"a"})"),
            R"(attribute "translate.copy" must be an object of target paths to source paths)");
  EXPECT_EQ(spec_error(R"({"rename":{"a":1}})"), R"(attribute "translate.rename.a" must be a string)");
  EXPECT_EQ(spec_error(R"({"copy":{"a":null}})"), R"(attribute "translate.copy.a" must be a string)");
  EXPECT_EQ(spec_error(R"({"rename":{"a":"b","a":"c"}})"),
            R"(attribute "translate.rename.a" appears more than once)");
  EXPECT_EQ(spec_error(R"({"rename":{"a":"a.b"}})"),
            R"(attribute "translate.rename.a" moves a field inside itself (to "a.b"))");
  EXPECT_EQ(
      spec_error(R"({"rename":{"a..b":"c"}})"),
      R"(attribute "translate.rename.a..b" holds an invalid field path: "a..b" has an empty segment at position 2)");
  EXPECT_EQ(spec_error(R"({"rename":{"a":""}})"),
            R"(attribute "translate.rename.a" holds an invalid field path: "" is empty)");
  EXPECT_EQ(spec_error(R"({"drop":"a"})"), R"(attribute "translate.drop" must be an array of field paths)");
  EXPECT_EQ(spec_error(R"({"drop":["a",{}]})"), R"(attribute "translate.drop[1]" must be a string)");
  EXPECT_EQ(
      spec_error(R"({"drop":["a."]})"),
      R"(attribute "translate.drop[0]" holds an invalid field path: "a." has an empty segment at position 2)");
  EXPECT_EQ(spec_error(R"({"set":[1]})"),
            R"(attribute "translate.set" must be an object of target paths to values)");
  EXPECT_EQ(spec_error(R"({"set":{"a":1,"a":2}})"), R"(attribute "translate.set.a" appears more than once)");
  EXPECT_EQ(spec_error(R"({"template":"{{a}}"})"), R"(attribute "translate.template" must be an object)");
  EXPECT_EQ(spec_error(R"({"template":{"who":{"from":"{{ }}"}}})"),
            R"(attribute "translate.template.who.from" holds an invalid field path: "" is empty)");
  EXPECT_EQ(
      spec_error(R"({"template":{"l":["x","{{a..b}}"]}})"),
      R"(attribute "translate.template.l[1]" holds an invalid field path: "a..b" has an empty segment at position 2)");
  EXPECT_EQ(spec_error(R"({"template":{"a":1,"a":2}})"),
            R"(attribute "translate.template.a" appears more than once)");
  auto named = translate_spec::compile("1", "channels.acme.translate");
  ASSERT_FALSE(named);
  EXPECT_EQ(named.error().message, R"(attribute "channels.acme.translate" must be an object)");
}

}  // namespace
}  // namespace switchboard::pipeline
