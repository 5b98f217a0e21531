#include "broker/pipeline/pipeline.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace switchboard::pipeline {
namespace {

class pipeline_test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto v = validate_spec::compile(R"({"required":{"call_sid":"string"}})");
    ASSERT_TRUE(v);
    stages.validate = *v;
    auto t = translate_spec::compile(R"({"rename":{"call_sid":"sid"},"set":{"v":2}})");
    ASSERT_TRUE(t);
    stages.translate = *t;
  }
  void order(std::string_view json) {
    auto o = stage_order::from_json(json);
    ASSERT_TRUE(o) << o.error().message;
    stages.order = *o;
  }
  // Runs to the end the way the router will, recording "<hook>:<payload>" at each hook.
  std::vector<std::string> run_all(std::string_view payload) {
    std::vector<std::string> seen;
    std::string held;
    auto step = run_stages(stages, payload, 0, cx);
    while (step && step->hook) {
      held = std::string(step->payload);  // a hook copies what it keeps
      seen.push_back(std::string(to_string(*step->hook)) + ":" + held);
      step = run_stages(stages, held, step->next, cx);
    }
    seen.push_back(step ? "done:" + std::string(step->payload) : "error:" + step.error().message);
    return seen;
  }
  channel_stages stages;
  context cx;
};

TEST_F(pipeline_test, default_order_stops_at_each_hook) {
  EXPECT_EQ(
      run_all(R"({"call_sid":"CA1"})"),
      (std::vector<std::string>{R"(delegate:{"call_sid":"CA1"})", R"(route:{"sid":"CA1","v":2})",
                                R"(webhook:{"sid":"CA1","v":2})", R"(publish_to_parent:{"sid":"CA1","v":2})",
                                R"(done:{"sid":"CA1","v":2})"}));
}

TEST_F(pipeline_test, validate_rejects_before_any_hook) {
  EXPECT_EQ(run_all(R"({"sid":"CA1"})"),
            (std::vector<std::string>{R"(error:missing required field "call_sid")"}));
  EXPECT_EQ(run_all("nope"),
            (std::vector<std::string>{"error:payload is not JSON: invalid value at byte 1"}));
}

TEST_F(pipeline_test, translate_then_validate) {
  order(R"(["translate","validate"])");
  EXPECT_EQ(run_all(R"({"call_sid":"CA1"})"),
            (std::vector<std::string>{R"(error:missing required field "call_sid")"}));
  auto v = validate_spec::compile(R"({"required":{"sid":"string","v":"integer"}})");
  ASSERT_TRUE(v);
  stages.validate = *v;
  EXPECT_EQ(run_all(R"({"call_sid":"CA1"})"), (std::vector<std::string>{R"(done:{"sid":"CA1","v":2})"}));
}

TEST_F(pipeline_test, route_then_translate) {
  order(R"(["route","translate","webhook"])");
  EXPECT_EQ(run_all(R"({"call_sid":"CA1"})"),
            (std::vector<std::string>{R"(route:{"call_sid":"CA1"})", R"(webhook:{"sid":"CA1","v":2})",
                                      R"(done:{"sid":"CA1","v":2})"}));
}

TEST_F(pipeline_test, a_delegate_answer_continues_the_pipeline) {
  auto step = run_stages(stages, R"({"call_sid":"CA1"})", 0, cx);
  ASSERT_TRUE(step);
  ASSERT_EQ(step->hook, stage::delegate);
  EXPECT_EQ(step->next, 2u);
  // The delegate rewrote the event.
  auto after = run_stages(stages, R"({"call_sid":"CA9","extra":true})", step->next, cx);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->hook, stage::route);
  EXPECT_EQ(after->payload, R"({"sid":"CA9","extra":true,"v":2})");
  // Resuming with the view into the context is fine.
  auto next = run_stages(stages, after->payload, after->next, cx);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->hook, stage::webhook);
  EXPECT_EQ(next->payload, R"({"sid":"CA9","extra":true,"v":2})");
}

TEST_F(pipeline_test, unset_stages_pass_the_payload_as_is) {
  channel_stages bare;
  auto step = run_stages(bare, "  not even json ", 0, cx);
  ASSERT_TRUE(step);
  EXPECT_EQ(step->hook, stage::delegate);
  EXPECT_EQ(step->payload, "  not even json ");
  order(R"(["validate","translate"])");
  stages.translate.reset();
  auto done = run_stages(stages, R"( {"call_sid":"CA1"} )", 0, cx);
  ASSERT_TRUE(done);
  EXPECT_FALSE(done->hook);
  EXPECT_EQ(done->next, 2u);
  EXPECT_EQ(done->payload, R"( {"call_sid":"CA1"} )");
}

TEST_F(pipeline_test, an_empty_order_does_nothing) {
  order("[]");
  auto step = run_stages(stages, "x", 0, cx);
  ASSERT_TRUE(step);
  EXPECT_FALSE(step->hook);
  EXPECT_EQ(step->payload, "x");
}

TEST_F(pipeline_test, translate_errors_carry_the_event_code) {
  order(R"(["translate"])");
  auto step = run_stages(stages, "[]", 0, cx);
  ASSERT_FALSE(step);
  EXPECT_EQ(step.error(), (error{errc::invalid_event, "payload must be a JSON object, not an array"}));
  stages.max_output_bytes = 5;
  step = run_stages(stages, R"({"call_sid":"CA1"})", 0, cx);
  ASSERT_FALSE(step);
  EXPECT_EQ(step.error().message, "translated payload exceeds 5 bytes");
}

}  // namespace
}  // namespace switchboard::pipeline
