// The libcurl client against a real local origin (tests/support/http_origin.h on 127.0.0.1, port 0).
#include "broker/http_client/http_client.h"

#include <chrono>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/http_origin.h"

namespace switchboard::http_client {
namespace {

using namespace std::chrono_literals;
using test::http_origin;
using test::reply;

options in_flight(std::size_t n) {
  options o;
  o.max_in_flight = n;
  return o;
}

options queued(std::size_t n) {
  options o;
  o.max_queued = n;
  return o;
}

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override { _client = make({}); }

  static std::unique_ptr<client> make(const options& opts) {
    auto created = client::create(opts);
    EXPECT_TRUE(created.has_value());
    (*created)->start();
    return std::move(*created);
  }

  request get(const std::string& path) const {
    request r;
    r.url = _origin.url(path);
    return r;
  }

  http_origin _origin;
  std::unique_ptr<client> _client;
};

TEST_F(HttpClientTest, FetchReturnsStatusHeadersAndBody) {
  _origin.set("/a", reply("hello").with_type("text/plain").with_header("X-Origin", "one").with_header("ETag", "\"v1\""));
  auto r = _client->fetch(get("/a"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello");
  EXPECT_EQ(r->headers.find("x-origin"), "one");
  EXPECT_EQ(r->headers.find("ETAG"), "\"v1\"");
  EXPECT_EQ(r->headers.find("Content-Type"), "text/plain");
  EXPECT_FALSE(r->headers.find("X-Missing").has_value());
  EXPECT_EQ(_origin.requests("/a"), 1u);
}

TEST_F(HttpClientTest, ErrorStatusIsAResponseNotAnError) {
  auto r = _client->fetch(get("/missing"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->status, 404);
}

TEST_F(HttpClientTest, SendsRequestHeaders) {
  _origin.set("/h", reply("x"));
  request req = get("/h");
  req.headers.add("If-None-Match", "\"abc\"");
  req.headers.add("X-Trace", "t-1");
  ASSERT_TRUE(_client->fetch(req).has_value());
  EXPECT_EQ(_origin.last_header("/h", "If-None-Match"), "\"abc\"");
  EXPECT_EQ(_origin.last_header("/h", "X-Trace"), "t-1");
  EXPECT_EQ(_origin.last_header("/h", "User-Agent"), "switchboard");
}

TEST_F(HttpClientTest, ConditionalRequestGets304) {
  _origin.set("/c", reply("body").with_header("ETag", "\"e1\""));
  request req = get("/c");
  req.headers.add("If-None-Match", "\"e1\"");
  auto r = _client->fetch(req);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 304);
  EXPECT_TRUE(r->body.empty());
  EXPECT_EQ(_origin.not_modified("/c"), 1u);
}

TEST_F(HttpClientTest, PostSendsBody) {
  _origin.set("/p", reply("ok"));
  request req = get("/p");
  req.method = "POST";
  req.body = "0123456789";
  req.headers.add("Content-Type", "text/plain");
  auto r = _client->fetch(req);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(_origin.last_header("/p", "Content-Length"), "10");
}

TEST_F(HttpClientTest, KeepAliveReusesTheConnection) {
  _origin.set("/k", reply("k"));
  auto first = _client->fetch(get("/k"));
  auto second = _client->fetch(get("/k"));
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_FALSE(first->reused_connection);
  EXPECT_TRUE(second->reused_connection);
}

TEST_F(HttpClientTest, FollowsRedirects) {
  _origin.set("/old", reply("").with_status(302).with_header("Location", "/new"));
  _origin.set("/new", reply("moved").with_header("X-Final", "yes"));
  auto r = _client->fetch(get("/old"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "moved");
  EXPECT_EQ(r->effective_url, _origin.url("/new"));
  EXPECT_EQ(r->headers.find("X-Final"), "yes");
  EXPECT_FALSE(r->headers.find("Location").has_value()) << "only the final response's headers";
}

TEST_F(HttpClientTest, TooManyRedirects) {
  _origin.set("/loop", reply("").with_status(302).with_header("Location", "/loop"));
  request req = get("/loop");
  req.max_redirects = 3;
  auto r = _client->fetch(req);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::too_many_redirects) << r.error().message;
  EXPECT_EQ(_origin.requests("/loop"), 4u);
}

TEST_F(HttpClientTest, ZeroRedirectsReturnsThe3xx) {
  _origin.set("/old", reply("").with_status(301).with_header("Location", "/new"));
  request req = get("/old");
  req.max_redirects = 0;
  auto r = _client->fetch(req);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 301);
  EXPECT_EQ(r->headers.find("location"), "/new");
}

TEST_F(HttpClientTest, TooLargeByContentLength) {
  _origin.set("/big", reply(std::string(2000, 'x')));
  request req = get("/big");
  req.max_response_bytes = 1000;
  auto r = _client->fetch(req);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::too_large);
  EXPECT_EQ(r.error().message, "response body larger than 1000 bytes");
}

TEST_F(HttpClientTest, TooLargeWhileStreaming) {
  _origin.set("/stream", reply(std::string(1 << 20, 'x')).as_chunked());
  request req = get("/stream");
  req.max_response_bytes = 100'000;
  auto r = _client->fetch(req);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::too_large);
  EXPECT_EQ(r.error().message, "response body larger than 100000 bytes");
  // Exactly at the limit is accepted.
  req.max_response_bytes = 1 << 20;
  auto ok = _client->fetch(req);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(ok->body.size(), 1u << 20);
}

TEST_F(HttpClientTest, TotalTimeout) {
  _origin.set("/slow", reply("late").with_delay(30s));
  request req = get("/slow");
  req.total_timeout = 200ms;
  const auto start = std::chrono::steady_clock::now();
  auto r = _client->fetch(req);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::timeout) << r.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(HttpClientTest, ConnectRefused) {
  std::string url;
  {
    http_origin closed;
    url = closed.url("/x");
  }
  request req;
  req.url = url;
  auto r = _client->fetch(req);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::connect_failed) << r.error().message;
}

TEST_F(HttpClientTest, RefusesNonHttpUrls) {
  request req;
  req.url = "file:///etc/passwd";
  auto r = _client->submit(req, [](auto) { ADD_FAILURE() << "must not run"; });
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::invalid_request);
  EXPECT_EQ(r.error().message, "not an http:// or https:// URL: file:///etc/passwd");
}

TEST_F(HttpClientTest, RedirectToOtherSchemeIsRefused) {
  _origin.set("/to-file", reply("").with_status(302).with_header("Location", "file:///etc/passwd"));
  auto r = _client->fetch(get("/to-file"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::invalid_request) << r.error().message;
}

TEST_F(HttpClientTest, AsyncSubmitBoundsInFlight) {
  auto bounded = make(in_flight(2));
  _origin.set("/d", reply("d").with_delay(50ms));
  constexpr int n = 6;
  std::latch done(n);
  std::mutex mutex;
  std::vector<int> statuses;
  for (int i = 0; i < n; ++i) {
    auto id = bounded->submit(get("/d"), [&](std::expected<response, error> r) {
      {
        std::lock_guard lock(mutex);
        statuses.push_back(r ? r->status : -1);
      }
      done.count_down();
    });
    ASSERT_TRUE(id.has_value());
  }
  done.wait();
  EXPECT_EQ(statuses, std::vector<int>(n, 200));
  EXPECT_EQ(_origin.requests("/d"), static_cast<std::size_t>(n));
  EXPECT_LE(_origin.peak_concurrent(), 2u);
}

TEST_F(HttpClientTest, QueueBoundRefusesWithOverloaded) {
  auto created = client::create(queued(1));
  ASSERT_TRUE(created.has_value());
  client& c = **created;  // not started: requests stay queued
  std::promise<std::expected<response, error>> first;
  ASSERT_TRUE(c.submit(get("/q"), [&](auto r) { first.set_value(std::move(r)); }).has_value());
  auto second = c.submit(get("/q"), [](auto) { ADD_FAILURE() << "must not run"; });
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code, errc::overloaded);
  c.stop();
  auto r = first.get_future().get();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::cancelled);
}

TEST_F(HttpClientTest, CancelAbortsAnInFlightTransfer) {
  _origin.set("/hang", reply("never").with_delay(30s));
  std::promise<std::expected<response, error>> result;
  auto id = _client->submit(get("/hang"), [&](auto r) { result.set_value(std::move(r)); });
  ASSERT_TRUE(id.has_value());
  _client->cancel(*id);
  auto r = result.get_future().get();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::cancelled);
}

TEST_F(HttpClientTest, StopCancelsInFlightAndRefusesNewWork) {
  _origin.set("/hang", reply("never").with_delay(30s));
  std::promise<std::expected<response, error>> result;
  ASSERT_TRUE(_client->submit(get("/hang"), [&](auto r) { result.set_value(std::move(r)); }).has_value());
  _client->stop();
  auto r = result.get_future().get();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::cancelled);
  auto after = _client->fetch(get("/hang"));
  ASSERT_FALSE(after.has_value());
  EXPECT_EQ(after.error().code, errc::cancelled);
  _client->stop();  // idempotent
}

TEST_F(HttpClientTest, CompletionMaySubmitAgain) {
  _origin.set("/chain", reply("c"));
  std::promise<int> second_status;
  ASSERT_TRUE(_client
                  ->submit(get("/chain"),
                           [&](auto) {
                             auto id = _client->submit(get("/chain"), [&](std::expected<response, error> r) {
                               second_status.set_value(r ? r->status : -1);
                             });
                             EXPECT_TRUE(id.has_value());
                           })
                  .has_value());
  EXPECT_EQ(second_status.get_future().get(), 200);
}

}  // namespace
}  // namespace switchboard::http_client
