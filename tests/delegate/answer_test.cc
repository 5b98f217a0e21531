// interpret_answer, merge_objects and metadata merging: what each answer means, with exact reasons.
#include "broker/delegate/answer.h"

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace switchboard::delegate {
namespace {

constexpr std::size_t limit = 1 << 20;

std::string reason(int status, std::string_view body, std::size_t max = limit) {
  const answer a = interpret_answer(status, body, max);
  EXPECT_EQ(a.what, answer::kind::failure);
  return a.reason;
}

TEST(InterpretAnswerTest, ObjectWithoutMetadataPassesVerbatim) {
  const answer a = interpret_answer(200, R"({ "id" : 1, "nested": {"_switchboard": 1} })", limit);
  ASSERT_EQ(a.what, answer::kind::pass);
  EXPECT_EQ(a.payload, R"({ "id" : 1, "nested": {"_switchboard": 1} })");  // only top level is metadata
  EXPECT_TRUE(a.meta.empty());
  EXPECT_EQ(interpret_answer(201, "{}", limit).what, answer::kind::pass);
}

TEST(InterpretAnswerTest, MetadataIsParsedAndRemoved) {
  const answer a = interpret_answer(
      200,
      R"({"a":"\u00e9\n","_switchboard":{"route":false,"publish_to_parent":true,"webhook":["crm","audit"]},"b":[1.5,null]})",
      limit);
  ASSERT_EQ(a.what, answer::kind::pass) << a.reason;
  EXPECT_EQ(a.payload, "{\"a\":\"\xc3\xa9\\n\",\"b\":[1.5,null]}");
  EXPECT_EQ(a.meta.route, false);
  EXPECT_EQ(a.meta.publish_to_parent, true);
  EXPECT_EQ(a.meta.webhook, (std::vector<std::string>{"crm", "audit"}));
}

TEST(InterpretAnswerTest, WebhookFalseAndEmptyListBothMeanNone) {
  EXPECT_EQ(interpret_answer(200, R"({"_switchboard":{"webhook":false}})", limit).meta.webhook,
            std::vector<std::string>{});
  EXPECT_EQ(interpret_answer(200, R"({"_switchboard":{"webhook":[]}})", limit).meta.webhook,
            std::vector<std::string>{});
  EXPECT_EQ(interpret_answer(200, R"({"_switchboard":{}})", limit).payload, "{}");
}

TEST(InterpretAnswerTest, NoContentDrops) {
  EXPECT_EQ(interpret_answer(204, "", limit).what, answer::kind::drop);
  EXPECT_EQ(interpret_answer(204, "ignored", limit).what, answer::kind::drop);
}

TEST(InterpretAnswerTest, OtherStatusesFail) {
  EXPECT_EQ(reason(500, "{}"), "answered 500");
  EXPECT_EQ(reason(404, ""), "answered 404");
  EXPECT_EQ(reason(202, "{}"), "answered 202");
  EXPECT_EQ(reason(302, ""), "answered 302");
  EXPECT_EQ(reason(0, ""), "answered 0");
}

TEST(InterpretAnswerTest, BodiesThatAreNotJsonObjects) {
  EXPECT_EQ(reason(200, "hello"), "answered a body that is not a JSON object: invalid value at byte 0");
  EXPECT_EQ(reason(200, R"({"a":1,})"),
            "answered a body that is not a JSON object: missing a name for object member at byte 7");
  EXPECT_EQ(reason(200, ""), "answered a body that is not a JSON object: the document is empty at byte 0");
  EXPECT_EQ(reason(200, std::string(2000, '[')),
            "answered a body that is not a JSON object: nested deeper than 1024 levels at byte 1024");
  EXPECT_EQ(reason(200, "[]"), "answered a body that is not a JSON object: an array");
  EXPECT_EQ(reason(200, "\"x\""), "answered a body that is not a JSON object: a string");
  EXPECT_EQ(reason(200, "12"), "answered a body that is not a JSON object: a number");
  EXPECT_EQ(reason(200, "null"), "answered a body that is not a JSON object: null");
  EXPECT_EQ(reason(200, "true"), "answered a body that is not a JSON object: a boolean");
}

TEST(InterpretAnswerTest, BodyOverTheLimitFails) {
  EXPECT_EQ(reason(200, R"({"a":"0123456789"})", 10), "answered a body larger than 10 bytes");
  EXPECT_EQ(interpret_answer(200, R"({"a":1})", 7).what, answer::kind::pass);  // exactly the limit
  EXPECT_EQ(interpret_answer(200, R"({"a":1})", 0).what, answer::kind::pass);  // 0: no limit
}

TEST(InterpretAnswerTest, InvalidMetadataFailsWithTheMember) {
  EXPECT_EQ(reason(200, R"({"_switchboard":true})"),
            R"(answered invalid metadata: "_switchboard" must be an object)");
  EXPECT_EQ(reason(200, R"({"_switchboard":{},"_switchboard":{}})"),
            R"(answered invalid metadata: "_switchboard" appears more than once)");
  EXPECT_EQ(reason(200, R"({"_switchboard":{"webhooks":[]}})"),
            R"(answered invalid metadata: unknown member "_switchboard.webhooks")");
  EXPECT_EQ(reason(200, R"({"_switchboard":{"route":false,"route":true}})"),
            R"(answered invalid metadata: "_switchboard.route" appears more than once)");
  EXPECT_EQ(reason(200, R"({"_switchboard":{"route":0}})"),
            R"(answered invalid metadata: "_switchboard.route" must be a boolean)");
  EXPECT_EQ(reason(200, R"({"_switchboard":{"publish_to_parent":null}})"),
            R"(answered invalid metadata: "_switchboard.publish_to_parent" must be a boolean)");
  for (const char* bad : {R"(true)", R"("crm")", R"([""])", R"(["crm",1])", R"(null)"}) {
    EXPECT_EQ(
        reason(200, std::string(R"({"_switchboard":{"webhook":)") + bad + "}}"),
        R"(answered invalid metadata: "_switchboard.webhook" must be false or an array of non-empty strings)")
        << bad;
  }
  EXPECT_EQ(reason(200, "{\"_switchboard\":{\"a\\u0001\":1}}"),
            R"(answered invalid metadata: unknown member "_switchboard.a\x01")");
}

TEST(MergeObjectsTest, LaterMembersReplaceEarlierInPlace) {
  const std::vector<std::string_view> in = {R"({"a":1,"x":"first","n":{"deep":1}})",
                                            R"({"b":2,"x":"second"})", R"({"n":{"other":2}})"};
  EXPECT_EQ(merge_objects(in), R"({"a":1,"x":"second","n":{"other":2},"b":2})");  // shallow: n replaced whole
}

TEST(MergeObjectsTest, RepeatedKeyWithinOneObjectCountsAsLater) {
  const std::vector<std::string_view> in = {R"({"a":1,"a":2})"};
  EXPECT_EQ(merge_objects(in), R"({"a":2})");
}

TEST(MergeObjectsTest, EmptyListIsAnEmptyObjectAndNonObjectsAreNamed) {
  EXPECT_EQ(merge_objects({}), "{}");
  const std::vector<std::string_view> in = {"{}", "[1]"};
  EXPECT_EQ(merge_objects(in), std::unexpected(std::size_t{1}));
  const std::vector<std::string_view> broken = {"{"};
  EXPECT_EQ(merge_objects(broken), std::unexpected(std::size_t{0}));
}

TEST(MetadataMergeTest, LaterSetFieldsWin) {
  metadata m;
  m.route = false;
  m.webhook = std::vector<std::string>{"crm"};
  metadata later;
  later.webhook = std::vector<std::string>{};
  later.publish_to_parent = true;
  merge(m, later);
  EXPECT_EQ(m.route, false);
  EXPECT_EQ(m.webhook, std::vector<std::string>{});
  EXPECT_EQ(m.publish_to_parent, true);
}

}  // namespace
}  // namespace switchboard::delegate
