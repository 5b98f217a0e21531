// The delegate caller against real delegates: cpp-httplib servers on 127.0.0.1, port 0, reached
// through the broker's libcurl client. Sequential and parallel lists, 204 drops, timeouts and
// failures under each policy, metadata, signatures and metrics.
#include "broker/delegate/caller.h"

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "broker/http_client/signature.h"

namespace switchboard::delegate {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

struct received {
  std::string body;
  httplib::Headers headers;
};

// A delegate server: each path runs a handler; every request is recorded. Handlers that hold a
// request wait on a condition variable that the destructor releases, so teardown never waits.
class delegate_server {
 public:
  using handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  delegate_server() {
    _server.new_task_queue = [] { return new httplib::ThreadPool(16); };
    _server.Post(".*", [this](const httplib::Request& req, httplib::Response& res) { serve(req, res); });
    _port = _server.bind_to_any_port("127.0.0.1");
    if (_port <= 0) throw std::runtime_error("delegate_server: cannot bind 127.0.0.1");
    _thread = std::thread([this] { _server.listen_after_bind(); });
    while (!_server.is_running()) std::this_thread::yield();  // a probe: stop() needs the accept loop
  }
  ~delegate_server() {
    {
      std::lock_guard lock(_mutex);
      _stopping = true;
    }
    _changed.notify_all();
    _server.stop();
    _thread.join();
  }
  delegate_server(const delegate_server&) = delete;
  delegate_server& operator=(const delegate_server&) = delete;

  [[nodiscard]] std::string url(std::string_view path) const {
    return fmt::format("http://127.0.0.1:{}{}", _port, path);
  }

  void on(const std::string& path, handler h) {
    std::lock_guard lock(_mutex);
    _handlers[path] = std::move(h);
  }
  // Answers `status` with `body` (application/json).
  void answer(const std::string& path, int status, std::string body) {
    on(path, [status, body = std::move(body)](const httplib::Request&, httplib::Response& res) {
      res.status = status;
      if (status != 204) res.set_content(body, "application/json");
    });
  }
  // Echoes the request body with `"<field>":<value>` appended (the body must be a non-empty object).
  void add_field(const std::string& path, std::string field, std::string value) {
    on(path, [field = std::move(field), value = std::move(value)](const httplib::Request& req,
                                                                  httplib::Response& res) {
      std::string out = req.body;
      out.pop_back();  // '}'
      out += fmt::format(",\"{}\":{}}}", field, value);
      res.set_content(out, "application/json");
    });
  }
  // Holds the request until the server is destroyed (or 10 s), then answers 200 `{}`.
  void hang(const std::string& path) {
    on(path, [this](const httplib::Request&, httplib::Response& res) {
      std::unique_lock lock(_mutex);
      _changed.wait_for(lock, 10s, [this] { return _stopping; });
      res.set_content("{}", "application/json");
    });
  }
  // Blocks the calling handler until `n` requests have arrived in total (or 5 s); true if they did.
  bool await_arrivals(std::size_t n) {
    std::unique_lock lock(_mutex);
    return _changed.wait_for(lock, 5s, [&] { return _arrivals >= n || _stopping; }) && _arrivals >= n;
  }

  [[nodiscard]] std::vector<received> requests(const std::string& path) const {
    std::lock_guard lock(_mutex);
    const auto it = _received.find(path);
    return it == _received.end() ? std::vector<received>{} : it->second;
  }

 private:
  void serve(const httplib::Request& req, httplib::Response& res) {
    handler h;
    {
      std::lock_guard lock(_mutex);
      _received[req.path].push_back(received{req.body, req.headers});
      ++_arrivals;
      const auto it = _handlers.find(req.path);
      if (it != _handlers.end()) h = it->second;
    }
    _changed.notify_all();
    if (!h) {
      res.status = 404;
      return;
    }
    h(req, res);
  }

  httplib::Server _server;
  int _port = 0;
  std::thread _thread;
  mutable std::mutex _mutex;  // protects everything below
  std::condition_variable _changed;
  bool _stopping = false;
  std::size_t _arrivals = 0;
  std::map<std::string, handler> _handlers;
  std::map<std::string, std::vector<received>> _received;
};

class DelegateCallerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto created = http_client::client::create();
    ASSERT_TRUE(created.has_value());
    _http = std::move(*created);
    _http->start();
    _caller = std::make_unique<caller>(*_http);
  }
  void TearDown() override {
    _http->stop();  // before the caller goes: completes whatever is still in flight
    _caller.reset();
  }

  std::shared_ptr<const config> make(std::vector<std::string> paths, mode how,
                                     failure_policy on_failure = failure_policy::pass,
                                     std::chrono::milliseconds timeout = 5000ms) const {
    auto c = std::make_shared<config>();
    for (const auto& p : paths) c->uris.push_back(_server.url(p));
    c->how = how;
    c->on_failure = on_failure;
    c->timeout = timeout;
    return c;
  }

  // Runs one event through the caller and waits (bounded) for its outcome.
  outcome run(std::shared_ptr<const config> cfg, std::string payload = R"({"id":1})") {
    std::promise<outcome> p;
    auto f = p.get_future();
    _caller->call(request{"acme.orders", "ev-1", std::move(payload), std::move(cfg)},
                  [&p](outcome o) { p.set_value(std::move(o)); });
    EXPECT_EQ(f.wait_for(20s), std::future_status::ready);
    return f.get();
  }

  delegate_server _server;
  std::unique_ptr<http_client::client> _http;
  std::unique_ptr<caller> _caller;
};

TEST_F(DelegateCallerTest, SequentialGivesEachDelegateThePreviousOutput) {
  _server.add_field("/a", "a", "1");
  _server.add_field("/b", "b", "2");
  const outcome o = run(make({"/a", "/b"}, mode::sequential));
  EXPECT_EQ(o.act, outcome::action::pass);
  EXPECT_EQ(o.payload, R"({"id":1,"a":1,"b":2})");
  EXPECT_TRUE(o.error.empty());
  EXPECT_TRUE(o.meta.empty());
  ASSERT_EQ(_server.requests("/b").size(), 1u);
  EXPECT_EQ(_server.requests("/a").front().body, R"({"id":1})");
  EXPECT_EQ(_server.requests("/b").front().body, R"({"id":1,"a":1})");
}

TEST_F(DelegateCallerTest, RequestCarriesTheDocumentedHeadersAndNoSignatureWithoutSecret) {
  _server.answer("/a", 200, "{}");
  (void)run(make({"/a"}, mode::sequential));
  const auto reqs = _server.requests("/a");
  ASSERT_EQ(reqs.size(), 1u);
  const auto header = [&](const char* name) {
    const auto it = reqs[0].headers.find(name);
    return it == reqs[0].headers.end() ? std::string("<none>") : it->second;
  };
  EXPECT_EQ(header("Content-Type"), "application/json");
  EXPECT_EQ(header("Switchboard-Event-Id"), "ev-1");
  EXPECT_EQ(header("Switchboard-Channel"), "acme.orders");
  EXPECT_EQ(header("Switchboard-Signature"), "<none>");
}

TEST_F(DelegateCallerTest, SignatureVerifiesOnTheDelegateSide) {
  _server.answer("/a", 200, "{}");
  auto cfg = std::make_shared<config>(*make({"/a"}, mode::sequential));
  cfg->secret = "whsec_test";
  (void)run(cfg, R"({"id":"sig"})");
  const auto reqs = _server.requests("/a");
  ASSERT_EQ(reqs.size(), 1u);
  const auto it = reqs[0].headers.find("Switchboard-Signature");
  ASSERT_NE(it, reqs[0].headers.end());
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  EXPECT_EQ(http_client::verify(it->second, "whsec_test", reqs[0].body, now), http_client::verify_result::ok);
  EXPECT_EQ(http_client::verify(it->second, "other", reqs[0].body, now),
            http_client::verify_result::bad_signature);
}

TEST_F(DelegateCallerTest, ParallelSendsTheSameInputAtOnceAndMergesInListOrder) {
  // Each handler answers only once both requests are in: a sequential caller would time out here.
  const auto both = [this](std::string body) {
    return [this, body = std::move(body)](const httplib::Request&, httplib::Response& res) {
      if (!_server.await_arrivals(2)) {
        res.status = 503;
        return;
      }
      res.set_content(body, "application/json");
    };
  };
  _server.on("/a", both(R"({"id":1,"a":1,"x":"from a","_switchboard":{"route":false,"webhook":["crm"]}})"));
  _server.on("/b", both(R"({"id":1,"b":2,"x":"from b","_switchboard":{"route":true}})"));
  const outcome o = run(make({"/a", "/b"}, mode::parallel, failure_policy::drop, 4000ms));
  ASSERT_EQ(o.act, outcome::action::pass) << o.error;
  EXPECT_EQ(o.payload, R"({"id":1,"a":1,"x":"from b","b":2})");
  EXPECT_EQ(o.meta.route, true);                               // b's, later in the list
  EXPECT_EQ(o.meta.webhook, std::vector<std::string>{"crm"});  // a's, b set none
  EXPECT_EQ(_server.requests("/a").front().body, R"({"id":1})");
  EXPECT_EQ(_server.requests("/b").front().body, R"({"id":1})");
}

TEST_F(DelegateCallerTest, ParallelMergeFollowsListOrderNotArrivalOrder) {
  _server.answer("/a", 200, R"({"x":"a","a":true})");
  _server.answer("/b", 200, R"({"x":"b","b":true})");
  EXPECT_EQ(run(make({"/b", "/a"}, mode::parallel)).payload, R"({"x":"a","b":true,"a":true})");
  EXPECT_EQ(run(make({"/a", "/b"}, mode::parallel)).payload, R"({"x":"b","a":true,"b":true})");
}

TEST_F(DelegateCallerTest, SequentialDropBy204StopsAtOnce) {
  _server.answer("/a", 204, "");
  _server.answer("/b", 200, "{}");
  const outcome o = run(make({"/a", "/b"}, mode::sequential));
  EXPECT_EQ(o.act, outcome::action::drop);
  EXPECT_TRUE(o.payload.empty());
  EXPECT_TRUE(o.error.empty());
  EXPECT_EQ(_server.requests("/b").size(), 0u);
  EXPECT_EQ(_caller->statistics().dropped_by_delegate.load(), 1u);
}

TEST_F(DelegateCallerTest, ParallelAny204Drops) {
  _server.answer("/a", 200, R"({"a":1})");
  _server.answer("/b", 204, "");
  const outcome o = run(make({"/a", "/b"}, mode::parallel));
  EXPECT_EQ(o.act, outcome::action::drop);
  EXPECT_EQ(_server.requests("/a").size(), 1u);
  EXPECT_EQ(_server.requests("/b").size(), 1u);
}

TEST_F(DelegateCallerTest, Parallel204WinsOverAFailureEvenUnderDeadLetter) {
  _server.answer("/a", 500, "");
  _server.answer("/b", 204, "");
  const outcome o = run(make({"/a", "/b"}, mode::parallel, failure_policy::dead_letter));
  EXPECT_EQ(o.act, outcome::action::drop);
  EXPECT_EQ(o.error, fmt::format("delegate \"{}\" answered 500", _server.url("/a")));
}

// Timeouts: the outcome arrives within the timeout plus a generous margin, with the exact error. The
// timeout is long enough for the fast delegates beside the hanging one to answer under TSan.
constexpr auto timeout = 1000ms;
constexpr auto margin = 2000ms;

TEST_F(DelegateCallerTest, TimeoutUnderPassContinuesWithTheInputToTheNextDelegate) {
  _server.hang("/slow");
  _server.add_field("/b", "b", "2");
  const auto t0 = clock::now();
  const outcome o = run(make({"/slow", "/b"}, mode::sequential, failure_policy::pass, timeout));
  EXPECT_LE(clock::now() - t0, timeout + margin);
  EXPECT_EQ(o.act, outcome::action::pass);
  EXPECT_EQ(o.payload, R"({"id":1,"b":2})");
  EXPECT_EQ(o.error, fmt::format("delegate \"{}\" timed out after 1000 ms", _server.url("/slow")));
  EXPECT_EQ(o.failed_status, 0);
  EXPECT_EQ(_server.requests("/b").front().body, R"({"id":1})");
  EXPECT_EQ(_caller->statistics().timeouts.load(), 1u);
}

TEST_F(DelegateCallerTest, TimeoutUnderDropDropsAndSkipsTheRest) {
  _server.hang("/slow");
  _server.answer("/b", 200, "{}");
  const auto t0 = clock::now();
  const outcome o = run(make({"/slow", "/b"}, mode::sequential, failure_policy::drop, timeout));
  EXPECT_LE(clock::now() - t0, timeout + margin);
  EXPECT_EQ(o.act, outcome::action::drop);
  EXPECT_EQ(o.error, fmt::format("delegate \"{}\" timed out after 1000 ms", _server.url("/slow")));
  EXPECT_EQ(_server.requests("/b").size(), 0u);
}

TEST_F(DelegateCallerTest, TimeoutUnderDeadLetterKeepsTheEventAsTheStageGotIt) {
  _server.add_field("/a", "a", "1");
  _server.hang("/slow");
  const auto t0 = clock::now();
  const outcome o = run(make({"/a", "/slow"}, mode::sequential, failure_policy::dead_letter, timeout));
  EXPECT_LE(clock::now() - t0, timeout + margin);
  EXPECT_EQ(o.act, outcome::action::dead_letter);
  EXPECT_EQ(o.payload, R"({"id":1})");
  EXPECT_EQ(o.error, fmt::format("delegate \"{}\" timed out after 1000 ms", _server.url("/slow")));
}

TEST_F(DelegateCallerTest, ParallelTimeoutCostsOneTimeoutAndPassMergesTheOthers) {
  _server.hang("/slow1");
  _server.hang("/slow2");
  _server.answer("/b", 200, R"({"id":1,"b":2})");
  const auto t0 = clock::now();
  const outcome o = run(make({"/slow1", "/b", "/slow2"}, mode::parallel, failure_policy::pass, timeout));
  EXPECT_LT(clock::now() - t0, 2 * timeout);  // one timeout, not two
  EXPECT_EQ(o.act, outcome::action::pass);
  EXPECT_EQ(o.payload, R"({"id":1,"b":2})");
  EXPECT_EQ(o.error, fmt::format("delegate \"{}\" timed out after 1000 ms", _server.url("/slow1")));
}

TEST_F(DelegateCallerTest, ParallelTimeoutUnderDeadLetter) {
  _server.hang("/slow");
  _server.answer("/b", 200, R"({"b":2})");
  const outcome o = run(make({"/b", "/slow"}, mode::parallel, failure_policy::dead_letter, timeout));
  EXPECT_EQ(o.act, outcome::action::dead_letter);
  EXPECT_EQ(o.payload, R"({"id":1})");
}

TEST_F(DelegateCallerTest, Status500IsAFailureWithItsStatus) {
  _server.answer("/a", 500, R"({"oops":true})");
  const outcome o = run(make({"/a"}, mode::sequential));
  EXPECT_EQ(o.act, outcome::action::pass);
  EXPECT_EQ(o.payload, R"({"id":1})");
  EXPECT_EQ(o.error, fmt::format("delegate \"{}\" answered 500", _server.url("/a")));
  EXPECT_EQ(o.failed_status, 500);
  EXPECT_EQ(_caller->statistics().bad_status.load(), 1u);
}

TEST_F(DelegateCallerTest, RedirectIsNotFollowed) {
  _server.on("/moved", [this](const httplib::Request&, httplib::Response& res) {
    res.set_redirect(_server.url("/a"));
  });
  _server.answer("/a", 200, "{}");
  const outcome o = run(make({"/moved"}, mode::sequential, failure_policy::drop));
  EXPECT_EQ(o.act, outcome::action::drop);
  EXPECT_EQ(o.error, fmt::format("delegate \"{}\" answered 302", _server.url("/moved")));
  EXPECT_EQ(_server.requests("/a").size(), 0u);
}

TEST_F(DelegateCallerTest, NonJsonAndNonObjectAnswersAreFailures) {
  _server.answer("/text", 200, "hello");
  _server.answer("/array", 200, "[1,2]");
  _server.answer("/empty", 200, "");
  EXPECT_EQ(run(make({"/text"}, mode::sequential)).error,
            fmt::format("delegate \"{}\" answered a body that is not a JSON object: invalid value at byte 0",
                        _server.url("/text")));
  EXPECT_EQ(run(make({"/array"}, mode::sequential)).error,
            fmt::format("delegate \"{}\" answered a body that is not a JSON object: an array",
                        _server.url("/array")));
  const outcome empty = run(make({"/empty"}, mode::sequential, failure_policy::dead_letter));
  EXPECT_EQ(empty.act, outcome::action::dead_letter);
  EXPECT_EQ(empty.error, fmt::format("delegate \"{}\" answered a body that is not a JSON object: "
                                     "the document is empty at byte 0",
                                     _server.url("/empty")));
  EXPECT_EQ(empty.failed_status, 200);
}

TEST_F(DelegateCallerTest, AnswerLargerThanTheLimitIsAFailure) {
  _server.answer("/big", 200, fmt::format(R"({{"pad":"{}"}})", std::string(5000, 'x')));
  auto cfg = std::make_shared<config>(*make({"/big"}, mode::sequential));
  cfg->max_response_bytes = 1000;
  const outcome o = run(cfg);
  EXPECT_EQ(o.payload, R"({"id":1})");
  EXPECT_EQ(o.error,
            fmt::format("delegate \"{}\" answered a body larger than 1000 bytes", _server.url("/big")));
}

TEST_F(DelegateCallerTest, ConnectFailureUnderPassSkipsTheDelegate) {
  std::string dead;
  {
    delegate_server gone;  // a port that was just free and is closed again
    dead = gone.url("/x");
  }
  auto cfg = std::make_shared<config>(*make({"/b"}, mode::sequential));
  cfg->uris.insert(cfg->uris.begin(), dead);
  _server.add_field("/b", "b", "2");
  const outcome o = run(cfg);
  EXPECT_EQ(o.act, outcome::action::pass);
  EXPECT_EQ(o.payload, R"({"id":1,"b":2})");
  EXPECT_TRUE(o.error.starts_with(fmt::format("delegate \"{}\" could not connect: ", dead))) << o.error;
}

TEST_F(DelegateCallerTest, MetadataIsExtractedAndStripped) {
  _server.answer("/a", 200, R"({"id":1,"_switchboard":{"route":false,"webhook":["crm"]},"tag":"vip"})");
  const outcome o = run(make({"/a"}, mode::sequential));
  EXPECT_EQ(o.act, outcome::action::pass);
  EXPECT_EQ(o.payload, R"({"id":1,"tag":"vip"})");
  EXPECT_EQ(o.meta.route, false);
  EXPECT_EQ(o.meta.webhook, std::vector<std::string>{"crm"});
  EXPECT_FALSE(o.meta.publish_to_parent.has_value());
}

TEST_F(DelegateCallerTest, WebhookFalseMeansNoneAndLaterDelegatesOverrideEarlier) {
  _server.answer("/a", 200, R"({"_switchboard":{"webhook":["crm"],"route":false}})");
  _server.answer("/b", 200, R"({"_switchboard":{"webhook":false,"publish_to_parent":true}})");
  const outcome o = run(make({"/a", "/b"}, mode::sequential));
  EXPECT_EQ(o.payload, "{}");
  EXPECT_EQ(o.meta.webhook, std::vector<std::string>{});
  EXPECT_EQ(o.meta.route, false);
  EXPECT_EQ(o.meta.publish_to_parent, true);
  // The second delegate got the first's output without the metadata.
  EXPECT_EQ(_server.requests("/b").front().body, "{}");
}

TEST_F(DelegateCallerTest, InvalidMetadataIsAFailure) {
  _server.answer("/a", 200, R"({"id":2,"_switchboard":{"route":"no"}})");
  const outcome o = run(make({"/a"}, mode::sequential));
  EXPECT_EQ(o.payload, R"({"id":1})");
  EXPECT_FALSE(o.meta.route.has_value());
  EXPECT_EQ(o.error,
            fmt::format("delegate \"{}\" answered invalid metadata: \"_switchboard.route\" must be a boolean",
                        _server.url("/a")));
}

TEST_F(DelegateCallerTest, StoppedClientRunsDoneInlineWithThePolicy) {
  _http->stop();
  std::optional<outcome> got;
  _caller->call(request{"c", "e", R"({"id":1})", make({"/a"}, mode::sequential, failure_policy::dead_letter)},
                [&got](outcome o) { got = std::move(o); });
  ASSERT_TRUE(got.has_value());  // inline: no request could be submitted
  EXPECT_EQ(got->act, outcome::action::dead_letter);
  EXPECT_EQ(got->error,
            fmt::format("delegate \"{}\" was cancelled (the HTTP client stopped)", _server.url("/a")));
}

TEST_F(DelegateCallerTest, MetricsCountCallsFailuresDropsAndLatency) {
  _server.answer("/ok", 200, "{}");
  _server.answer("/bad", 500, "");
  _server.answer("/drop", 204, "");
  (void)run(make({"/ok", "/bad"}, mode::sequential));
  (void)run(make({"/drop"}, mode::sequential));
  const std::string m = _caller->metrics();
  EXPECT_NE(m.find("# TYPE switchboard_delegate_calls_total counter\nswitchboard_delegate_calls_total 3\n"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("switchboard_delegate_failures_total{reason=\"status\"} 1\n"), std::string::npos);
  EXPECT_NE(m.find("switchboard_delegate_drops_total 1\n"), std::string::npos);
  EXPECT_NE(m.find("switchboard_delegate_events_total{outcome=\"pass\"} 1\n"), std::string::npos);
  EXPECT_NE(m.find("switchboard_delegate_events_total{outcome=\"drop\"} 1\n"), std::string::npos);
  EXPECT_NE(m.find("# TYPE switchboard_delegate_seconds histogram\n"), std::string::npos);
  EXPECT_NE(m.find("switchboard_delegate_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(m.find("switchboard_delegate_seconds_count 3\n"), std::string::npos);
}

TEST_F(DelegateCallerTest, ManyEventsAtOnceFromSeveralThreads) {
  _server.add_field("/a", "a", "1");
  _server.add_field("/b", "b", "2");
  const auto seq = make({"/a", "/b"}, mode::sequential);
  const auto par = make({"/a", "/b"}, mode::parallel);
  constexpr int per_thread = 50;
  std::atomic<int> passed{0};
  std::promise<void> all;
  std::atomic<int> left{4 * per_thread};
  std::vector<std::jthread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        _caller->call(request{"c", fmt::format("e{}-{}", t, i), R"({"id":1})", t % 2 == 0 ? seq : par},
                      [&](outcome o) {
                        if (o.act == outcome::action::pass && o.error.empty()) passed.fetch_add(1);
                        if (left.fetch_sub(1) == 1) all.set_value();
                      });
      }
    });
  }
  threads.clear();
  ASSERT_EQ(all.get_future().wait_for(30s), std::future_status::ready);
  EXPECT_EQ(passed.load(), 4 * per_thread);
  EXPECT_EQ(_caller->statistics().calls.load(), 8u * per_thread);
}

}  // namespace
}  // namespace switchboard::delegate
