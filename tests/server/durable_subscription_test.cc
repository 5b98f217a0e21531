// Durable subscriptions end to end on the real broker binary with a temp data dir: catch-up then
// live, redelivery after ack_wait, dead letters and redrive, gap notices after retention, and a
// subscriber that resumes where it left off after SIGKILL.
#include <gtest/gtest.h>
#include <switchboard/client.h>

#include <mutex>
#include <regex>
#include <string>

#include "support/broker_process.h"
#include "support/raw_client.h"

namespace switchboard {
namespace {

using namespace std::chrono_literals;
constexpr const char* token = "durable-sub-token";

class durable_subscription_test : public ::testing::Test {
 protected:
  void start(std::vector<std::string> extra = {}) {
    _broker = std::make_unique<test::broker_process>(_dir.path(), token, std::move(extra));
    ASSERT_TRUE(_broker->ok()) << _broker->stderr_text();
    _http = _broker->http(token);
  }
  void SetUp() override { start(); }

  std::shared_ptr<client> connect(std::function<void(const error&)> on_error = nullptr) {
    client_options co;
    co.url = _broker->endpoint;
    co.token = token;
    co.on_error = std::move(on_error);
    auto c = client::connect(co);
    EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message);
    return c ? *c : nullptr;
  }

  void http_ok(const httplib::Result& r, int status) {
    ASSERT_TRUE(r) << "no response";
    ASSERT_EQ(r->status, status) << r->body;
  }

  std::unique_ptr<subscription> attach(client& c, const std::string& pattern, const std::string& name) {
    subscribe_options so;
    so.extra_json = "\"durable\":\"" + name + "\"";
    auto sub = c.subscribe(pattern, nullptr, so);
    EXPECT_TRUE(sub.has_value()) << (sub ? "" : sub.error().broker_code + ": " + sub.error().message);
    return sub ? std::move(*sub) : nullptr;
  }

  // The next event within `timeout`, failing the test when none comes.
  message next(subscription& s, std::chrono::milliseconds timeout = 10s) {
    auto m = s.next(timeout);
    EXPECT_TRUE(m.has_value()) << (m ? "" : m.error().message);
    if (!m || !*m) {
      ADD_FAILURE() << "no event within " << timeout.count() << " ms";
      return {};
    }
    return std::move(**m);
  }

  test::temp_dir _dir;
  std::unique_ptr<test::broker_process> _broker;
  std::unique_ptr<httplib::Client> _http;
};

TEST_F(durable_subscription_test, catches_up_then_gets_live_events_and_redelivers_unacked) {
  http_ok(_http->Put("/v1/channels/orders.%3E", R"({"durable":true})", "application/json"), 200);
  http_ok(_http->Post("/v1/subscriptions",
                      R"({"name":"billing","pattern":"orders.eu","ack":{"policy":"at_least_once","ack_wait_ms":300},"start":"all"})",
                      "application/json"),
          201);
  auto c = connect();
  ASSERT_TRUE(c->publish_sync("orders.eu", "before-1", 5s).has_value());
  ASSERT_TRUE(c->publish_sync("orders.eu", "before-2", 5s).has_value());

  auto sub = attach(*c, "orders.eu", "billing");
  ASSERT_TRUE(sub);
  auto m1 = next(*sub);
  auto m2 = next(*sub);
  EXPECT_EQ(m1.payload, "before-1");
  EXPECT_EQ(m1.seq, 1u);
  EXPECT_EQ(m2.payload, "before-2");
  c->ack(m1);
  ASSERT_TRUE(c->publish_sync("orders.eu", "live-3", 5s).has_value());
  auto m3 = next(*sub);
  EXPECT_EQ(m3.payload, "live-3");
  EXPECT_EQ(m3.seq, 3u);
  c->ack(m3);
  // before-2 was never acknowledged: it comes again after ack_wait, and only it.
  auto again = next(*sub);
  EXPECT_EQ(again.payload, "before-2");
  EXPECT_EQ(again.seq, 2u);
  c->ack(again);

  auto state = _http->Get("/v1/subscriptions/billing");
  ASSERT_TRUE(state && state->status == 200);
  EXPECT_NE(state->body.find(R"("redeliveries":1)"), std::string::npos) << state->body;
}

TEST_F(durable_subscription_test, dead_letters_after_max_deliveries_and_redrive_republishes) {
  http_ok(_http->Put("/v1/channels/jobs", R"({"durable":true})", "application/json"), 200);
  http_ok(_http->Post("/v1/subscriptions",
                      R"({"name":"worker","pattern":"jobs","ack":{"policy":"at_least_once","ack_wait_ms":100,"max_deliveries":2},"start":"all"})",
                      "application/json"),
          201);
  auto c = connect();
  auto sub = attach(*c, "jobs", "worker");
  ASSERT_TRUE(sub);
  ASSERT_TRUE(c->publish_sync("jobs", R"({"job":"poison"})", 5s).has_value());
  EXPECT_EQ(next(*sub).seq, 1u);
  EXPECT_EQ(next(*sub).seq, 1u);  // second and last delivery

  std::string letters;
  for (auto end = std::chrono::steady_clock::now() + 10s; letters.find(R"("seq":1,)") == std::string::npos;) {
    ASSERT_LT(std::chrono::steady_clock::now(), end) << "no dead letter: " << letters;
    auto r = _http->Get("/v1/dead-letters");
    ASSERT_TRUE(r && r->status == 200);
    letters = r->body;
  }
  EXPECT_NE(letters.find(R"("reason":"max_deliveries (2) exceeded without ack")"), std::string::npos) << letters;
  EXPECT_NE(letters.find(R"("data":{"job":"poison"})"), std::string::npos) << letters;

  // Dead-letter ids are <subscription>-<channel>-<epoch>-<seq>: unique across wipes (issue 12).
  std::smatch id;
  ASSERT_TRUE(std::regex_search(letters, id, std::regex(R"re("id":"(worker-jobs-[0-9a-f]{16}-1)")re"))) << letters;
  const std::string letter = id[1];
  auto redrive = _http->Post("/v1/dead-letters/" + letter + "/redrive", "", "application/json");
  ASSERT_TRUE(redrive && redrive->status == 202) << (redrive ? redrive->body : "no response");
  auto again = next(*sub);
  EXPECT_EQ(again.payload, R"({"job":"poison"})");
  EXPECT_EQ(again.seq, 2u) << "redrive publishes the event again, as a new event";
  c->ack(again);
  auto after = _http->Get("/v1/dead-letters");
  ASSERT_TRUE(after && after->status == 200);
  EXPECT_EQ(after->body.find(letter), std::string::npos) << after->body;

  auto missing = _http->Post("/v1/dead-letters/nope/redrive", "", "application/json");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST_F(durable_subscription_test, gap_notice_names_the_first_available_seq) {
  _broker.reset();
  start({"--retention-interval-ms", "20"});
  http_ok(_http->Put("/v1/channels/gap.x", R"({"durable":true,"retention":{"max_events":2}})", "application/json"),
          200);
  http_ok(_http->Post("/v1/subscriptions", R"({"name":"late","pattern":"gap.x","start":"all"})", "application/json"),
          201);
  auto c = connect();
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(c->publish_sync("gap.x", "e" + std::to_string(i), 5s).has_value());
  for (auto end = std::chrono::steady_clock::now() + 10s;;) {  // wait for retention to run
    ASSERT_LT(std::chrono::steady_clock::now(), end);
    auto h = _http->Get("/v1/channels/gap.x/events");
    ASSERT_TRUE(h && h->status == 200);
    if (h->body.find(R"("first_seq":4)") != std::string::npos) break;
  }
  std::mutex m;
  std::vector<error> notices;
  auto c2 = connect([&](const error& e) {
    std::lock_guard lock(m);
    notices.push_back(e);
  });
  auto sub = attach(*c2, "gap.x", "late");
  ASSERT_TRUE(sub);
  auto first = next(*sub);
  EXPECT_EQ(first.seq, 4u);
  EXPECT_EQ(first.payload, "e4");
  EXPECT_EQ(next(*sub).seq, 5u);
  std::lock_guard lock(m);
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].broker_code, "gap");
  EXPECT_EQ(notices[0].message, R"(notice for subscription 1: {"channel":"gap.x","expected_seq":1,"first_seq":4})");
}

TEST_F(durable_subscription_test, resumes_after_sigkill_without_losing_unacked_events) {
  http_ok(_http->Put("/v1/channels/resume.x", R"({"durable":true})", "application/json"), 200);
  http_ok(_http->Post("/v1/subscriptions",
                      R"({"name":"audit","pattern":"resume.x","ack":{"policy":"at_least_once"},"start":"all"})",
                      "application/json"),
          201);
  {
    auto c = connect();
    for (int i = 1; i <= 20; ++i) ASSERT_TRUE(c->publish_sync("resume.x", std::to_string(i), 5s).has_value());
    auto sub = attach(*c, "resume.x", "audit");
    ASSERT_TRUE(sub);
    for (int i = 1; i <= 10; ++i) c->ack(next(*sub));
    // Cursors are saved within the save interval; wait until the broker reports this one saved.
    for (auto end = std::chrono::steady_clock::now() + 10s;;) {
      ASSERT_LT(std::chrono::steady_clock::now(), end);
      auto s = _http->Get("/v1/subscriptions/audit");
      ASSERT_TRUE(s && s->status == 200);
      if (s->body.find(R"("acked_seq":10)") != std::string::npos &&
          s->body.find(R"("saved":true)") != std::string::npos) {
        break;
      }
    }
    c->close();
  }
  _broker->kill9();
  start();
  auto c = connect();
  auto sub = attach(*c, "resume.x", "audit");
  ASSERT_TRUE(sub);
  // At least once: everything after the saved cursor, in order, nothing skipped.
  for (int want = 11; want <= 20; ++want) {
    auto m = next(*sub);
    ASSERT_EQ(m.payload, std::to_string(want));
    c->ack(m);
  }
}

TEST_F(durable_subscription_test, bad_durable_requests_get_exact_errors) {
  auto c = connect();
  auto unknown = c->subscribe("x.y", nullptr, subscribe_options{.slow_consumer = {}, .extra_json = R"("durable":"ghost")"});
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().broker_code, "not_found");
  auto bad_ack = c->subscribe(
      "x.y", nullptr, subscribe_options{.slow_consumer = {}, .extra_json = R"("durable":"d1","ack":{"policy":"sometimes"})"});
  ASSERT_FALSE(bad_ack.has_value());
  EXPECT_EQ(bad_ack.error().broker_code, "invalid_options");
  auto orphan = c->subscribe("x.y", nullptr, subscribe_options{.slow_consumer = {}, .extra_json = R"("start":"all")"});
  ASSERT_FALSE(orphan.has_value());
  EXPECT_EQ(orphan.error().broker_code, "invalid_options");
  EXPECT_EQ(orphan.error().message, "option \"start\" needs option durable");

  auto r = _http->Post("/v1/subscriptions", R"({"name":"bad name!","pattern":"a"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 422) << r->body;
  auto dup1 = _http->Post("/v1/subscriptions", R"({"name":"dup","pattern":"a"})", "application/json");
  auto dup2 = _http->Post("/v1/subscriptions", R"({"name":"dup","pattern":"b"})", "application/json");
  ASSERT_TRUE(dup1 && dup2);
  EXPECT_EQ(dup1->status, 201);
  EXPECT_EQ(dup2->status, 409) << dup2->body;
  // The broker still serves publishers.
  EXPECT_TRUE(c->publish_sync("x.y", "still-here", 5s).has_value());

  // A refused durable attach frees its subscription id at once.
  namespace proto = switchboard::protocol;
  testing::raw_client raw(_broker->endpoint);
  ASSERT_TRUE(raw.hello(0, token));
  raw.send(proto::subscribe{.sub_id = 5, .pattern = "x.y", .options = R"({"durable":"ghost"})"});
  auto err = raw.expect<proto::error>();
  ASSERT_TRUE(err);
  EXPECT_EQ(err->ref, 5u);
  EXPECT_EQ(err->code, "not_found");
  raw.send(proto::subscribe{.sub_id = 5, .pattern = "x.y", .options = {}});
  auto ok = raw.expect<proto::suback>();
  ASSERT_TRUE(ok) << "sub id 5 still counted as in use";
  EXPECT_EQ(ok->sub_id, 5u);
}

}  // namespace
}  // namespace switchboard
