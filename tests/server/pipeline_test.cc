// A channel's pipeline run by the real broker binary (4 shards, so routes and parents cross shard
// threads): validate, translate, route (both stage orders, loops, the hop limit),
// publish_to_parent and per-subscriber filters, configured live through the admin API and observed
// by real subscribers over ZeroMQ. Bad input gets its exact error and the broker keeps serving.
#include <gtest/gtest.h>
#include <httplib.h>
#include <switchboard/client.h>

#include <chrono>
#include <string>
#include <vector>

#include "support/broker_process.h"

namespace switchboard {
namespace {

using namespace std::chrono_literals;
constexpr const char* admin_token = "pipeline-admin";

class pipeline_test : public ::testing::Test {
 protected:
  void SetUp() override {
    _broker = std::make_unique<test::broker_process>(_dir.path(), admin_token,
                                                     std::vector<std::string>{"--shards", "4"});
    ASSERT_TRUE(_broker->ok()) << _broker->stderr_text();
    _http = _broker->http(admin_token);
    client_options co;
    co.url = _broker->endpoint;
    co.token = admin_token;
    auto c = client::connect(co);
    ASSERT_TRUE(c.has_value()) << c.error().message;
    _client = *c;
  }

  void put(const std::string& name, const std::string& body) {
    auto r = _http->Put("/v1/channels/" + name, body, "application/json");
    ASSERT_TRUE(r && r->status == 200) << name << ": " << (r ? r->body : "no response");
  }

  std::unique_ptr<subscription> sub(const std::string& pattern, const std::string& extra_json = {}) {
    subscribe_options o;
    o.extra_json = extra_json;
    auto s = _client->subscribe(pattern, nullptr, o);
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message);
    return s ? std::move(*s) : nullptr;
  }

  // The next event of `s` within 10 s (fails the test otherwise).
  static message next(subscription& s) {
    auto m = s.next(10s);
    EXPECT_TRUE(m.has_value() && m->has_value()) << "no event within 10 s";
    return m && *m ? **m : message{};
  }

  // Asserts `s` receives nothing more: a marker published on `marker_channel` (which `s` also
  // receives) arrives first.
  static void expect_only_marker(subscription& s) {
    auto m = s.next(10s);
    ASSERT_TRUE(m.has_value() && m->has_value());
    EXPECT_EQ((*m)->payload, R"({"marker":true})") << "unexpected event on " << (*m)->channel;
  }

  void publish(const std::string& channel, const std::string& payload) {
    auto r = _client->publish_sync(channel, payload, 5s);
    ASSERT_TRUE(r.has_value()) << channel << ": " << r.error().message;
  }

  test::temp_dir _dir;
  std::unique_ptr<test::broker_process> _broker;
  std::unique_ptr<httplib::Client> _http;
  std::shared_ptr<client> _client;
};

TEST_F(pipeline_test, validate_refuses_with_the_field_named_and_delivers_nothing) {
  put("v.calls", R"({"validate":{"required":{"call_sid":"string","duration":"integer"}}})");
  auto s = sub("v.calls");
  auto missing = _client->publish_sync("v.calls", R"({"duration":3})", 5s);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().broker_code, "invalid_event");
  EXPECT_EQ(missing.error().message, R"(missing required field "call_sid")");
  auto wrong = _client->publish_sync("v.calls", R"({"call_sid":"CA1","duration":"3"})", 5s);
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().message, R"(field "duration" must be an integer, not a string)");
  auto not_json = _client->publish_sync("v.calls", R"({"call_sid":)", 5s);
  ASSERT_FALSE(not_json.has_value());
  EXPECT_EQ(not_json.error().message.rfind("payload is not JSON: ", 0), 0u) << not_json.error().message;
  // Over HTTP: 422 with the same code and message.
  auto r = _http->Post("/v1/channels/v.calls/events", R"({"duration":3})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 422);
  EXPECT_EQ(r->body, R"({"error":{"code":"invalid_event","message":"missing required field \"call_sid\""}})");
  // A valid event is numbered 1: refused ones took no seq.
  auto ok = _client->publish_sync("v.calls", R"({"call_sid":"CA1","duration":3})", 5s);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(ok->seq, 1u);
  auto m = next(*s);
  EXPECT_EQ(m.payload, R"({"call_sid":"CA1","duration":3})");
  EXPECT_EQ(m.seq, 1u);
  // The older attribute name still works and reads back as `validate`.
  put("v.legacy", R"({"schema":{"required":["sid"]}})");
  auto g = _http->Get("/v1/channels/v.legacy");
  ASSERT_TRUE(g && g->status == 200);
  EXPECT_NE(g->body.find(R"("validate":{"required":["sid"]})"), std::string::npos) << g->body;
  EXPECT_FALSE(_client->publish_sync("v.legacy", "{}", 5s).has_value());
  // A bad spec is refused with the stage's own message.
  auto bad = _http->Put("/v1/channels/v.bad", R"({"translate":{"rename":{"a":5}}})", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 422);
  EXPECT_NE(bad->body.find(R"("code":"invalid_attribute")"), std::string::npos) << bad->body;
}

TEST_F(pipeline_test, translate_applies_to_the_next_event_after_a_change) {
  auto s = sub("t.calls");
  publish("t.calls", R"({"call_sid":"CA1","debug":1})");
  EXPECT_EQ(next(*s).payload, R"({"call_sid":"CA1","debug":1})");
  put("t.calls", R"({"translate":{"rename":{"call_sid":"sid"},"drop":["debug"],"set":{"v":2}}})");
  publish("t.calls", R"({"call_sid":"CA2","debug":1})");
  EXPECT_EQ(next(*s).payload, R"({"sid":"CA2","v":2})");
  auto r = _http->Delete("/v1/channels/t.calls");
  ASSERT_TRUE(r && r->status == 204) << (r ? r->body : "");
  publish("t.calls", R"({"call_sid":"CA3"})");
  EXPECT_EQ(next(*s).payload, R"({"call_sid":"CA3"})");
}

TEST_F(pipeline_test, translate_before_route_and_route_before_translate) {
  // Targets have their own translate: each copy is processed by its target's attributes.
  put("r.dst", R"({"translate":{"set":{"seen_by":"dst"}}})");
  put("r.src1", R"({"translate":{"set":{"v":2}},"route":["r.dst"]})");  // default order: translate, route
  put("r.src2", R"({"translate":{"set":{"v":2}},"route":["r.dst"],"order":["validate","route","translate"]})");
  auto dst = sub("r.dst");
  auto src2 = sub("r.src2");
  publish("r.src1", R"({"n":1})");
  EXPECT_EQ(next(*dst).payload, R"({"n":1,"v":2,"seen_by":"dst"})");
  publish("r.src2", R"({"n":2})");
  EXPECT_EQ(next(*dst).payload, R"({"n":2,"seen_by":"dst"})") << "routed before translate";
  EXPECT_EQ(next(*src2).payload, R"({"n":2,"v":2})") << "translated on its own channel after the route";
}

TEST_F(pipeline_test, a_route_loop_stops_with_an_error_event) {
  put("loop.a", R"({"route":["loop.b"]})");
  put("loop.b", R"({"route":["loop.a"]})");
  auto a = sub("loop.a");
  auto b = sub("loop.b");
  publish("loop.a", R"({"n":1})");
  EXPECT_EQ(next(*a).payload, R"({"n":1})");
  // loop.b receives the error event for the route back to loop.a, numbered while the copy's
  // pipeline runs, then the copy itself.
  std::vector<std::string> on_b{next(*b).payload, next(*b).payload};
  EXPECT_EQ(on_b[1], R"({"n":1})");
  EXPECT_NE(on_b[0].find(R"("type":"route.loop.v1")"), std::string::npos) << on_b[0];
  EXPECT_NE(on_b[0].find(R"("code":"route_loop")"), std::string::npos) << on_b[0];
  EXPECT_NE(on_b[0].find(R"("path":["loop.a","loop.b"])"), std::string::npos) << on_b[0];
  EXPECT_NE(on_b[0].find(R"(route to \"loop.a\" would loop)"), std::string::npos) << on_b[0];
  // Nothing more arrives anywhere: the loop stopped.
  publish("loop.a.marker", R"({"marker":true})");
  auto m = _client->subscribe("loop.>", nullptr);
  ASSERT_TRUE(m.has_value());
  publish("loop.z", R"({"marker":true})");
  expect_only_marker(**m);
  auto metrics = _http->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("switchboard_pipeline_route_refused_total 1"), std::string::npos);
}

TEST_F(pipeline_test, a_route_chain_stops_at_the_hop_limit) {
  for (int i = 0; i < 10; ++i) {
    put("hop.c" + std::to_string(i), R"({"route":["hop.c)" + std::to_string(i + 1) + R"("]})");
  }
  auto last = sub("hop.c8");
  auto beyond = sub("hop.c9");
  publish("hop.c0", R"({"n":1})");
  // c8 refuses the ninth hop with an error event (numbered while the copy's pipeline runs), then
  // delivers the copy (hop 8) itself.
  auto err = next(*last);
  EXPECT_EQ(next(*last).payload, R"({"n":1})");
  EXPECT_NE(err.payload.find(R"("type":"route.too_many_hops.v1")"), std::string::npos) << err.payload;
  EXPECT_NE(err.payload.find(R"("hops":8,"max_hops":8)"), std::string::npos) << err.payload;
  publish("hop.c9", R"({"marker":true})");
  expect_only_marker(*beyond);
}

TEST_F(pipeline_test, publish_to_parent_delivers_on_each_parent_with_its_own_seq) {
  put("pp.a.b.c", R"({"publish_to_parent":true})");
  auto ab = sub("pp.a.b");
  auto a = sub("pp.a");
  auto r = _client->publish_sync("pp.a.b.c", R"({"n":1})", 5s);
  ASSERT_TRUE(r.has_value());
  auto on_ab = next(*ab);
  EXPECT_EQ(on_ab.channel, "pp.a.b");
  EXPECT_EQ(on_ab.payload, R"({"n":1})");
  EXPECT_EQ(on_ab.seq, 1u);
  auto on_a = next(*a);
  EXPECT_EQ(on_a.channel, "pp.a");
  EXPECT_EQ(on_a.seq, 1u);
  // The parents do not run their own pipeline: a parent's route is not taken for a child's event.
  put("pp.a", R"({"route":["pp.elsewhere"]})");
  auto elsewhere = sub("pp.elsewhere");
  publish("pp.a.b.c", R"({"n":2})");
  EXPECT_EQ(next(*a).seq, 2u);
  publish("pp.elsewhere", R"({"marker":true})");
  expect_only_marker(*elsewhere);
}

TEST_F(pipeline_test, subscriber_filters_keep_only_matching_events) {
  auto by_sid = sub("f.calls.>", R"("filter":{"data.call_sid":"CA1"})");
  auto by_prefix = sub("f.calls.>", R"("filter":{"data.from":{"prefix":"+1415"}})");
  auto by_set = sub("f.calls.>", R"("filter":{"status":{"in":["ringing","answered"]}})");
  auto all = sub("f.calls.>");
  publish("f.calls.x", R"({"status":"queued","data":{"call_sid":"CA1","from":"+33100"}})");
  publish("f.calls.y", R"({"status":"ringing","data":{"call_sid":"CA2","from":"+14155550100"}})");
  publish("f.calls.z", "not json at all");
  publish("f.calls.x", R"({"marker":true,"status":"answered","data":{"call_sid":"CA1","from":"+1415"}})");
  EXPECT_EQ(next(*by_sid).payload, R"({"status":"queued","data":{"call_sid":"CA1","from":"+33100"}})");
  EXPECT_NE(next(*by_sid).payload.find(R"("marker":true)"), std::string::npos);
  EXPECT_EQ(next(*by_prefix).payload, R"({"status":"ringing","data":{"call_sid":"CA2","from":"+14155550100"}})");
  EXPECT_NE(next(*by_prefix).payload.find(R"("marker":true)"), std::string::npos);
  EXPECT_EQ(next(*by_set).payload, R"({"status":"ringing","data":{"call_sid":"CA2","from":"+14155550100"}})");
  EXPECT_NE(next(*by_set).payload.find(R"("marker":true)"), std::string::npos);
  for (int i = 0; i < 4; ++i) (void)next(*all);
  // A filter that does not compile is refused with the filter's message.
  subscribe_options o;
  o.extra_json = R"("filter":{"data.from":{"starts":"+1"}})";
  auto bad = _client->subscribe("f.calls.>", nullptr, o);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().broker_code, "invalid_options");
  EXPECT_EQ(bad.error().message,
            R"(attribute "filter.data.from" must be a string, a number, a boolean, null, {"prefix": string} or {"in": [value, …]})");
  // ack/start still need a durable subscription.
  o.extra_json = R"("start":"all")";
  auto start = _client->subscribe("f.calls.>", nullptr, o);
  ASSERT_FALSE(start.has_value());
  EXPECT_EQ(start.error().message, R"(option "start" needs option durable)");
}

}  // namespace
}  // namespace switchboard
