// The admin API's event-driven HTTP server (broker/admin/http_server.cc) in-process, behind a real
// admin_server with an in-memory `control`: timeouts with short configured values, the connection
// limit, /healthz while every worker is busy, the exclusive port, and the streaming-response API
// (test-only stream route registered through admin_server::start). Raw TCP peers send exactly the
// bytes slow or silent clients would; waits are bounded reads, never sleeps.
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "admin/memory_control.h"
#include "admin/tcp_peer.h"
#include "broker/admin/admin_server.h"

namespace switchboard {
namespace {

using namespace std::chrono_literals;
using admin::admin_options;
using admin::admin_server;
using test::tcp_peer;

constexpr const char* token = "s3cret";

std::string get(std::string_view path, std::string_view extra = "") {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: t\r\n" + std::string(extra) + "\r\n";
}

// The value of one metric line ("name{labels} value") in Prometheus text, or -1.
long metric(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stol(text.substr(at + series.size() + 2));
}

class http_server_test : public ::testing::Test {
 protected:
  void start(admin_options o = {}, bool with_token = false, std::vector<admin::stream_route> streams = {}) {
    o.port = 0;
    if (with_token) {
      auto t = auth::token_table::make(token, {});
      ASSERT_TRUE(t) << t.error();
      _tokens = std::move(*t);
    }
    auto s = admin_server::start(o, _tokens, _ctl, std::move(streams));
    ASSERT_TRUE(s) << s.error();
    _srv = std::move(*s);
  }
  long metric(const std::string& series) { return switchboard::metric("\n" + _srv->metrics_text(), series); }
  // Polls a metric (a probe, bounded) until it equals `n`: the server counts a timeout right after
  // closing the socket, so the client may see the close first.
  bool metric_becomes(const std::string& series, long n, std::chrono::milliseconds timeout = 3s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (metric(series) != n) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::yield();
    }
    return true;
  }
  // Polls the open-connections gauge (a probe, bounded) until it equals `n`.
  bool connections_become(long n, std::chrono::milliseconds timeout = 3s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (metric("switchboard_admin_connections") == n) return true;
      std::this_thread::yield();
    }
    return false;
  }

  test::memory_control _ctl;
  auth::token_table _tokens;
  std::unique_ptr<admin_server> _srv;
};

TEST_F(http_server_test, trickled_header_is_closed_by_the_header_timeout) {
  admin_options o;
  o.header_timeout = 300ms;
  start(o);
  tcp_peer slow(_srv->port());
  ASSERT_TRUE(slow.connected());
  // The attack itself is a trickle: one byte per 100 ms, bounded to 3 s.
  const std::string request = get("/healthz");
  const auto began = std::chrono::steady_clock::now();
  bool closed = false;
  for (std::size_t i = 0; i < 30 && !closed; ++i) {
    if (!slow.send(request.substr(i % request.size(), 1))) break;
    closed = slow.closed_within(100ms);
  }
  closed = closed || slow.closed_within(1s);
  EXPECT_TRUE(closed) << "still open after " << (std::chrono::steady_clock::now() - began) / 1ms << " ms";
  EXPECT_TRUE(metric_becomes("switchboard_admin_timeouts_total{phase=\"header\"}", 1));
}

TEST_F(http_server_test, silent_half_request_is_closed_by_the_header_timeout) {
  admin_options o;
  o.header_timeout = 200ms;
  start(o);
  tcp_peer half(_srv->port());
  ASSERT_TRUE(half.send("GET /healthz HTTP/1.1\r\nHost: t\r\n"));
  EXPECT_TRUE(half.closed_within(3s));
  EXPECT_EQ(half.received(), "");  // closed without an answer
  EXPECT_TRUE(metric_becomes("switchboard_admin_timeouts_total{phase=\"header\"}", 1));
}

TEST_F(http_server_test, idle_keep_alive_connection_is_closed_by_the_idle_timeout) {
  admin_options o;
  o.idle_timeout = 200ms;
  start(o);
  tcp_peer idle(_srv->port());
  ASSERT_TRUE(idle.send(get("/healthz")));
  const std::string r = idle.read_response(3s);
  EXPECT_NE(r.find("HTTP/1.1 200 OK"), std::string::npos) << r;
  EXPECT_NE(r.find(R"({"status":"ok"})"), std::string::npos) << r;
  EXPECT_TRUE(idle.closed_within(3s));
  EXPECT_TRUE(metric_becomes("switchboard_admin_timeouts_total{phase=\"idle\"}", 1));
  EXPECT_EQ(metric("switchboard_admin_timeouts_total{phase=\"header\"}"), 0);
}

TEST_F(http_server_test, slow_body_is_closed_by_the_body_timeout) {
  admin_options o;
  o.body_timeout = 200ms;
  start(o);
  tcp_peer slow(_srv->port());
  ASSERT_TRUE(slow.send("PUT /v1/channels/a.b HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"dura"));
  EXPECT_TRUE(slow.closed_within(3s));
  EXPECT_TRUE(metric_becomes("switchboard_admin_timeouts_total{phase=\"body\"}", 1));
}

TEST_F(http_server_test, connections_over_the_limit_get_503_and_are_closed) {
  admin_options o;
  o.max_connections = 2;
  start(o);
  std::vector<tcp_peer> held;
  for (int i = 0; i < 2; ++i) {
    held.emplace_back(_srv->port());
    ASSERT_TRUE(held.back().send(get("/healthz")));
    ASSERT_NE(held.back().read_response(3s).find("200 OK"), std::string::npos);
  }
  tcp_peer third(_srv->port());
  const std::string r = third.read_response(3s);
  EXPECT_NE(r.find("HTTP/1.1 503"), std::string::npos) << r;
  EXPECT_NE(r.find(R"("code":"too_many_connections")"), std::string::npos) << r;
  EXPECT_TRUE(third.closed_within(3s));
  EXPECT_EQ(metric("switchboard_admin_connections_rejected_total"), 1);
  EXPECT_EQ(metric("switchboard_admin_connections"), 2);
  // A slot frees when a connection closes.
  held.pop_back();
  ASSERT_TRUE(connections_become(1));
  tcp_peer fourth(_srv->port());
  ASSERT_TRUE(fourth.send(get("/healthz")));
  EXPECT_NE(fourth.read_response(3s).find("200 OK"), std::string::npos);
}

TEST_F(http_server_test, healthz_answers_while_every_worker_is_busy) {
  start();
  _ctl.close_gate();
  const std::string publish =
      "POST /v1/channels/a.b/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
      "Content-Length: 2\r\n\r\n{}";
  std::vector<tcp_peer> busy;
  for (unsigned i = 0; i < admin_server::worker_threads + 1; ++i) {  // one more than there are workers
    busy.emplace_back(_srv->port());
    ASSERT_TRUE(busy.back().send(publish));
  }
  ASSERT_TRUE(_ctl.wait_for_waiting(admin_server::worker_threads, 5s));

  const auto t0 = std::chrono::steady_clock::now();
  tcp_peer probe(_srv->port());
  ASSERT_TRUE(probe.send(get("/healthz")));
  const std::string r = probe.read_response(5s);
  const auto latency = std::chrono::steady_clock::now() - t0;
  EXPECT_NE(r.find("HTTP/1.1 200 OK"), std::string::npos) << r;
  EXPECT_LT(latency, 1s);

  _ctl.open_gate();
  for (auto& p : busy) EXPECT_NE(p.read_response(5s).find("HTTP/1.1 202"), std::string::npos);
  // Every control call ran on a numbered worker, never on the io thread.
  EXPECT_FALSE(_ctl.saw_non_worker());
  for (const unsigned w : _ctl.workers_seen()) EXPECT_LT(w, admin_server::worker_threads);
  EXPECT_EQ(_ctl.workers_seen().size(), admin_server::worker_threads);
}

TEST_F(http_server_test, oversized_body_is_413_before_authentication) {
  admin_options o;
  o.max_body_bytes = 1000;
  start(o, /*with_token=*/true);
  tcp_peer by_length(_srv->port());
  ASSERT_TRUE(by_length.send("PUT /v1/channels/a.b HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n"));
  const std::string r = by_length.read_response(3s);
  EXPECT_NE(r.find("HTTP/1.1 413"), std::string::npos) << r;
  EXPECT_NE(r.find(R"({"error":{"code":"payload_too_large","message":"request body exceeds 1000 bytes"}})"),
            std::string::npos)
      << r;
  tcp_peer chunked(_srv->port());
  ASSERT_TRUE(chunked.send("PUT /v1/channels/a.b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "3e9\r\n" + std::string(1001, ' ') + "\r\n0\r\n\r\n"));
  EXPECT_NE(chunked.read_response(3s).find("HTTP/1.1 413"), std::string::npos);
  // Without a token but within the limit: 401.
  tcp_peer small(_srv->port());
  ASSERT_TRUE(small.send("PUT /v1/channels/a.b HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}"));
  EXPECT_NE(small.read_response(3s).find("HTTP/1.1 401"), std::string::npos);
}

TEST_F(http_server_test, malformed_request_is_400_bad_request) {
  start();
  tcp_peer bad(_srv->port());
  ASSERT_TRUE(bad.send("GET /healthz HTTP/1.1\r\nHost t\r\n\r\n"));
  const std::string r = bad.read_response(3s);
  EXPECT_NE(r.find("HTTP/1.1 400"), std::string::npos) << r;
  EXPECT_NE(r.find(R"("code":"bad_request")"), std::string::npos) << r;
  EXPECT_TRUE(bad.closed_within(3s));
}

TEST_F(http_server_test, oversized_header_is_431) {
  start();
  tcp_peer big(_srv->port());
  ASSERT_TRUE(big.send("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: " + std::string(17 * 1024, 'x') + "\r\n\r\n"));
  const std::string r = big.read_response(3s);
  EXPECT_NE(r.find("HTTP/1.1 431"), std::string::npos) << r.substr(0, 200);
  EXPECT_NE(r.find(R"({"error":{"code":"header_too_large","message":"request header exceeds 16384 bytes"}})"),
            std::string::npos)
      << r.substr(0, 200);
}

TEST_F(http_server_test, expect_100_continue_and_head_are_honoured) {
  start();
  tcp_peer p(_srv->port());
  ASSERT_TRUE(p.send("PUT /v1/channels/a.b HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"));
  p.read_until("\r\n\r\n", 3s);
  EXPECT_EQ(p.received(), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(p.send("{}"));
  p.read_until("}}", 3s);
  EXPECT_NE(p.received().find("HTTP/1.1 200 OK"), std::string::npos) << p.received();
  tcp_peer head(_srv->port());
  ASSERT_TRUE(head.send("HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
  head.read_until("\r\n\r\n", 3s);
  EXPECT_NE(head.received().find("Content-Length: 15\r\n"), std::string::npos) << head.received();
  EXPECT_TRUE(head.received().ends_with("\r\n\r\n")) << head.received();  // no body
}

TEST_F(http_server_test, second_server_on_the_same_port_fails_naming_it) {
  start();
  admin_options o;
  o.port = _srv->port();
  auto second = admin_server::start(o, _tokens, _ctl);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().find("127.0.0.1:" + std::to_string(_srv->port())), std::string::npos) << second.error();
  EXPECT_NE(second.error().find("in use"), std::string::npos) << second.error();
}

TEST_F(http_server_test, binds_a_host_name_and_refuses_an_unknown_one) {
  admin_options o;
  o.bind = "localhost";
  start(o);  // 127.0.0.1 or ::1, whichever the resolver lists first
  EXPECT_EQ(_srv->url(), "http://localhost:" + std::to_string(_srv->port()));
  admin_options bad;
  bad.bind = "no-such-host.invalid";
  bad.port = 0;
  auto s = admin_server::start(bad, _tokens, _ctl);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), "admin API cannot listen on no-such-host.invalid:0: cannot resolve no-such-host.invalid");
}

// The test-only stream route: every opened stream is handed to the test.
struct stream_box {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::shared_ptr<admin::response_stream>> streams;  // guarded by m
  std::optional<unsigned> worker;                                 // guarded by m

  admin::stream_route route(std::string path = "/test/stream") {
    return {std::move(path), [this](const admin::stream_request& req) -> std::expected<admin::http_response, admin::api_error> {
              if (req.request.query("deny")) return std::unexpected(admin::api_error{403, "forbidden", "denied"});
              auto s = std::make_shared<admin::response_stream>(1024);
              EXPECT_EQ(s->push("hello\n"), admin::response_stream::push_result::queued);  // before the head
              admin::http_response r;
              r.content_type = "text/event-stream";
              r.headers.emplace_back("Cache-Control", "no-cache");
              r.stream = s;
              const std::lock_guard l(m);
              worker = admin::admin_server::current_worker();
              streams.push_back(std::move(s));
              cv.notify_all();
              return r;
            }};
  }
  std::shared_ptr<admin::response_stream> wait_for(std::size_t n) {
    std::unique_lock l(m);
    if (!cv.wait_for(l, 5s, [&] { return streams.size() >= n; })) return nullptr;
    return streams[n - 1];
  }
};

TEST_F(http_server_test, stream_writes_chunks_pushed_from_any_thread_then_ends) {
  stream_box box;
  start({}, false, {box.route()});
  tcp_peer client(_srv->port());
  ASSERT_TRUE(client.send(get("/test/stream")));
  auto s = box.wait_for(1);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(box.worker.has_value());  // the handler ran on a worker
  client.read_until("hello\n", 3s);
  EXPECT_NE(client.received().find("HTTP/1.1 200 OK\r\n"), std::string::npos) << client.received();
  EXPECT_NE(client.received().find("Content-Type: text/event-stream\r\n"), std::string::npos);
  EXPECT_NE(client.received().find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  EXPECT_NE(client.received().find("Cache-Control: no-cache\r\n"), std::string::npos);
  EXPECT_NE(client.received().find("\r\n\r\n6\r\nhello\n\r\n"), std::string::npos) << client.received();

  std::thread producer([s] {
    EXPECT_EQ(s->push("data: 1\n\n"), admin::response_stream::push_result::queued);
    EXPECT_EQ(s->push(std::string(2000, 'x')), admin::response_stream::push_result::full);  // > 1024 queued
  });
  producer.join();
  client.read_until("data: 1\n\n", 3s);
  EXPECT_NE(client.received().find("9\r\ndata: 1\n\n\r\n"), std::string::npos) << client.received();
  EXPECT_EQ(metric("switchboard_admin_streams"), 1);

  std::promise<void> ended;
  s->on_close([&ended] { ended.set_value(); });
  s->close();
  EXPECT_EQ(s->push("late"), admin::response_stream::push_result::closed);
  EXPECT_TRUE(client.closed_within(3s));
  EXPECT_TRUE(client.received().ends_with("0\r\n\r\n")) << client.received();
  EXPECT_EQ(ended.get_future().wait_for(3s), std::future_status::ready);
  EXPECT_TRUE(connections_become(0));
  EXPECT_EQ(metric("switchboard_admin_streams"), 0);
}

TEST_F(http_server_test, stream_ends_when_the_client_leaves) {
  stream_box box;
  start({}, false, {box.route()});
  auto client = std::make_unique<tcp_peer>(_srv->port());
  ASSERT_TRUE(client->send(get("/test/stream")));
  auto s = box.wait_for(1);
  ASSERT_NE(s, nullptr);
  client->read_until("hello\n", 3s);
  std::promise<void> ended;
  s->on_close([&ended] { ended.set_value(); });
  client.reset();  // RST (linger 0)
  EXPECT_EQ(ended.get_future().wait_for(3s), std::future_status::ready);
  EXPECT_FALSE(s->is_open());
  EXPECT_EQ(s->push("gone"), admin::response_stream::push_result::closed);
  EXPECT_TRUE(connections_become(0));
}

TEST_F(http_server_test, stream_route_authenticates_and_handler_errors_are_json) {
  stream_box box;
  start({}, /*with_token=*/true, {box.route()});
  tcp_peer anonymous(_srv->port());
  ASSERT_TRUE(anonymous.send(get("/test/stream")));
  EXPECT_NE(anonymous.read_response(3s).find("HTTP/1.1 401"), std::string::npos);
  tcp_peer denied(_srv->port());
  ASSERT_TRUE(denied.send(get("/test/stream?deny=1", std::string("Authorization: Bearer ") + token + "\r\n")));
  const std::string r = denied.read_response(3s);
  EXPECT_NE(r.find("HTTP/1.1 403"), std::string::npos) << r;
  EXPECT_NE(r.find(R"({"error":{"code":"forbidden","message":"denied"}})"), std::string::npos) << r;
  tcp_peer post(_srv->port());
  ASSERT_TRUE(post.send("POST /test/stream HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_NE(post.read_response(3s).find("HTTP/1.1 405"), std::string::npos);
}

TEST_F(http_server_test, stop_ends_open_streams) {
  stream_box box;
  start({}, false, {box.route()});
  tcp_peer client(_srv->port());
  ASSERT_TRUE(client.send(get("/test/stream")));
  auto s = box.wait_for(1);
  ASSERT_NE(s, nullptr);
  client.read_until("hello\n", 3s);
  std::promise<void> ended;
  s->on_close([&ended] { ended.set_value(); });
  _srv->stop();
  EXPECT_EQ(ended.get_future().wait_for(0s), std::future_status::ready);
  EXPECT_TRUE(client.closed_within(3s));
  _srv->stop();  // idempotent
}

}  // namespace
}  // namespace switchboard
