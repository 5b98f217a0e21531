// Channel configuration applied live by the real broker binary on a temp data dir: a change takes
// effect on the very next event, pattern attributes are inherited and overridden, the dedupe
// window acknowledges a repeat with the first seq, and tokens/tenants/permissions are enforced on
// the protocol.
#include <gtest/gtest.h>
#include <httplib.h>
#include <switchboard/client.h>

#include <atomic>
#include <mutex>

#include "support/broker_process.h"

namespace switchboard {
namespace {

using namespace std::chrono_literals;
constexpr const char* admin_token = "apply-admin";

class channel_config_apply_test : public ::testing::Test {
 protected:
  void SetUp() override {
    _broker = std::make_unique<test::broker_process>(
        _dir.path(), admin_token,
        std::vector<std::string>{"--token", "acme-app:acme-secret:acme:publish,subscribe", "--token",
                                 "reader:read-secret:acme:subscribe"});
    ASSERT_TRUE(_broker->ok()) << _broker->stderr_text();
    _http = _broker->http(admin_token);
  }

  std::shared_ptr<client> connect(const std::string& token = admin_token) {
    client_options co;
    co.url = _broker->endpoint;
    co.token = token;
    auto c = client::connect(co);
    EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message);
    return c ? *c : nullptr;
  }

  void put(const std::string& name, const std::string& body) {
    auto r = _http->Put("/v1/channels/" + name, body, "application/json");
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no response");
  }

  test::temp_dir _dir;
  std::unique_ptr<test::broker_process> _broker;
  std::unique_ptr<httplib::Client> _http;
};

TEST_F(channel_config_apply_test, config_change_applies_to_the_next_event) {
  auto c = connect();
  auto first = c->publish_sync("live.x", R"({"n":1})", 5s);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->seq, 1u);
  auto h = _http->Get("/v1/channels/live.x/events");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 404) << "not durable yet: no history";

  put("live.x", R"({"durable":true})");
  auto second = c->publish_sync("live.x", R"({"n":2})", 5s);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->seq, 2u);
  h = _http->Get("/v1/channels/live.x/events");
  ASSERT_TRUE(h && h->status == 200);
  EXPECT_NE(h->body.find(R"("seq":2,)"), std::string::npos) << h->body;
  EXPECT_EQ(h->body.find(R"("seq":1,)"), std::string::npos) << "event 1 was published before the change";
}

TEST_F(channel_config_apply_test, pattern_attributes_are_inherited_and_overridden) {
  put("acme.inherit.%3E", R"({"durable":true,"max_payload_bytes":100})");
  put("acme.inherit.big", R"({"max_payload_bytes":1000})");
  auto c = connect();
  const std::string payload(500, 'x');
  auto small_limit = c->publish_sync("acme.inherit.small", payload, 5s);
  ASSERT_FALSE(small_limit.has_value());
  EXPECT_EQ(small_limit.error().broker_code, "payload_too_large");
  EXPECT_EQ(small_limit.error().message,
            "payload of 500 bytes on channel \"acme.inherit.small\" exceeds the limit of 100 bytes");
  auto big = c->publish_sync("acme.inherit.big", payload, 5s);
  ASSERT_TRUE(big.has_value()) << big.error().message;
  // durable is inherited from the pattern even though the channel sets its own payload limit.
  auto h = _http->Get("/v1/channels/acme.inherit.big/events");
  ASSERT_TRUE(h && h->status == 200) << (h ? h->body : "");
  auto g = _http->Get("/v1/channels/acme.inherit.big");
  ASSERT_TRUE(g && g->status == 200);
  EXPECT_NE(g->body.find(R"("durable":"acme.inherit.>")"), std::string::npos) << g->body;
  EXPECT_NE(g->body.find(R"("max_payload_bytes":"channel")"), std::string::npos) << g->body;
}

TEST_F(channel_config_apply_test, dedupe_window_acknowledges_a_repeat_with_the_first_seq) {
  put("dd.orders", R"({"durable":true,"dedupe_window":"10s"})");
  auto c = connect();
  std::atomic<int> received{0};
  std::atomic<bool> marker{false};
  auto sub = c->subscribe("dd.orders", [&](const event_view& ev) {
    if (ev.payload == "marker") {
      marker = true;
    } else {
      ++received;
    }
  });
  ASSERT_TRUE(sub.has_value());
  auto a = c->publish_sync("dd.orders", "order-1", 5s, "key-1");
  auto b = c->publish_sync("dd.orders", "order-1", 5s, "key-1");
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(a->seq, b->seq);
  // Over HTTP, the same key reports the duplicate explicitly.
  httplib::Headers key{{"Idempotency-Key", "key-1"}};
  auto r = _http->Post("/v1/channels/dd.orders/events", key, R"("order-1")", "application/json");
  ASSERT_TRUE(r && r->status == 202);
  EXPECT_NE(r->body.find(R"("duplicate":true)"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("\"seq\":" + std::to_string(a->seq) + ","), std::string::npos) << r->body;
  ASSERT_TRUE(c->publish_sync("dd.orders", "marker", 5s).has_value());
  for (auto end = std::chrono::steady_clock::now() + 10s; !marker;) {
    ASSERT_LT(std::chrono::steady_clock::now(), end);
    std::this_thread::yield();
  }
  EXPECT_EQ(received.load(), 1) << "a deduplicated publish must not be delivered again";
  // Regression (issue 19): the HTTP repeat was not published, so it is not counted as published.
  auto m = _http->Get("/metrics");
  ASSERT_TRUE(m && m->status == 200);
  EXPECT_NE(m->body.find("\nswitchboard_http_published_total 0\n"), std::string::npos) << m->body;
}

TEST_F(channel_config_apply_test, tenants_scopes_and_permissions_are_enforced_on_the_protocol) {
  auto acme = connect("acme-secret");
  auto other = acme->publish_sync("globex.calls", "x", 5s);
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(other.error().broker_code, "forbidden");
  EXPECT_EQ(other.error().message, "tenant \"acme\" may not use \"globex.calls\"");
  EXPECT_TRUE(acme->publish_sync("acme.calls", "x", 5s).has_value());

  auto reader = connect("read-secret");
  auto no_scope = reader->publish_sync("acme.calls", "x", 5s);
  ASSERT_FALSE(no_scope.has_value());
  EXPECT_EQ(no_scope.error().broker_code, "forbidden");
  EXPECT_EQ(no_scope.error().message, "token \"reader\" has no publish scope");
  auto cross = reader->subscribe("globex.>");
  ASSERT_FALSE(cross.has_value());
  EXPECT_EQ(cross.error().broker_code, "forbidden");

  put("acme.locked", R"({"permissions":{"publish":["ops"],"subscribe":["*"]}})");
  auto locked = acme->publish_sync("acme.locked", "x", 5s);
  ASSERT_FALSE(locked.has_value());
  EXPECT_EQ(locked.error().broker_code, "forbidden");
  EXPECT_EQ(locked.error().message, "\"acme-app\" may not publish on channel \"acme.locked\"");

  client_options bad;
  bad.url = _broker->endpoint;
  bad.token = "nope";
  bad.connect_timeout = 2s;
  auto refused = client::connect(bad);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().broker_code, "unauthorized");
}

TEST_F(channel_config_apply_test, wildcard_and_durable_subscriptions_cannot_widen_access) {
  put("acme.secret", R"({"permissions":{"publish":["*"],"subscribe":["ops"]}})");
  auto acme = connect("acme-secret");
  std::mutex m;
  std::vector<std::string> seen;
  auto sub = acme->subscribe("acme.>", [&](const event_view& ev) {
    std::lock_guard lock(m);
    seen.emplace_back(ev.channel);
  });
  ASSERT_TRUE(sub.has_value());
  auto admin = connect();
  ASSERT_TRUE(admin->publish_sync("acme.secret", "hidden", 5s).has_value());
  ASSERT_TRUE(admin->publish_sync("acme.open", "visible", 5s).has_value());
  for (auto end = std::chrono::steady_clock::now() + 10s;;) {
    ASSERT_LT(std::chrono::steady_clock::now(), end);
    std::lock_guard lock(m);
    if (std::ranges::find(seen, "acme.open") != seen.end()) break;
  }
  {
    std::lock_guard lock(m);
    EXPECT_EQ(seen, std::vector<std::string>{"acme.open"}) << "a wildcard must not reach a channel it may not read";
  }

  auto created = _http->Post("/v1/subscriptions", R"({"name":"globex-audit","pattern":"globex.>"})", "application/json");
  ASSERT_TRUE(created && created->status == 201) << (created ? created->body : "");
  // Names are scoped per tenant (issue 14 item 10): acme's "globex-audit" is acme's own, and the
  // answer says nothing of globex's subscription or its pattern.
  auto hijack = acme->subscribe("acme.x", nullptr, subscribe_options{.slow_consumer = {}, .extra_json = R"("durable":"globex-audit")"});
  ASSERT_FALSE(hijack.has_value());
  EXPECT_EQ(hijack.error().broker_code, "not_found");
  EXPECT_EQ(hijack.error().message, R"(durable subscription "acme/globex-audit" does not exist)");
  auto spoof = acme->subscribe("acme.x", nullptr, subscribe_options{.slow_consumer = {}, .extra_json = R"("durable":"globex/x")"});
  ASSERT_FALSE(spoof.has_value());
  EXPECT_EQ(spoof.error().broker_code, "invalid_options");
  EXPECT_EQ(spoof.error().message, R"(option durable must not contain "/": names are scoped to tenant "acme")");
}

// Regression (issue 14 item 10): one tenant could squat a subscription name another needs.
TEST_F(channel_config_apply_test, durable_subscription_names_are_scoped_per_tenant) {
  auto created = _http->Post("/v1/subscriptions", R"({"name":"globex/billing","pattern":"globex.>"})", "application/json");
  ASSERT_TRUE(created && created->status == 201) << (created ? created->body : "");
  auto acme = connect("acme-secret");
  auto mine = acme->subscribe("acme.>", nullptr,
                              subscribe_options{.slow_consumer = {}, .extra_json = R"("durable":"billing","start":"all")"});
  ASSERT_TRUE(mine.has_value()) << mine.error().message;
  auto listed = _http->Get("/v1/subscriptions/acme%2Fbilling");
  ASSERT_TRUE(listed && listed->status == 200) << (listed ? listed->body : "");
  EXPECT_NE(listed->body.find(R"("pattern":"acme.>")"), std::string::npos) << listed->body;
  auto theirs = _http->Get("/v1/subscriptions/globex%2Fbilling");
  ASSERT_TRUE(theirs && theirs->status == 200) << (theirs ? theirs->body : "");
  EXPECT_NE(theirs->body.find(R"("pattern":"globex.>")"), std::string::npos) << theirs->body;
}


// Regression (issue 14 item 8): a durable pattern subscription served from the log ignored the
// channel `permissions`, so `acme.>` with start all read every stored and live event of a channel
// its token is excluded from.
TEST_F(channel_config_apply_test, durable_pattern_subscription_skips_channels_it_may_not_read) {
  put("acme.secret", R"({"durable":true,"permissions":{"publish":["*"],"subscribe":["ops"]}})");
  put("acme.open", R"({"durable":true})");
  auto admin = connect();
  ASSERT_TRUE(admin->publish_sync("acme.secret", "stored-hidden", 5s).has_value());
  ASSERT_TRUE(admin->publish_sync("acme.open", "stored-visible", 5s).has_value());

  auto acme = connect("acme-secret");
  std::mutex m;
  std::vector<std::string> seen;
  auto sub = acme->subscribe(
      "acme.>",
      [&](const event_view& ev) {
        std::lock_guard lock(m);
        seen.emplace_back(std::string(ev.channel) + ":" + std::string(ev.payload));
      },
      subscribe_options{.slow_consumer = {}, .extra_json = R"("durable":"acme-all","start":"all")"});
  ASSERT_TRUE(sub.has_value()) << sub.error().message;
  ASSERT_TRUE(admin->publish_sync("acme.secret", "live-hidden", 5s).has_value());
  ASSERT_TRUE(admin->publish_sync("acme.open", "live-visible", 5s).has_value());
  for (auto end = std::chrono::steady_clock::now() + 10s;;) {
    ASSERT_LT(std::chrono::steady_clock::now(), end);
    std::lock_guard lock(m);
    if (std::ranges::find(seen, "acme.open:live-visible") != seen.end()) break;
  }
  std::lock_guard lock(m);
  EXPECT_EQ(seen, (std::vector<std::string>{"acme.open:stored-visible", "acme.open:live-visible"}));
}

}  // namespace
}  // namespace switchboard
