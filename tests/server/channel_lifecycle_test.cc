// Channel lifecycle on the real binary (issue 12): with --channel-idle-s, channels without
// subscribers, own configuration or traffic leave the broker's memory; a durable one keeps its log
// and continues its numbering when it comes back; a watched channel stays.
#include <gtest/gtest.h>
#include <switchboard/client.h>

#include <regex>
#include <string>

#include "support/broker_process.h"

namespace switchboard {
namespace {

using namespace std::chrono_literals;

constexpr const char* token = "lifecycle-token";

class channel_lifecycle_test : public ::testing::Test {
 protected:
  void SetUp() override {
    _broker = std::make_unique<test::broker_process>(_dir.path(), token,
                                                     std::vector<std::string>{"--channel-idle-s", "1"});
    ASSERT_TRUE(_broker->ok()) << _broker->stderr_text();
    _http = _broker->http(token);
  }

  std::shared_ptr<client> connect() {
    client_options co;
    co.url = _broker->endpoint;
    co.token = token;
    auto c = client::connect(co);
    EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message);
    return c ? *c : nullptr;
  }

  // The value of an unlabelled metric, or -1.
  long long metric(const std::string& name) {
    auto r = _http->Get("/metrics");
    if (!r) return -1;
    std::smatch m;
    if (!std::regex_search(r->body, m, std::regex("\n" + name + " ([0-9]+)\n"))) return -1;
    return std::stoll(m[1]);
  }
  // Polls /metrics until `name` has `value` (10 s).
  bool wait_metric(const std::string& name, long long value) {
    for (auto end = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < end;) {
      if (metric(name) == value) return true;
    }
    return false;
  }

  test::temp_dir _dir;
  std::unique_ptr<test::broker_process> _broker;
  std::unique_ptr<httplib::Client> _http;
};

TEST_F(channel_lifecycle_test, idle_channels_leave_memory_and_durable_ones_continue_their_numbering) {
  // Durable through a pattern: the channels themselves have no configuration of their own.
  auto put = _http->Put("/v1/channels/life.%3E", R"({"durable":true})", "application/json");
  ASSERT_TRUE(put && put->status == 200) << (put ? put->body : "no response");
  auto c = connect();
  ASSERT_TRUE(c);
  std::uint64_t epoch = 0;
  for (int i = 1; i <= 3; ++i) {
    auto ack = c->publish_sync("life.calls.CA1", "e" + std::to_string(i), 5s);
    ASSERT_TRUE(ack) << ack.error().message;
    epoch = ack->epoch;
  }
  ASSERT_TRUE(c->publish_sync("live.tick", "t", 5s));
  auto watched = c->subscribe("watched.x");
  ASSERT_TRUE(watched) << watched.error().message;
  ASSERT_TRUE(c->publish_sync("watched.x", "w", 5s));
  EXPECT_EQ(metric("switchboard_channels"), 3);
  EXPECT_EQ(metric("switchboard_durable_logs_open"), 1);

  // Idle for more than a second: both unwatched channels go, the watched one stays.
  ASSERT_TRUE(wait_metric("switchboard_channels_expired_total", 2)) << metric("switchboard_channels_expired_total");
  EXPECT_EQ(metric("switchboard_channels"), 1);
  EXPECT_EQ(metric("switchboard_durable_logs_open"), 0);
  auto list = _http->Get("/v1/channels");
  ASSERT_TRUE(list && list->status == 200);
  EXPECT_NE(list->body.find(R"("name":"watched.x")"), std::string::npos) << list->body;

  // The durable channel comes back where it was: same epoch, the next seq, its history intact.
  auto ack = c->publish_sync("life.calls.CA1", "e4", 5s);
  ASSERT_TRUE(ack) << ack.error().message;
  EXPECT_EQ(ack->seq, 4u);
  EXPECT_EQ(ack->epoch, epoch);
  EXPECT_EQ(metric("switchboard_durable_logs_open"), 1);
  auto history = _http->Get("/v1/channels/life.calls.CA1/events");
  ASSERT_TRUE(history && history->status == 200);
  EXPECT_NE(history->body.find(R"("next_seq":5,"first_seq":1)"), std::string::npos) << history->body;

  // The watched channel kept delivering throughout.
  ASSERT_TRUE(c->publish_sync("watched.x", "w2", 5s));
  int got = 0;
  while (got < 2) {
    auto m = (*watched)->next(5s);
    ASSERT_TRUE(m && *m) << "watched channel stopped delivering";
    ++got;
  }
}

}  // namespace
}  // namespace switchboard
