// SUB options (broker/transport/sub_options.cc): each refusal with the exact message a client sees.
#include "broker/transport/sub_options.h"

#include <gtest/gtest.h>

namespace switchboard::transport {
namespace {

class sub_options_test : public ::testing::Test {
 protected:
  std::expected<sub_options, std::string> parse(std::string_view text) {
    return parse_sub_options(_parser, text, overflow_policy::disconnect);
  }
  simdjson::ondemand::parser _parser;
};

TEST_F(sub_options_test, empty_means_defaults) {
  auto o = parse("  ");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->policy, overflow_policy::disconnect);
  EXPECT_FALSE(o->policy_explicit);
  EXPECT_TRUE(o->durable.empty());
}

TEST_F(sub_options_test, durable_with_spec_members_keeps_their_raw_json) {
  auto o = parse(R"({"durable":"billing","ack":{"policy":"at_least_once"},"start":"all"})");
  ASSERT_TRUE(o) << o.error();
  EXPECT_EQ(o->durable, "billing");
  ASSERT_EQ(o->spec_members.size(), 2u);
  EXPECT_EQ(o->spec_members[0].second, R"({"policy":"at_least_once"})");
  EXPECT_EQ(durable_spec_json(*o, "acme.>"),
            R"({"name":"billing","pattern":"acme.>","ack":{"policy":"at_least_once"},"start":"all"})");
}

TEST_F(sub_options_test, refusals_name_the_problem) {
  EXPECT_EQ(parse("{").error(), "options are not valid JSON");
  EXPECT_EQ(parse("[1]").error(), "options must be a JSON object");
  EXPECT_EQ(parse(R"({"bogus":1})").error(), "unknown option \"bogus\"");
  EXPECT_EQ(parse(R"({"slow_consumer":1})").error(), "option slow_consumer must be a string");
  EXPECT_EQ(parse(R"({"slow_consumer":"explode"})").error(),
            "option slow_consumer must be \"disconnect\" or \"drop_oldest\", not \"explode\"");
  EXPECT_EQ(parse(R"({"slow_consumer":"drop_oldest","slow_consumer":"disconnect"})").error(),
            "option \"slow_consumer\" is given twice");
  EXPECT_EQ(parse(R"({"durable":""})").error(), "option durable must be a non-empty string");
  EXPECT_EQ(parse(R"({"start":"all"})").error(), "option \"start\" needs option durable");
}

TEST_F(sub_options_test, deeply_nested_value_is_refused_not_recursed) {
  const std::string deep = R"({"durable":"d","filter":)" + std::string(100000, '[') + "}";
  auto o = parse(deep);
  ASSERT_FALSE(o);
  EXPECT_EQ(o.error(), "options are not valid JSON");
}

TEST_F(sub_options_test, spill_spec_starts_at_the_first_removed_seq) {
  EXPECT_EQ(spill_spec_json("spill-1-2", "a.b", 42),
            R"({"name":"spill-1-2","pattern":"a.b","start":"seq:42","ack":{"policy":"at_least_once",)"
            R"("ack_wait_ms":3600000,"max_deliveries":1000000}})");
}

}  // namespace
}  // namespace switchboard::transport
