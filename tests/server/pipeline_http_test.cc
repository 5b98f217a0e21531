// The HTTP stages of a channel's pipeline through the real broker binary: webhooks (signed,
// retried, dead-lettered and redriven through the admin API, never delaying subscribers) and
// delegates (enrich, drop by 204, metadata switching route/webhook off for one event, failure
// policies, order kept while delegates overlap), against real HTTP servers on 127.0.0.1.
#include <gtest/gtest.h>
#include <httplib.h>
#include <switchboard/client.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "broker/http_client/signature.h"
#include "support/broker_process.h"
#include "webhook/receiver.h"

namespace switchboard {
namespace {

using namespace std::chrono_literals;
constexpr const char* admin_token = "pipeline-http-admin";

// A delegate server: each path answers with a function of the request body.
class delegate_server {
 public:
  using handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  delegate_server() {
    _server.new_task_queue = [] { return new httplib::ThreadPool(32); };
    _server.set_tcp_nodelay(true);
    _server.set_keep_alive_timeout(1);  // its destructor waits this long for the broker's idle connections
    _server.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      handler h;
      {
        std::lock_guard lock(_mutex);
        ++_calls;
        if (auto it = _routes.find(req.path); it != _routes.end()) h = it->second;
      }
      if (h) {
        h(req, res);
      } else {
        res.status = 404;
      }
    });
    _port = _server.bind_to_any_port("127.0.0.1");
    _thread = std::thread([this] { _server.listen_after_bind(); });
    while (!_server.is_running()) std::this_thread::yield();
  }
  ~delegate_server() {
    _server.stop();
    _thread.join();
  }
  void on(const std::string& path, handler h) {
    std::lock_guard lock(_mutex);
    _routes[path] = std::move(h);
  }
  [[nodiscard]] std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(_port) + path;
  }
  [[nodiscard]] int calls() const {
    std::lock_guard lock(_mutex);
    return _calls;
  }

 private:
  httplib::Server _server;
  mutable std::mutex _mutex;
  std::map<std::string, handler> _routes;
  int _calls = 0;
  int _port = 0;
  std::thread _thread;
};

// Answers the event with `member` added before its closing brace (the body is a JSON object).
delegate_server::handler add_member(std::string member) {
  return [member](const httplib::Request& req, httplib::Response& res) {
    std::string body = req.body;
    body.insert(body.rfind('}'), (body.size() > 2 ? "," : "") + member);
    res.set_content(body, "application/json");
  };
}

class pipeline_http_test : public ::testing::Test {
 protected:
  void SetUp() override {
    _broker = std::make_unique<test::broker_process>(
        _dir.path(), admin_token,
        std::vector<std::string>{"--shards", "2", "--webhook-initial-backoff-ms", "20", "--webhook-max-attempts",
                                 "6", "--webhook-breaker-failures", "0"});
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
  std::unique_ptr<subscription> sub(const std::string& pattern) {
    auto s = _client->subscribe(pattern, nullptr);
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message);
    return s ? std::move(*s) : nullptr;
  }
  static message next(subscription& s, std::chrono::milliseconds timeout = 10s) {
    auto m = s.next(timeout);
    EXPECT_TRUE(m.has_value() && m->has_value()) << "no event in time";
    return m && *m ? **m : message{};
  }
  std::uint64_t publish(const std::string& channel, const std::string& payload) {
    auto r = _client->publish_sync(channel, payload, 10s);
    EXPECT_TRUE(r.has_value()) << channel << ": " << (r ? "" : r.error().message);
    return r ? r->seq : 0;
  }
  std::string metrics() {
    auto m = _http->Get("/metrics");
    return m ? m->body : std::string();
  }

  test::temp_dir _dir;
  std::unique_ptr<test::broker_process> _broker;
  std::unique_ptr<httplib::Client> _http;
  std::shared_ptr<client> _client;
};

TEST_F(pipeline_http_test, webhook_is_signed_and_retried_until_delivered_once) {
  test::webhook_receiver rx;
  rx.script("/hook", {test::answer(500), test::answer(500), test::answer(503)});
  put("wh.calls", R"({"webhook":[{"name":"crm","url":")" + rx.url("/hook") + R"(","secret":"whsec"}]})");
  const auto seq = publish("wh.calls", R"({"call_sid":"CA1"})");
  ASSERT_TRUE(rx.wait_for_count("/hook", 4));
  const auto all = rx.requests("/hook");
  ASSERT_EQ(all.size(), 4u);
  const auto& last = all.back();
  EXPECT_EQ(last.answered, 200);
  EXPECT_EQ(last.body, R"({"call_sid":"CA1"})");
  EXPECT_EQ(last.header("Switchboard-Attempt"), "4");
  EXPECT_EQ(last.header("Switchboard-Channel"), "wh.calls");
  const auto id = last.header("Switchboard-Event-Id");
  EXPECT_TRUE(id.starts_with("wh.calls@") && id.ends_with(":" + std::to_string(seq))) << id;
  for (const auto& r : all) EXPECT_EQ(r.header("Switchboard-Event-Id"), id) << "one id across retries";
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_EQ(http_client::verify(last.header("Switchboard-Signature"), "whsec", last.body, now),
            http_client::verify_result::ok)
      << last.header("Switchboard-Signature");
  // Exactly once more after the failures: nothing else arrives (a marker event goes through first).
  publish("wh.calls", R"({"marker":1})");
  ASSERT_TRUE(rx.wait_for_count("/hook", 5));
  EXPECT_EQ(rx.count("/hook"), 5u);
  EXPECT_NE(metrics().find("switchboard_pipeline_webhook_events_total 2"), std::string::npos);
}

TEST_F(pipeline_http_test, a_sink_that_never_answers_does_not_delay_subscribers) {
  test::webhook_receiver rx;
  rx.script("/hang", {}, [] {
    test::scripted_answer a;
    a.hang = true;
    return a;
  }());
  put("slow.sink", R"({"webhook":[{"name":"dead","url":")" + rx.url("/hang") + R"(","timeout_ms":5000}]})");
  auto s = sub("slow.sink");
  auto plain = sub("slow.plain");
  // The same 20 events on a channel without webhook and on the one whose sink hangs: the
  // subscriber latency (publish -> receive) is of the same order.
  auto run = [&](const std::string& channel, subscription& on) {
    std::chrono::nanoseconds worst{0};
    for (int i = 0; i < 20; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      publish(channel, R"({"n":)" + std::to_string(i) + "}");
      (void)next(on);
      worst = std::max(worst, std::chrono::steady_clock::now() - t0);
    }
    return worst;
  };
  const auto without = run("slow.plain", *plain);
  const auto with = run("slow.sink", *s);
  EXPECT_LT(with, without + 500ms) << "a hanging sink must not slow delivery to subscribers";
  EXPECT_LT(with, 2s) << "far below the sink's 5 s timeout";
  ASSERT_TRUE(rx.wait_for_count("/hang", 1));
  rx.release();
}

TEST_F(pipeline_http_test, a_sink_down_longer_than_the_budget_is_dead_lettered_and_redriven) {
  int port = 0;
  {
    test::webhook_receiver probe;  // a free port nobody listens on once it is gone
    port = probe.port();
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/in";
  put("dl.calls", R"({"webhook":[{"name":"erp","url":")" + url + R"(","timeout_ms":1000}]})");
  publish("dl.calls", R"({"call_sid":"CA9"})");
  // 6 attempts, 20 ms doubling with jitter: dead-lettered within a few seconds.
  std::string listing;
  for (auto end = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < end;) {
    auto r = _http->Get("/v1/webhooks/dead-letters");
    ASSERT_TRUE(r);
    if (r->status == 200 && r->body.find("CA9") != std::string::npos) {
      listing = r->body;
      break;
    }
    std::this_thread::sleep_for(20ms);  // polling the API; nothing to wait on from outside
  }
  ASSERT_FALSE(listing.empty()) << "no dead letter within 30 s";
  EXPECT_NE(listing.find(R"("sink":"erp")"), std::string::npos) << listing;
  EXPECT_NE(listing.find(R"("attempts":6)"), std::string::npos) << listing;
  const auto id_at = listing.find(R"("id":")") + 6;
  const std::string id = listing.substr(id_at, listing.find('"', id_at) - id_at);
  // The receiver comes back; redrive delivers the event once and removes the dead letter.
  test::webhook_receiver back(port);
  auto r = _http->Post("/v1/webhooks/dead-letters/" + id + "/redrive", "", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 202) << r->body;
  ASSERT_TRUE(back.wait_for_count("/in", 1));
  EXPECT_EQ(back.requests("/in").front().body, R"({"call_sid":"CA9"})");
  for (auto end = std::chrono::steady_clock::now() + 10s;;) {
    auto l = _http->Get("/v1/webhooks/dead-letters");
    ASSERT_TRUE(l);
    if (l->body.find("CA9") == std::string::npos) break;
    ASSERT_LT(std::chrono::steady_clock::now(), end) << l->body;
    std::this_thread::sleep_for(20ms);
  }
  auto missing = _http->Post("/v1/webhooks/dead-letters/" + id + "/redrive", "", "application/json");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404) << missing->body;
}

TEST_F(pipeline_http_test, delegates_enrich_drop_and_switch_stages_off_for_one_event) {
  delegate_server d;
  d.on("/enrich", add_member(R"("crm":"gold")"));
  d.on("/gate", [](const httplib::Request& req, httplib::Response& res) {
    if (req.body.find(R"("spam":true)") != std::string::npos) {
      res.status = 204;
      return;
    }
    std::string body = req.body;
    if (req.body.find(R"("quiet":true)") != std::string::npos) {
      body.insert(body.rfind('}'), R"(,"_switchboard":{"route":false,"webhook":[]})");
    }
    res.set_content(body, "application/json");
  });
  test::webhook_receiver rx;
  put("dg.calls", R"({"delegate":{"uris":[")" + d.url("/enrich") + R"(",")" + d.url("/gate") +
                      R"("],"mode":"sequential"},"route":["dg.audit"],"webhook":[{"name":"crm","url":")" +
                      rx.url("/hook") + R"("}]})");
  auto calls = sub("dg.calls");
  auto audit = sub("dg.audit");
  publish("dg.calls", R"({"n":1})");
  EXPECT_EQ(next(*calls).payload, R"({"n":1,"crm":"gold"})");
  EXPECT_EQ(next(*audit).payload, R"({"n":1,"crm":"gold"})");
  ASSERT_TRUE(rx.wait_for_count("/hook", 1));
  EXPECT_EQ(rx.requests("/hook").front().body, R"({"n":1,"crm":"gold"})");

  // 204 from the second delegate: dropped, the publisher is told, nobody receives it.
  auto dropped = _client->publish_sync("dg.calls", R"({"n":2,"spam":true})", 10s);
  ASSERT_FALSE(dropped.has_value());
  EXPECT_EQ(dropped.error().broker_code, "event_dropped");
  EXPECT_EQ(dropped.error().message, "the channel's delegate dropped the event");

  // Metadata: route and webhooks off for this event only; the metadata itself is removed.
  publish("dg.calls", R"({"n":3,"quiet":true})");
  EXPECT_EQ(next(*calls).payload, R"({"n":3,"quiet":true,"crm":"gold"})");
  publish("dg.calls", R"({"n":4})");
  EXPECT_EQ(next(*calls).payload, R"({"n":4,"crm":"gold"})");
  EXPECT_EQ(next(*audit).payload, R"({"n":4,"crm":"gold"})") << "event 3 was not routed";
  ASSERT_TRUE(rx.wait_for_count("/hook", 2));
  const auto hooks = rx.requests("/hook");
  EXPECT_EQ(hooks.back().body, R"({"n":4,"crm":"gold"})") << "event 3 had no webhook";
  EXPECT_EQ(hooks.size(), 2u);
}

TEST_F(pipeline_http_test, delegate_failure_policies_and_timeouts) {
  delegate_server d;
  d.on("/slow", [](const httplib::Request& req, httplib::Response& res) {
    std::this_thread::sleep_for(1500ms);
    res.set_content(req.body, "application/json");
  });
  d.on("/broken", [](const httplib::Request&, httplib::Response& res) { res.status = 500; });
  const auto cfg = [&](const std::string& uri, const std::string& policy) {
    return R"({"delegate":{"uris":[")" + d.url(uri) + R"("],"timeout_ms":300,"on_failure":")" + policy + R"("}})";
  };
  put("fp.pass", cfg("/slow", "pass"));
  put("fp.drop", cfg("/broken", "drop"));
  put("fp.dead", cfg("/slow", "dead_letter"));
  auto pass = sub("fp.pass");
  const auto t0 = std::chrono::steady_clock::now();
  publish("fp.pass", R"({"n":1})");
  EXPECT_EQ(next(*pass).payload, R"({"n":1})") << "passed on unchanged after the timeout";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1400ms) << "a timeout costs at most its 300 ms";

  auto drop = _client->publish_sync("fp.drop", R"({"n":2})", 10s);
  ASSERT_FALSE(drop.has_value());
  EXPECT_EQ(drop.error().broker_code, "event_dropped");
  EXPECT_EQ(drop.error().message, "the delegate failed and the event was dropped: delegate \"" + d.url("/broken") +
                                      "\" answered 500");

  auto dead = _client->publish_sync("fp.dead", R"({"n":3})", 10s);
  ASSERT_FALSE(dead.has_value());
  EXPECT_EQ(dead.error().broker_code, "event_dropped");
  EXPECT_TRUE(dead.error().message.starts_with("the delegate failed and the event was dead-lettered: delegate \"" +
                                               d.url("/slow") + "\" timed out"))
      << dead.error().message;
  for (auto end = std::chrono::steady_clock::now() + 10s;
       metrics().find("switchboard_pipeline_dead_letters_total 1") == std::string::npos;) {
    ASSERT_LT(std::chrono::steady_clock::now(), end) << "the dead letter was not stored";
    std::this_thread::sleep_for(20ms);
  }
  // The broker keeps serving everything else meanwhile.
  auto other = sub("fp.other");
  publish("fp.other", R"({"ok":true})");
  EXPECT_EQ(next(*other).payload, R"({"ok":true})");
}

TEST_F(pipeline_http_test, a_channel_keeps_its_order_while_its_delegate_calls_overlap) {
  delegate_server d;
  std::atomic<int> in_flight{0}, peak{0};
  d.on("/jitter", [&](const httplib::Request& req, httplib::Response& res) {
    const int now = ++in_flight;
    for (int p = peak.load(); now > p && !peak.compare_exchange_weak(p, now);) {
    }
    thread_local std::mt19937 rng(std::random_device{}());
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 30));
    --in_flight;
    res.set_content(req.body, "application/json");
  });
  put("ord.calls", R"({"delegate":{"uris":[")" + d.url("/jitter") + R"("]}})");
  auto s = sub("ord.calls");
  constexpr int n = 100;
  for (int i = 0; i < n; ++i) {
    auto ok = _client->publish("ord.calls", R"({"n":)" + std::to_string(i) + "}");
    ASSERT_TRUE(ok.has_value());
  }
  for (int i = 0; i < n; ++i) {
    auto m = next(*s);
    EXPECT_EQ(m.payload, R"({"n":)" + std::to_string(i) + "}");
    EXPECT_EQ(m.seq, static_cast<std::uint64_t>(i + 1));
  }
  EXPECT_GT(peak.load(), 1) << "delegate calls of one channel overlap";
}

}  // namespace
}  // namespace switchboard
