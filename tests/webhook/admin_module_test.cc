// The /v1/webhooks admin routes, called directly through the route module's handler: exact JSON
// bodies and errors, scopes, and a redrive that delivers to a real receiver.
#include "broker/webhook/admin_module.h"

#include <gtest/gtest.h>

#include <thread>

#include "broker/webhook/dead_letter.h"
#include "webhook/receiver.h"

namespace switchboard::webhook {
namespace {

using namespace std::chrono_literals;

class AdminModuleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    http_client::options o;
    o.max_in_flight = 64;
    auto c = http_client::client::create(o);
    ASSERT_TRUE(c);
    http = std::move(*c);
    http->start();
    auto s = store::store::open_memory();
    ASSERT_TRUE(s);
    memory = std::move(*s);
    dispatcher_options opts;
    opts.initial_backoff = 1ms;
    opts.max_backoff = 1ms;
    opts.jitter = 0;
    opts.find_sink = [this](std::string_view channel, std::string_view name) -> std::shared_ptr<const sink> {
      return channel == "acme.orders" && name == "crm" ? target : nullptr;
    };
    d = std::make_unique<dispatcher>(*http, memory.get(), opts);
    d->start();
    module = make_admin_module(*d);
    auto t = std::make_shared<sink>();
    t->name = "crm";
    t->url = receiver.url("/in");
    target = t;
  }

  struct answer {
    int status = 0;
    std::string code;
    std::string body;  // the JSON body on success, the message on an error
  };

  answer call(std::string method, std::string target_path, auth::principal who = admin()) {
    admin::http_request req;
    req.method = std::move(method);
    req.target = std::move(target_path);
    const std::string_view path = req.path();
    const admin::module_request r{req, who, path.substr(module.prefix.size())};
    auto result = module.handle(r);
    if (!result) return {result.error().status, result.error().code, result.error().message};
    return {result->status, "", result->body};
  }

  static auth::principal admin() { return {"admin", "*", true, true, true}; }

  // A stored webhook dead letter for sink crm, as the dispatcher writes it.
  std::string store_dead_letter(std::uint64_t seq) {
    dead_letter dl;
    dl.id =
        new_dead_letter_id(std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000)), seq);
    dl.channel = "acme.orders";
    dl.sink = "crm";
    dl.url = target->url;
    dl.event_id = event_id("acme.orders", 1, seq);
    dl.epoch = 1;
    dl.seq = seq;
    dl.attempts = 3;
    dl.last_status = 503;
    dl.last_error = "HTTP 503";
    dl.reason = "retry budget exhausted";
    dl.failed_at = "2023-11-14T22:13:20.000Z";
    dl.body = "{}";
    EXPECT_TRUE(memory->put_config(store::kind::dead_letters, "webhook/" + dl.id, to_json(dl)));
    return dl.id;
  }

  test::webhook_receiver receiver;
  std::unique_ptr<http_client::client> http;
  std::unique_ptr<store::store> memory;
  std::shared_ptr<const sink> target;
  std::unique_ptr<dispatcher> d;
  admin::route_module module;
};

TEST_F(AdminModuleTest, ModuleShape) {
  EXPECT_EQ(module.prefix, "/v1/webhooks");
  EXPECT_EQ(module.methods, (std::vector<std::string>{"GET", "POST", "DELETE"}));
  EXPECT_FALSE(module.is_public);
  EXPECT_FALSE(module.on_io_thread);  // it reads and writes the store
  ASSERT_TRUE(module.metrics);
  EXPECT_NE(module.metrics().find("# TYPE switchboard_webhook_deliveries_total counter"), std::string::npos);
}

TEST_F(AdminModuleTest, NeedsTheAdminScope) {
  const auto a = call("GET", "/v1/webhooks/sinks", {"reader", "acme", false, false, true});
  EXPECT_EQ(a.status, 403);
  EXPECT_EQ(a.code, "forbidden");
  EXPECT_EQ(a.body, "token \"reader\" lacks the admin scope");
}

TEST_F(AdminModuleTest, ListsDeadLettersOfWebhooksOnly) {
  ASSERT_TRUE(memory->put_config(store::kind::dead_letters, "sub-1", R"({"subscription":"s"})"));
  EXPECT_EQ(call("GET", "/v1/webhooks/dead-letters").body, "[]");
  const std::string id = store_dead_letter(7);
  const auto a = call("GET", "/v1/webhooks/dead-letters");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, "[" + *memory->get_config(store::kind::dead_letters, "webhook/" + id).value() + "]");
  EXPECT_EQ(call("GET", "/v1/webhooks/dead-letters?channel=acme.orders").body, a.body);
  EXPECT_EQ(call("GET", "/v1/webhooks/dead-letters?channel=other").body, "[]");
}

TEST_F(AdminModuleTest, UnknownIdsAnswerNotFound) {
  auto a = call("POST", "/v1/webhooks/dead-letters/nope/redrive");
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(a.code, "not_found");
  EXPECT_EQ(a.body, "dead letter \"nope\" does not exist");
  a = call("DELETE", "/v1/webhooks/dead-letters/nope");
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(a.body, "dead letter \"nope\" does not exist");
  a = call("POST", "/v1/webhooks/dead-letters/..%2Fx/redrive");
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(a.code, "not_found");
  a = call("GET", "/v1/webhooks/nothing");
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(a.body, "no webhook resource \"/v1/webhooks/nothing\"");
}

TEST_F(AdminModuleTest, WrongMethodsAnswer405) {
  auto a = call("POST", "/v1/webhooks/sinks");
  EXPECT_EQ(a.status, 405);
  EXPECT_EQ(a.code, "method_not_allowed");
  EXPECT_EQ(a.body, "POST is not allowed here; allowed: GET");
  a = call("GET", "/v1/webhooks/dead-letters/x/redrive");
  EXPECT_EQ(a.body, "GET is not allowed here; allowed: POST");
  a = call("POST", "/v1/webhooks/dead-letters/x");
  EXPECT_EQ(a.body, "POST is not allowed here; allowed: DELETE");
}

TEST_F(AdminModuleTest, RedriveDeliversAndRemovesTheDeadLetter) {
  const std::string id = store_dead_letter(3);
  const auto a = call("POST", "/v1/webhooks/dead-letters/" + id + "/redrive");
  EXPECT_EQ(a.status, 202);
  EXPECT_EQ(a.body, R"({"id":")" + id + R"(","status":"queued"})");
  ASSERT_TRUE(receiver.wait_for_count("/in", 1));
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (call("GET", "/v1/webhooks/dead-letters").body != "[]" && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_EQ(call("GET", "/v1/webhooks/dead-letters").body, "[]");
  EXPECT_EQ(receiver.requests("/in").at(0).header("Switchboard-Event-Id"), "acme.orders@0000000000000001:3");
  const auto sinks = call("GET", "/v1/webhooks/sinks");
  EXPECT_EQ(sinks.status, 200);
  EXPECT_EQ(sinks.body,
            R"([{"channel":"acme.orders","name":"crm","url":")" + target->url +
                R"(","breaker":"closed","deliveries":1,"retries":0,"failures":0,"dead_letters":0,)"
                R"("in_flight":0,"queued":0,"last_status":0,"last_error":""}])");
}

TEST_F(AdminModuleTest, RedriveOfAnUnconfiguredSinkIsAConflict) {
  dead_letter dl = *parse_dead_letter(
      *memory->get_config(store::kind::dead_letters, "webhook/" + store_dead_letter(1)).value());
  dl.id = "orphan";
  dl.sink = "gone";
  ASSERT_TRUE(memory->put_config(store::kind::dead_letters, "webhook/orphan", to_json(dl)));
  const auto a = call("POST", "/v1/webhooks/dead-letters/orphan/redrive");
  EXPECT_EQ(a.status, 409);
  EXPECT_EQ(a.code, "conflict");
  EXPECT_EQ(a.body, "sink \"gone\" is not configured on channel \"acme.orders\"");
}

TEST_F(AdminModuleTest, DeleteRemovesIt) {
  const std::string id = store_dead_letter(4);
  const auto a = call("DELETE", "/v1/webhooks/dead-letters/" + id);
  EXPECT_EQ(a.status, 204);
  EXPECT_EQ(call("GET", "/v1/webhooks/dead-letters").body, "[]");
}

TEST_F(AdminModuleTest, StoppedDispatcherAnswersUnavailable) {
  const std::string id = store_dead_letter(5);
  d->stop();
  const auto a = call("POST", "/v1/webhooks/dead-letters/" + id + "/redrive");
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(a.code, "unavailable");
  EXPECT_EQ(a.body, "the broker is stopping");
}

}  // namespace
}  // namespace switchboard::webhook
