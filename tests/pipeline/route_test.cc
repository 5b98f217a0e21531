#include "broker/pipeline/route.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace switchboard::pipeline {
namespace {

TEST(route_test, ok_when_the_target_is_new_and_hops_remain) {
  const std::vector<std::string> path{"acme.calls", "acme.audit"};
  const auto d = check_route(path, 1, "acme.billing");
  EXPECT_EQ(d.verdict, route_verdict::ok);
  EXPECT_TRUE(d.message.empty());
  EXPECT_TRUE(d.error_event.empty());
}

TEST(route_test, loop_when_the_target_is_on_the_path) {
  const std::vector<std::string> path{"a", "b", "c"};
  const auto d = check_route(path, 2, "a");
  EXPECT_EQ(d.verdict, route_verdict::loop);
  EXPECT_EQ(d.message, R"(route to "a" would loop: path "a" -> "b" -> "c" already holds it)");
  EXPECT_EQ(
      d.error_event,
      R"({"specversion":"1.0","type":"route.loop.v1","source":"switchboard","subject":"c","data":{"code":"route_loop",)"
      R"("message":"route to \"a\" would loop: path \"a\" -> \"b\" -> \"c\" already holds it","target":"a",)"
      R"("path":["a","b","c"],"hops":2,"max_hops":8}})");
  EXPECT_EQ(d.as_error(), (error{errc::route_loop, d.message}));
  // Routing to itself is a loop.
  EXPECT_EQ(check_route(std::vector<std::string>{"a"}, 0, "a").verdict, route_verdict::loop);
  // Loop is reported before the hop limit.
  EXPECT_EQ(check_route(path, 8, "b").verdict, route_verdict::loop);
}

TEST(route_test, too_many_hops) {
  std::vector<std::string> path;
  for (int i = 0; i <= 8; ++i) path.push_back(std::string("c").append(std::to_string(i)));
  EXPECT_EQ(check_route(std::span(path).first(8), 7, "x").verdict, route_verdict::ok);
  const auto d = check_route(path, 8, "x");
  EXPECT_EQ(d.verdict, route_verdict::too_many_hops);
  EXPECT_EQ(
      d.message,
      R"(route to "x" exceeds 8 hops: path "c0" -> "c1" -> "c2" -> "c3" -> "c4" -> "c5" -> "c6" -> "c7" -> "c8")");
  EXPECT_EQ(d.as_error().code, errc::too_many_hops);
  EXPECT_NE(d.error_event.find(R"("type":"route.too_many_hops.v1")"), std::string::npos);
  EXPECT_NE(d.error_event.find(R"("code":"too_many_hops")"), std::string::npos);
  // Configurable limit.
  const std::vector<std::string> two{"a", "b"};
  EXPECT_EQ(check_route(two, 1, "c", 1).verdict, route_verdict::too_many_hops);
  EXPECT_EQ(check_route(two, 1, "c", 2).verdict, route_verdict::ok);
  EXPECT_EQ(check_route({}, 0, "c", 0).verdict, route_verdict::too_many_hops);
}

TEST(route_test, names_are_quoted_and_escaped) {
  const std::vector<std::string> path{"caf\xc3\xa9", "a\"b"};
  const auto d = check_route(path, 1, "caf\xc3\xa9");
  EXPECT_EQ(d.message, R"(route to "caf\xc3\xa9" would loop: path "caf\xc3\xa9" -> "a\"b" already holds it)");
  // The event's JSON holds the names themselves.
  EXPECT_NE(d.error_event.find("\"path\":[\"caf\xc3\xa9\",\"a\\\"b\"]"), std::string::npos) << d.error_event;
  const auto empty = check_route({}, 0, "x", 0);
  EXPECT_EQ(empty.message, R"(route to "x" exceeds 0 hops: path (empty))");
  EXPECT_NE(empty.error_event.find(R"("subject":"")"), std::string::npos);
}

TEST(route_test, parent_channels) {
  using v = std::vector<std::string_view>;
  EXPECT_EQ(parent_channels("a.b.c"), (v{"a.b", "a"}));
  EXPECT_EQ(parent_channels("acme.calls.CA1.status"), (v{"acme.calls.CA1", "acme.calls", "acme"}));
  EXPECT_EQ(parent_channels("a"), v{});
  EXPECT_EQ(parent_channels(""), v{});
  // Invalid names (validated elsewhere) do not crash.
  EXPECT_EQ(parent_channels(".a"), v{});
  EXPECT_EQ(parent_channels("a."), (v{"a"}));
  EXPECT_EQ(parent_channels("a..b"), (v{"a.", "a"}));
}

}  // namespace
}  // namespace switchboard::pipeline
