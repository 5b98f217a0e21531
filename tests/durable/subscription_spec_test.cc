#include "broker/durable/subscription_spec.h"

#include <string>

#include <gtest/gtest.h>

namespace switchboard::durable {
namespace {

spec_error error_of(std::string_view json) {
  auto r = parse_spec(json);
  EXPECT_FALSE(r) << "parsed: " << json;
  return r ? spec_error{} : r.error();
}

spec_error invalid(std::string message) { return spec_error{422, "invalid_attribute", std::move(message)}; }

TEST(subscription_spec_test, parses_the_full_form) {
  auto spec = parse_spec(
      R"({"name":"billing","pattern":"acme.calls.>","filter":{"call_sid":"CA1","from":{"prefix":"+44"},"n":7,"ok":true},)"
      R"("ack":{"policy":"at_least_once","ack_wait_ms":500,"max_deliveries":3,"max_ack_pending":10},"start":"all"})");
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->name, "billing");
  EXPECT_EQ(spec->pattern, "acme.calls.>");
  ASSERT_EQ(spec->filter.size(), 4u);
  EXPECT_EQ(spec->filter[0],
            (field_condition{"call_sid", field_condition::match::equals, std::string("CA1")}));
  EXPECT_EQ(spec->filter[1], (field_condition{"from", field_condition::match::prefix, std::string("+44")}));
  EXPECT_EQ(spec->filter[2], (field_condition{"n", field_condition::match::equals, std::int64_t{7}}));
  EXPECT_EQ(spec->filter[3], (field_condition{"ok", field_condition::match::equals, true}));
  EXPECT_EQ(spec->ack, (ack_options{ack_policy::at_least_once, 500, 3, 10}));
  EXPECT_EQ(spec->start.kind, start_position::from::all);
  EXPECT_EQ(
      spec_to_json(*spec),
      R"({"name":"billing","pattern":"acme.calls.>","filter":{"call_sid":"CA1","from":{"prefix":"+44"},"n":7,)"
      R"("ok":true},"ack":{"policy":"at_least_once","ack_wait_ms":500,"max_deliveries":3,"max_ack_pending":10},)"
      R"("start":"all"})");
  EXPECT_EQ(parse_spec(spec_to_json(*spec)), spec);
}

TEST(subscription_spec_test, defaults) {
  auto spec = parse_spec(R"({"name":"a_b-9","pattern":"acme.*"})");
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_TRUE(spec->filter.empty());
  EXPECT_EQ(spec->ack, (ack_options{ack_policy::none, 30000, 5, 1000}));
  EXPECT_EQ(spec->start.kind, start_position::from::new_events);
  EXPECT_EQ(spec_to_json(*spec),
            R"({"name":"a_b-9","pattern":"acme.*","filter":{},"ack":{"policy":"none","ack_wait_ms":30000,)"
            R"("max_deliveries":5,"max_ack_pending":1000},"start":"new"})");
  subscription_spec built;
  built.name = "a_b-9";
  built.pattern = "acme.*";
  EXPECT_EQ(*spec, built);
}

TEST(subscription_spec_test, start_positions) {
  auto seq = parse_start("seq:42");
  ASSERT_TRUE(seq);
  EXPECT_EQ(seq->kind, start_position::from::seq);
  EXPECT_EQ(seq->seq, 42u);
  auto t = parse_start("time:2024-05-01T12:00:00Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->kind, start_position::from::time);
  EXPECT_EQ(t->time_ns, 1714564800ull * 1'000'000'000);
  auto offset = parse_start("time:2024-05-01T12:00:00.5+02:00");
  ASSERT_TRUE(offset);
  EXPECT_EQ(offset->time_ns, (1714564800ull - 7200) * 1'000'000'000 + 500'000'000);
  EXPECT_EQ(offset->text, "time:2024-05-01T12:00:00.5+02:00");
  const auto bad = invalid(R"(attribute "start" must be one of new, all, seq:<N>, time:<RFC3339>, or a position {"epoch": "<hex>", "seq": N})");
  for (const char* text : {"yesterday", "seq:0", "seq:", "seq:-1", "seq:1x", "time:2024-13-01T00:00:00Z",
                           "time:2023-02-29T00:00:00Z", "time:2024-05-01T12:00:00", "time:2024-05-01"}) {
    auto r = parse_start(text);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error(), bad) << text;
  }
}

TEST(subscription_spec_test, rejects_bad_documents_with_exact_errors) {
  auto broken = error_of("{");
  EXPECT_EQ(broken.http_status, 400);
  EXPECT_EQ(broken.code, "invalid_json");
  EXPECT_TRUE(broken.message.starts_with("invalid JSON: ")) << broken.message;

  EXPECT_EQ(error_of("[]"), (spec_error{400, "invalid_json", "subscription must be a JSON object"}));
  EXPECT_EQ(error_of(R"({"pattern":"a.>"})"), invalid(R"(attribute "name" is required)"));
  EXPECT_EQ(error_of(R"({"name":"x"})"), invalid(R"(attribute "pattern" is required)"));
  const auto bad_name = invalid(R"x(attribute "name" must be 1 to 128 characters of A-Z, a-z, 0-9, _ and - (optionally TENANT/NAME))x");
  EXPECT_EQ(error_of(R"({"name":"bad name","pattern":"a"})"), bad_name);
  EXPECT_EQ(error_of(R"({"name":"","pattern":"a"})"), bad_name);
  EXPECT_EQ(error_of(R"({"name":7,"pattern":"a"})"), bad_name);
  EXPECT_EQ(error_of(R"({"name":")" + std::string(129, 'n') + R"(","pattern":"a"})"), bad_name);
  EXPECT_TRUE(parse_spec(R"({"name":")" + std::string(128, 'n') + R"(","pattern":"a"})"));
  EXPECT_EQ(error_of(R"({"name":"x","pattern":"a.>.b"})"),
            (spec_error{422, "invalid_pattern", R"(pattern "a.>.b": '>' must be the last token)"}));
  EXPECT_EQ(error_of(R"({"name":"x","pattern":3})"), invalid(R"(attribute "pattern" must be a string)"));
  EXPECT_EQ(error_of(R"({"name":"x","pattern":"a","color":1})"),
            (spec_error{422, "unknown_attribute", R"(unknown attribute "color")"}));
  EXPECT_EQ(error_of(R"({"name":"x","pattern":"a","ack":{"retries":1}})"),
            (spec_error{422, "unknown_attribute", R"(unknown attribute "ack.retries")"}));
  EXPECT_EQ(error_of(R"({"name":"x","name":"y","pattern":"a"})"),
            invalid(R"(attribute "name" appears more than once)"));
  EXPECT_EQ(error_of(R"({"name":"x","pattern":"a","ack":"none"})"),
            invalid(R"(attribute "ack" must be an object)"));
  EXPECT_EQ(error_of(R"({"name":"x","pattern":"a","ack":{"policy":"sometimes"}})"),
            invalid(R"(attribute "ack.policy" must be one of none, at_least_once)"));
  EXPECT_EQ(error_of(R"({"name":"x","pattern":"a","ack":{"ack_wait_ms":0}})"),
            invalid(R"(attribute "ack.ack_wait_ms" must be a positive integer)"));
  EXPECT_EQ(error_of(R"({"name":"x","pattern":"a","ack":{"max_deliveries":-1}})"),
            invalid(R"(attribute "ack.max_deliveries" must be a positive integer)"));
  EXPECT_EQ(error_of(R"({"name":"x","pattern":"a","ack":{"max_ack_pending":4294967296}})"),
            invalid(R"(attribute "ack.max_ack_pending" must be a positive integer)"));
  EXPECT_EQ(error_of(R"({"name":"x","pattern":"a","start":"seq:0"})"),
            invalid(R"(attribute "start" must be one of new, all, seq:<N>, time:<RFC3339>, or a position {"epoch": "<hex>", "seq": N})"));
  EXPECT_EQ(error_of(R"({"name":"x","pattern":"a","start":5})"),
            invalid(R"(attribute "start" must be one of new, all, seq:<N>, time:<RFC3339>, or a position {"epoch": "<hex>", "seq": N})"));
  // Positions (issue 12): {"epoch": hex string, "seq": N}, only on a channel.
  const auto bad_start = invalid(std::string(R"(attribute "start" must be one of new, all, seq:<N>, time:<RFC3339>, )") +
                                 R"(or a position {"epoch": "<hex>", "seq": N})");
  for (const char* start : {R"({"epoch":"00ff","seq":-1})", R"({"epoch":255,"seq":1})", R"({"epoch":"xyz","seq":1})",
                            R"({"epoch":"00ff"})", R"({"epoch":"00ff","seq":1,"x":1})", R"({"epoch":"","seq":1})",
                            R"({"epoch":"00000000000000fff","seq":1})"}) {
    EXPECT_EQ(error_of(std::string(R"({"name":"x","pattern":"a","start":)") + start + "}"), bad_start) << start;
  }
  EXPECT_EQ(error_of(R"({"name":"x","pattern":"a.>","start":{"epoch":"00ff","seq":3}})"),
            invalid(R"(attribute "start" is a position, which names one channel's history: the pattern must be a channel name)"));
  auto pos = parse_spec(R"({"name":"x","pattern":"a.b","start":{"seq":3,"epoch":"00FF"}})");
  ASSERT_TRUE(pos) << pos.error().message;
  EXPECT_EQ(pos->start.kind, start_position::from::position);
  EXPECT_EQ(pos->start.epoch, 255u);
  EXPECT_EQ(pos->start.seq, 3u);
  EXPECT_NE(spec_to_json(*pos).find(R"("start":{"epoch":"00000000000000ff","seq":3})"), std::string::npos);
  EXPECT_EQ(parse_spec(spec_to_json(*pos)), *pos);
  EXPECT_EQ(error_of(R"({"name":"x","pattern":"a","filter":[]})"),
            invalid(R"(attribute "filter" must be an object)"));
  const std::string filter_hint = R"( must be a string, an integer, a boolean or {"prefix": string})";
  EXPECT_EQ(error_of(R"({"name":"x","pattern":"a","filter":{"x":1.5}})"),
            invalid(R"(attribute "filter.x")" + filter_hint));
  EXPECT_EQ(error_of(R"({"name":"x","pattern":"a","filter":{"x":{"prefix":1}}})"),
            invalid(R"(attribute "filter.x")" + filter_hint));
  EXPECT_EQ(error_of(R"({"name":"x","pattern":"a","filter":{"x":{"suffix":"a"}}})"),
            invalid(R"(attribute "filter.x")" + filter_hint));
  EXPECT_EQ(error_of(R"({"name":"x","pattern":"a","filter":{"x":null}})"),
            invalid(R"(attribute "filter.x")" + filter_hint));
  EXPECT_EQ(error_of(R"({"name":"x","pattern":"a","filter":{"x":"1","x":"2"}})"),
            invalid(R"(attribute "filter.x" appears more than once)"));
  // The first problem in document order wins; required members are checked last.
  EXPECT_EQ(error_of(R"({"ack":{"policy":1},"start":"never"})"),
            invalid(R"(attribute "ack.policy" must be one of none, at_least_once)"));
}

}  // namespace
}  // namespace switchboard::durable
