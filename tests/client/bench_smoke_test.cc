// A seconds-long run of the real switchboard-bench binary against an in-process broker.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <thread>
#include <vector>

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

// Regression (issue 14 item 14): switchboard-bench hung forever when the broker died mid-run.
TEST(switchboard_bench_smoke, exits_non_zero_with_the_reason_when_the_broker_goes_away) {
  for (const bool durable : {false, true}) {
    SCOPED_TRACE(durable ? "durable" : "latency");
    server::options o;
    o.bind = "tcp://127.0.0.1:*";
    o.memory = true;
    o.admin_port = 0;
    o.log_level = "error";
    auto s = server::server::start(o);
    ASSERT_TRUE(s) << s.error().message;
    std::vector<std::string> argv{SWITCHBOARD_BENCH_PATH, "--url", (*s)->endpoint(), "--json-only"};
    if (durable) {
      for (const char* a : {"--msgs", "100000000", "--durable", "--admin-url"}) argv.emplace_back(a);
      argv.push_back((*s)->admin_url());
    } else {
      for (const char* a : {"--msgs", "1000000", "--rate", "1000", "--subs", "2"}) argv.emplace_back(a);
    }
    test::child_process bench(argv);
    // Readiness by probing: the measured phase has started once events flow.
    for (auto end = std::chrono::steady_clock::now() + 30s; (*s)->snapshot().published < 500;) {
      ASSERT_LT(std::chrono::steady_clock::now(), end) << bench.stderr_text;
      std::this_thread::yield();
    }
    s->reset();  // the broker goes away mid-run
    const auto code = bench.wait(60s);
    EXPECT_EQ(code, 1) << bench.stdout_text << bench.stderr_text;
    EXPECT_NE(bench.stdout_text.find("\"error\":\""), std::string::npos) << bench.stdout_text;
    EXPECT_TRUE(bench.stdout_text.find("lost the broker") != std::string::npos ||
                bench.stdout_text.find("session lost") != std::string::npos)
        << bench.stdout_text;
  }
}

}  // namespace
}  // namespace switchboard
