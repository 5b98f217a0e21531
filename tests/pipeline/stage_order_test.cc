#include "broker/pipeline/stage_order.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace switchboard::pipeline {
namespace {

std::vector<stage> stages_of(const stage_order& o) { return {o.stages().begin(), o.stages().end()}; }

std::string error_of(std::string_view json) {
  auto o = stage_order::from_json(json);
  EXPECT_FALSE(o) << "parsed: " << json;
  if (o) return {};
  EXPECT_EQ(o.error().code, errc::invalid_spec);
  return o.error().message;
}

TEST(stage_order_test, default_order) {
  const stage_order o;
  EXPECT_EQ(stages_of(o), (std::vector<stage>{stage::validate, stage::delegate, stage::translate,
                                              stage::route, stage::webhook, stage::publish_to_parent}));
  EXPECT_EQ(o.to_json(), R"(["validate","delegate","translate","route","webhook","publish_to_parent"])");
  EXPECT_EQ(o.position(stage::translate), 2u);
}

TEST(stage_order_test, any_permutation_of_a_subset) {
  auto o = stage_order::from_json(R"(["route","translate"])");
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(stages_of(*o), (std::vector<stage>{stage::route, stage::translate}));
  EXPECT_FALSE(o->contains(stage::validate));
  EXPECT_EQ(o->position(stage::translate), 1u);
  EXPECT_FALSE(o->position(stage::webhook));
  auto empty = stage_order::from_json("[]");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->size(), 0u);
  EXPECT_EQ(empty->to_json(), "[]");
  auto again = stage_order::from_json(o->to_json());
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *o);
  const std::string_view names[] = {"webhook", "validate"};
  auto from_names = stage_order::from_names(names);
  ASSERT_TRUE(from_names);
  EXPECT_EQ(stages_of(*from_names), (std::vector<stage>{stage::webhook, stage::validate}));
}

TEST(stage_order_test, errors_match_channel_config) {
  EXPECT_EQ(error_of("x"), R"(attribute "order" is not JSON: invalid value at byte 0)");
  EXPECT_EQ(error_of(R"({"a":1})"), R"(attribute "order" must be an array)");
  EXPECT_EQ(
      error_of(R"(["validate","transform"])"),
      R"(attribute "order[1]" must be one of validate, delegate, translate, route, webhook, publish_to_parent)");
  EXPECT_EQ(
      error_of(R"([1])"),
      R"(attribute "order[0]" must be one of validate, delegate, translate, route, webhook, publish_to_parent)");
  EXPECT_EQ(error_of(R"(["route","webhook","route"])"), R"(attribute "order[2]" repeats stage "route")");
  std::string many = "[";
  for (int i = 0; i < 100; ++i) many += R"("validate",)";
  many += R"("validate"])";
  EXPECT_EQ(error_of(many), R"(attribute "order[1]" repeats stage "validate")");
}

TEST(stage_order_test, names) {
  EXPECT_EQ(to_string(stage::publish_to_parent), "publish_to_parent");
  EXPECT_EQ(stage_from_name("delegate"), stage::delegate);
  EXPECT_FALSE(stage_from_name("Delegate"));
  EXPECT_TRUE(runs_in_process(stage::validate));
  EXPECT_TRUE(runs_in_process(stage::translate));
  EXPECT_FALSE(runs_in_process(stage::delegate));
  EXPECT_FALSE(runs_in_process(stage::publish_to_parent));
}

}  // namespace
}  // namespace switchboard::pipeline
