// A seconds-long run of the real switchboard-bench binary against an in-process broker.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

#include "broker/server/server.h"
#include "support/child_process.h"

namespace switchboard {
namespace {

using namespace std::chrono_literals;

TEST(switchboard_bench_smoke, delivers_everything) {
  server::options o;
  o.bind = "tcp://127.0.0.1:*";
  o.memory = true;
  o.admin_port = 0;
  o.log_level = "warn";
  auto s = server::server::start(o);
  ASSERT_TRUE(s) << s.error().message;

  test::child_process bench(
      {SWITCHBOARD_BENCH_PATH, "--url", (*s)->endpoint(), "--msgs", "20000", "--subs", "2", "--json-only"});
  ASSERT_EQ(bench.wait(100s), 0) << bench.stdout_text << bench.stderr_text;

  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(simdjson::padded_string(bench.stdout_text)).get(doc), simdjson::SUCCESS) << bench.stdout_text;
  std::string_view backend;
  ASSERT_EQ(doc["backend"].get(backend), simdjson::SUCCESS);
  EXPECT_EQ(backend, "switchboard");
  std::uint64_t expected = 0, received = 0;
  std::int64_t lost = -1;
  ASSERT_EQ(doc["expected"].get(expected), simdjson::SUCCESS);
  ASSERT_EQ(doc["received"].get(received), simdjson::SUCCESS);
  ASSERT_EQ(doc["lost"].get(lost), simdjson::SUCCESS);
  EXPECT_EQ(expected, 40000u);
  EXPECT_EQ(received, expected);
  EXPECT_EQ(lost, 0);
}

}  // namespace
}  // namespace switchboard
