// check_json (broker/admin/json_check.cc): the exact invalid_json messages, and no stack overflow
// on any nesting depth (issue 14: 200 000 '[' crashed the broker).
#include "broker/admin/json_check.h"

#include <gtest/gtest.h>

#include <string>

namespace switchboard::admin {
namespace {

TEST(json_check_test, accepts_values_up_to_the_depth_limit) {
  EXPECT_TRUE(check_json(R"({"n":1,"a":[true,null,"x"]})"));
  EXPECT_TRUE(check_json("3"));
  EXPECT_TRUE(check_json(std::string(max_json_depth, '[') + std::string(max_json_depth, ']')));
}

TEST(json_check_test, syntax_error_names_the_offset) {
  EXPECT_EQ(check_json("{\"n\":").error(), "invalid JSON at byte 5: invalid value");
  EXPECT_EQ(check_json("").error(), "invalid JSON at byte 0: the document is empty");
}

TEST(json_check_test, nesting_beyond_the_limit_is_refused_without_recursion) {
  const std::string expected = "invalid JSON at byte 1024: nested deeper than 1024 levels";
  EXPECT_EQ(check_json(std::string(200'000, '[')).error(), expected);
  EXPECT_EQ(check_json(std::string(1'000'000, '{')).error(), "invalid JSON at byte 1: missing a name for object member");
  EXPECT_EQ(check_json(std::string(max_json_depth + 1, '[') + std::string(max_json_depth + 1, ']')).error(), expected);
  std::string objects;
  for (int i = 0; i < 100'000; ++i) objects += R"({"a":)";
  EXPECT_EQ(check_json(objects).error(), "invalid JSON at byte 5120: nested deeper than 1024 levels");
}

}  // namespace
}  // namespace switchboard::admin
