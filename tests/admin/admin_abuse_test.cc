// Hostile clients against the real broker binary's admin API (GitHub issue 14): deeply nested JSON
// bodies, slow/silent/idle connections that used to hold the whole thread pool, and a second broker
// on the same admin port. Ephemeral ports and temp data dirs; the only pacing is the trickle attack
// itself (one byte per second, bounded).
#include <gtest/gtest.h>
#include <httplib.h>
#include <rapidjson/document.h>

#include <cstdio>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "admin/tcp_peer.h"
#include "support/broker_process.h"

namespace switchboard {
namespace {

using namespace std::chrono_literals;
using test::tcp_peer;

constexpr const char* admin_token = "t0k";

std::uint16_t port_of(const std::string& url) {
  return static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
}

class admin_abuse_test : public ::testing::Test {
 protected:
  void SetUp() override {
    _broker = std::make_unique<test::broker_process>(_dir.path(), admin_token, std::vector<std::string>{"--shards", "1"});
    ASSERT_TRUE(_broker->ok()) << _broker->stderr_text();
    _port = port_of(_broker->admin_url);
  }

  // GET /healthz on a fresh connection: the status line, and how long the answer took.
  std::pair<std::string, std::chrono::steady_clock::duration> probe() {
    const auto t0 = std::chrono::steady_clock::now();
    tcp_peer p(_port);
    if (!p.connected()) return {"no connection", {}};
    p.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    const std::string r = p.read_response(5s);
    return {r.substr(0, r.find("\r\n")), std::chrono::steady_clock::now() - t0};
  }

  struct reply {
    int status = 0;
    std::string code;
    std::string message;
  };
  reply post(const std::string& method, const std::string& path, const std::string& body) {
    httplib::Client cli(_broker->admin_url);
    cli.set_read_timeout(20);
    cli.set_bearer_token_auth(admin_token);
    auto r = method == "PUT" ? cli.Put(path, body, "application/json") : cli.Post(path, body, "application/json");
    reply out;
    if (!r) return out;
    out.status = r->status;
    rapidjson::Document d;
    d.Parse(r->body.c_str(), r->body.size());
    if (d.IsObject() && d.HasMember("error")) {
      out.code = d["error"]["code"].GetString();
      out.message = d["error"]["message"].GetString();
    }
    return out;
  }

  test::temp_dir _dir;
  std::unique_ptr<test::broker_process> _broker;
  std::uint16_t _port = 0;
};

TEST_F(admin_abuse_test, deeply_nested_json_is_400_and_the_broker_keeps_serving) {
  const std::string deep(200'000, '[');
  const std::string expected = "invalid JSON at byte 1024: nested deeper than 1024 levels";
  const auto events = post("POST", "/v1/channels/x.y/events", deep);
  EXPECT_EQ(events.status, 400);
  EXPECT_EQ(events.code, "invalid_json");
  EXPECT_EQ(events.message, expected);
  const auto subs = post("POST", "/v1/subscriptions", deep);
  EXPECT_EQ(subs.status, 400);
  EXPECT_EQ(subs.code, "invalid_json");
  EXPECT_EQ(subs.message, expected);
  // Channel configs are parsed by the broker (broker/channels), which caps nesting too.
  const auto config = post("PUT", "/v1/channels/x.y", deep);
  EXPECT_EQ(config.status, 400);
  EXPECT_EQ(config.code, "invalid_json");
  EXPECT_EQ(config.message, "invalid JSON at byte 1024: nesting deeper than 1024 levels");
  // Well-formed but too deep: the same limit simdjson applies.
  const std::string balanced = std::string(1025, '[') + std::string(1025, ']');
  EXPECT_EQ(post("POST", "/v1/channels/x.y/events", balanced).message, expected);
  EXPECT_EQ(post("POST", "/v1/channels/x.y/events", std::string(1024, '[') + std::string(1024, ']')).status, 202);
  EXPECT_EQ(probe().first, "HTTP/1.1 200 OK");
}

TEST_F(admin_abuse_test, slow_silent_and_idle_clients_do_not_delay_healthz) {
  // 1 000 idle keep-alive connections (each made one request), 64 silent half-requests, 4 tricklers.
  std::vector<tcp_peer> idle;
  for (int i = 0; i < 1000; ++i) {
    idle.emplace_back(_port);
    ASSERT_TRUE(idle.back().send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_NE(idle.back().read_response(5s).find("200 OK"), std::string::npos) << "idle client " << i;
  }
  std::vector<tcp_peer> half;
  for (int i = 0; i < 64; ++i) {
    half.emplace_back(_port);
    ASSERT_TRUE(half.back().send("POST /v1/channels/x.y/events HTTP/1.1\r\nHost: t\r\nContent-Le"));
  }
  std::vector<tcp_peer> tricklers;
  for (int i = 0; i < 4; ++i) {
    tricklers.emplace_back(_port);
    ASSERT_TRUE(tricklers.back().send("G"));
  }
  const std::string rest = "ET /healthz HTTP/1.1\r\nHost: t\r\n";
  for (std::size_t second = 0; second < 3; ++second) {
    for (auto& t : tricklers) EXPECT_TRUE(t.send(rest.substr(second, 1)));
    const auto [status, latency] = probe();
    std::printf("healthz with 1068 hostile connections open: %lld us\n", static_cast<long long>(latency / 1us));
    EXPECT_EQ(status, "HTTP/1.1 200 OK");
    EXPECT_LT(latency, 1s) << "healthz took " << latency / 1ms << " ms with 1068 hostile connections open";
    // The trickle attack's pace: the next byte about a second later (bounded: 3 bytes in all).
    for (auto& t : tricklers) EXPECT_FALSE(t.closed_within(250ms));
  }
  // And an authenticated request still reaches a worker.
  httplib::Client cli(_broker->admin_url);
  cli.set_bearer_token_auth(admin_token);
  const auto list = cli.Get("/v1/channels");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->status, 200);
}

TEST_F(admin_abuse_test, second_broker_on_the_same_admin_port_exits_1_naming_it) {
  test::temp_dir other_dir;
  test::child_process second({SWITCHBOARD_BROKER_PATH, "--data-dir", other_dir.path(), "--bind", "tcp://127.0.0.1:*",
                              "--admin-port", std::to_string(_port), "--admin-token", admin_token, "--log-level",
                              "warn"});
  EXPECT_EQ(second.wait(20s), 1) << second.stderr_text;
  EXPECT_NE(second.stderr_text.find("127.0.0.1:" + std::to_string(_port)), std::string::npos) << second.stderr_text;
  EXPECT_NE(second.stderr_text.find("in use"), std::string::npos) << second.stderr_text;
  EXPECT_EQ(probe().first, "HTTP/1.1 200 OK");  // the first broker is unaffected
}

}  // namespace
}  // namespace switchboard
