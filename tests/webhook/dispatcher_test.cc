// The webhook dispatcher against real HTTP receivers on 127.0.0.1: retries, Retry-After, permanent
// failures, dead letters in RocksDB and their redrive after a restart, timeouts that do not hold up
// other sinks, the breaker, the per-sink in-flight bound, and stop().
#include "broker/webhook/dispatcher.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "broker/http_client/signature.h"
#include "broker/webhook/dead_letter.h"
#include "webhook/receiver.h"

namespace switchboard::webhook {
namespace {

using namespace std::chrono_literals;
using test::scripted_answer;
using test::webhook_receiver;

// Polls `done` (a probe of the dispatcher's state) until it holds or `timeout` passes.
template <typename Pred>
bool eventually(Pred done, std::chrono::milliseconds timeout = 20s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "webhook_test.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error(std::strerror(errno));
    _path = pattern;
  }
  ~temp_dir() { std::filesystem::remove_all(_path); }
  [[nodiscard]] const std::string& path() const { return _path; }

 private:
  std::string _path;
};

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    http_client::options o;
    o.max_in_flight = 256;
    o.max_queued = 8192;
    o.max_idle_connections = 64;
    auto c = http_client::client::create(o);
    ASSERT_TRUE(c);
    http = std::move(*c);
    http->start();
    auto s = store::store::open_memory();
    ASSERT_TRUE(s);
    memory = std::move(*s);
  }

  static dispatcher_options fast() {
    dispatcher_options o;
    o.max_attempts = 20;
    o.initial_backoff = 10ms;
    o.max_backoff = 50ms;
    o.jitter = 0.0;
    o.retry_budget = 10s;
    o.breaker_failures = 0;
    o.random_seed = 1;
    o.stop_grace = 2s;
    return o;
  }

  static std::shared_ptr<const sink> make_sink(std::string name, std::string url, std::string secret = "",
                                               std::size_t max_in_flight = 16,
                                               std::chrono::milliseconds timeout = 2000ms) {
    auto s = std::make_shared<sink>();
    s->name = std::move(name);
    s->url = std::move(url);
    s->secret = std::move(secret);
    s->max_in_flight = max_in_flight;
    s->timeout = timeout;
    return s;
  }

  static delivery make_delivery(const std::shared_ptr<const sink>& target, std::uint64_t seq,
                                std::string channel = "acme.orders") {
    delivery d;
    d.channel = std::move(channel);
    d.epoch = 0x1f;
    d.seq = seq;
    d.event_id = event_id(d.channel, d.epoch, seq);
    d.target = target;
    d.body = R"({"order":)" + std::to_string(seq) + "}";
    return d;
  }

  static sink_status status_of(const dispatcher& d, std::string_view name) {
    for (auto& s : d.sinks()) {
      if (s.name == name) return s;
    }
    return {};
  }

  static std::vector<dead_letter> dead_letters(store::store& s) {
    std::vector<dead_letter> out;
    auto all = s.list_configs(store::kind::dead_letters);
    EXPECT_TRUE(all);
    for (const auto& [key, value] : *all) {
      EXPECT_TRUE(key.starts_with("webhook/")) << key;
      auto d = parse_dead_letter(value);
      EXPECT_TRUE(d) << d.error();
      if (d) {
        EXPECT_EQ(key, "webhook/" + d->id);
        out.push_back(std::move(*d));
      }
    }
    return out;
  }

  webhook_receiver receiver;  // first: destroyed after the client has closed its connections
  std::unique_ptr<http_client::client> http;
  std::unique_ptr<store::store> memory;
};

TEST_F(DispatcherTest, FiveFailuresThenDeliveredExactlyOnceMoreAndSigned) {
  receiver.script("/hook", std::vector<scripted_answer>(5, test::answer(500)), test::answer(200));
  dispatcher d(*http, memory.get(), fast());
  auto& p = d.add_producer();
  d.start();
  const auto target = make_sink("billing", receiver.url("/hook"), "s3cret");
  ASSERT_TRUE(p.post(make_delivery(target, 42)));
  ASSERT_TRUE(eventually([&] { return status_of(d, "billing").deliveries == 1; }));
  d.stop();

  const auto got = receiver.requests("/hook");
  ASSERT_EQ(got.size(), 6u);  // 5 failures, then exactly one more
  for (std::size_t i = 0; i < got.size(); ++i) {
    const auto& r = got[i];
    EXPECT_EQ(r.body, R"({"order":42})");
    EXPECT_EQ(r.header("Content-Type"), "application/json");
    EXPECT_EQ(r.header("Switchboard-Event-Id"), "acme.orders@000000000000001f:42");
    EXPECT_EQ(r.header("Switchboard-Channel"), "acme.orders");
    EXPECT_EQ(r.header("Switchboard-Attempt"), std::to_string(i + 1));
    EXPECT_EQ(http_client::verify(r.header("Switchboard-Signature"), "s3cret", r.body, unix_now()),
              http_client::verify_result::ok);
    EXPECT_EQ(http_client::verify(r.header("Switchboard-Signature"), "other", r.body, unix_now()),
              http_client::verify_result::bad_signature);
  }
  const auto s = status_of(d, "billing");
  EXPECT_EQ(s.failures, 5u);
  EXPECT_EQ(s.retries, 5u);
  EXPECT_EQ(s.dead_letters, 0u);
  EXPECT_EQ(s.last_status, 500);
  EXPECT_TRUE(dead_letters(*memory).empty());
  const std::string m = d.metrics();
  EXPECT_NE(m.find("switchboard_webhook_deliveries_total{sink=\"acme.orders/billing\"} 1\n"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("switchboard_webhook_retries_total{sink=\"acme.orders/billing\"} 5\n"), std::string::npos);
  EXPECT_NE(m.find("# TYPE switchboard_webhook_breaker_open gauge\n"), std::string::npos);
}

TEST_F(DispatcherTest, NoSecretNoSignatureAndExtraHeadersSent) {
  auto s = std::make_shared<sink>(*make_sink("plain", receiver.url("/plain")));
  s->headers = {{"X-Tenant", "acme"}};
  dispatcher d(*http, memory.get(), fast());
  auto& p = d.add_producer();
  d.start();
  ASSERT_TRUE(p.post(make_delivery(s, 1)));
  ASSERT_TRUE(eventually([&] { return status_of(d, "plain").deliveries == 1; }));
  const auto r = receiver.requests("/plain").at(0);
  EXPECT_FALSE(r.headers.contains("Switchboard-Signature"));
  EXPECT_EQ(r.header("X-Tenant"), "acme");
}

TEST_F(DispatcherTest, RetryAfterIsHonoured) {
  receiver.script("/busy", {test::answer(429, "Retry-After", "1"), test::answer(503, "Retry-After", "1")},
                  test::answer(200));
  auto o = fast();
  o.max_backoff = 5s;  // the cap would shorten the wait otherwise
  dispatcher d(*http, memory.get(), o);
  auto& p = d.add_producer();
  d.start();
  ASSERT_TRUE(p.post(make_delivery(make_sink("slow", receiver.url("/busy")), 1)));
  ASSERT_TRUE(eventually([&] { return status_of(d, "slow").deliveries == 1; }));
  const auto got = receiver.requests("/busy");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_GE(got[1].at - got[0].at, 1000ms);  // initial backoff is 10 ms: the header won
  EXPECT_GE(got[2].at - got[1].at, 1000ms);
}

TEST_F(DispatcherTest, PermanentFailureIsDeadLetteredAtOnce) {
  receiver.script("/strict", {}, test::answer(422));
  dispatcher d(*http, memory.get(), fast());
  auto& p = d.add_producer();
  d.start();
  ASSERT_TRUE(p.post(make_delivery(make_sink("strict", receiver.url("/strict")), 9)));
  ASSERT_TRUE(eventually([&] { return status_of(d, "strict").dead_letters == 1; }));
  EXPECT_EQ(receiver.count("/strict"), 1u);
  const auto letters = dead_letters(*memory);
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].last_status, 422);
  EXPECT_EQ(letters[0].last_error, "HTTP 422");
  EXPECT_EQ(letters[0].reason, "permanent failure");
  EXPECT_EQ(letters[0].attempts, 1u);
  EXPECT_EQ(letters[0].channel, "acme.orders");
  EXPECT_EQ(letters[0].sink, "strict");
  EXPECT_EQ(letters[0].event_id, "acme.orders@000000000000001f:9");
  EXPECT_EQ(letters[0].seq, 9u);
  EXPECT_EQ(letters[0].body, R"({"order":9})");
  EXPECT_EQ(status_of(d, "strict").retries, 0u);
}

TEST_F(DispatcherTest, DownLongerThanTheBudgetThenRedrivenAfterARestart) {
  temp_dir dir;
  int port = 0;
  {
    webhook_receiver probe;  // a port that refuses connections once this receiver is gone
    port = probe.port();
  }
  const auto target = make_sink("crm", "http://127.0.0.1:" + std::to_string(port) + "/in", "k");
  std::string id;
  {
    auto opened = store::store::open_rocksdb(dir.path() + "/db");
    ASSERT_TRUE(opened) << opened.error().message;
    auto o = fast();
    o.retry_budget = 300ms;
    dispatcher d(*http, opened->get(), o);
    auto& p = d.add_producer();
    d.start();
    ASSERT_TRUE(p.post(make_delivery(target, 5)));
    // A second channel keeps flowing meanwhile.
    webhook_receiver healthy;
    const auto other = make_sink("ok", healthy.url("/ok"));
    for (std::uint64_t i = 1; i <= 20; ++i) ASSERT_TRUE(p.post(make_delivery(other, i, "acme.other")));
    ASSERT_TRUE(eventually([&] { return status_of(d, "crm").dead_letters == 1; }));
    EXPECT_TRUE(eventually([&] { return status_of(d, "ok").deliveries == 20; }));
    d.stop();  // joins the dispatcher thread before this thread reads RocksDB (TSan cannot see its atomics)
    const auto letters = dead_letters(**opened);
    ASSERT_EQ(letters.size(), 1u);
    EXPECT_EQ(letters[0].last_status, 0);
    EXPECT_EQ(letters[0].reason, "retry budget exhausted");
    EXPECT_TRUE(letters[0].last_error.starts_with("connect_failed")) << letters[0].last_error;
    EXPECT_GE(letters[0].attempts, 2u);
    id = letters[0].id;
  }
  // Restart: a new store handle and dispatcher; the sink is found through find_sink.
  auto opened = store::store::open_rocksdb(dir.path() + "/db");
  ASSERT_TRUE(opened) << opened.error().message;
  auto o = fast();
  o.find_sink = [&](std::string_view channel, std::string_view name) -> std::shared_ptr<const sink> {
    return channel == "acme.orders" && name == "crm" ? target : nullptr;
  };
  dispatcher d(*http, opened->get(), o);
  d.start();
  webhook_receiver back(port);
  ASSERT_TRUE(d.redrive(id));
  EXPECT_EQ(d.redrive(id).error().code, errc::conflict);  // once at a time
  ASSERT_TRUE(eventually([&] { return status_of(d, "crm").deliveries == 1; }));
  d.stop();
  EXPECT_TRUE(dead_letters(**opened).empty());  // deleted once delivered
  const auto got = back.requests("/in");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].header("Switchboard-Event-Id"), "acme.orders@000000000000001f:5");
  EXPECT_EQ(got[0].body, R"({"order":5})");
  EXPECT_EQ(http_client::verify(got[0].header("Switchboard-Signature"), "k", got[0].body, unix_now()),
            http_client::verify_result::ok);
  EXPECT_EQ(d.redrive(id).error().code, errc::unavailable);  // stopped
  dispatcher fresh(*http, opened->get(), o);
  const auto again = fresh.redrive(id);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, errc::not_found);
  EXPECT_EQ(again.error().message, "dead letter \"" + id + "\" does not exist");
}

TEST_F(DispatcherTest, NeverAnsweringSinkCostsItsTimeoutAndDoesNotHoldUpOthers) {
  receiver.script("/hang", {}, test::hang());
  auto o = fast();
  o.max_attempts = 1;
  dispatcher d(*http, memory.get(), o);
  auto& p = d.add_producer();
  d.start();
  const auto hanging = make_sink("hang", receiver.url("/hang"), "", 2, 1500ms);
  const auto healthy = make_sink("fine", receiver.url("/fine"));
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(p.post(make_delivery(hanging, 1)));
  ASSERT_TRUE(p.post(make_delivery(hanging, 2)));
  ASSERT_TRUE(receiver.wait_for_count("/hang", 2));
  for (std::uint64_t i = 1; i <= 50; ++i) ASSERT_TRUE(p.post(make_delivery(healthy, i, "acme.fine")));
  ASSERT_TRUE(eventually([&] { return status_of(d, "fine").deliveries == 50; }));
  // All 50 went through while both requests to the hanging sink were still open.
  EXPECT_EQ(status_of(d, "hang").dead_letters, 0u);
  EXPECT_EQ(status_of(d, "hang").in_flight, 2u);
  ASSERT_TRUE(eventually([&] { return status_of(d, "hang").dead_letters == 2; }));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 1400ms);
  EXPECT_LT(took, 1500ms + 1000ms);  // the timeout plus scheduling slack, not a multiple of it
  const auto letters = dead_letters(*memory);
  ASSERT_EQ(letters.size(), 2u);
  EXPECT_EQ(letters[0].last_status, 0);
  EXPECT_TRUE(letters[0].last_error.starts_with("timeout")) << letters[0].last_error;
  EXPECT_EQ(letters[0].reason, "attempts exhausted (1)");
}

TEST_F(DispatcherTest, BreakerOpensAfterNFailuresAndProbesOncePerCoolDown) {
  receiver.script("/flaky", {}, test::answer(500));
  auto o = fast();
  o.breaker_failures = 3;
  o.breaker_open_time = 400ms;
  o.initial_backoff = 1ms;
  o.max_backoff = 1ms;
  o.max_attempts = 1000;
  o.retry_budget = 60s;
  dispatcher d(*http, memory.get(), o);
  auto& p = d.add_producer();
  d.start();
  const auto target = make_sink("flaky", receiver.url("/flaky"), "", 1);
  for (std::uint64_t i = 1; i <= 10; ++i) ASSERT_TRUE(p.post(make_delivery(target, i)));
  ASSERT_TRUE(eventually([&] { return status_of(d, "flaky").breaker == breaker_state::open; }));
  EXPECT_EQ(receiver.count("/flaky"), 3u);
  EXPECT_NE(d.metrics().find("switchboard_webhook_breaker_open{sink=\"acme.orders/flaky\"} 1\n"),
            std::string::npos);
  // Two cool-downs: exactly one probe each, each one failing and reopening the breaker.
  ASSERT_TRUE(receiver.wait_for_count("/flaky", 5, 5s));
  const auto got = receiver.requests("/flaky");
  EXPECT_GE(got[3].at - got[2].at, 390ms);
  EXPECT_GE(got[4].at - got[3].at, 390ms);
  EXPECT_TRUE(eventually([&] {  // the second probe failed: open again
    const auto st = status_of(d, "flaky");
    return st.failures == 5 && st.breaker == breaker_state::open;
  }));
  // The receiver recovers: the next probe closes the breaker and all 10 are delivered, none lost.
  receiver.script("/flaky", {}, test::answer(200));
  ASSERT_TRUE(eventually([&] { return status_of(d, "flaky").deliveries == 10; }));
  EXPECT_EQ(status_of(d, "flaky").breaker, breaker_state::closed);
  EXPECT_EQ(status_of(d, "flaky").dead_letters, 0u);
  const auto total = receiver.count("/flaky");
  EXPECT_LE(total, 5u + 1u + 10u);  // 3 + probes (one per cool-down) + the 10 deliveries
}

TEST_F(DispatcherTest, InFlightIsBoundedPerSink) {
  receiver.script("/slow", {}, test::delayed(200, 30ms));
  dispatcher d(*http, memory.get(), fast());
  auto& p = d.add_producer();
  d.start();
  const auto target = make_sink("slow", receiver.url("/slow"), "", 4);
  for (std::uint64_t i = 1; i <= 40; ++i) ASSERT_TRUE(p.post(make_delivery(target, i)));
  ASSERT_TRUE(eventually([&] { return status_of(d, "slow").deliveries == 40; }));
  EXPECT_LE(receiver.peak_concurrent("/slow"), 4u);
  EXPECT_GE(receiver.peak_concurrent("/slow"), 2u);
  EXPECT_EQ(receiver.count("/slow"), 40u);
}

TEST_F(DispatcherTest, FullSinkQueueDeadLettersInsteadOfGrowing) {
  receiver.script("/hang", {}, test::hang());
  auto o = fast();
  o.max_queued_per_sink = 3;
  dispatcher d(*http, memory.get(), o);
  auto& p = d.add_producer();
  d.start();
  const auto target = make_sink("small", receiver.url("/hang"), "", 1, 10s);
  for (std::uint64_t i = 1; i <= 5; ++i) ASSERT_TRUE(p.post(make_delivery(target, i)));
  ASSERT_TRUE(eventually([&] { return status_of(d, "small").dead_letters == 2; }));
  const auto letters = dead_letters(*memory);
  ASSERT_EQ(letters.size(), 2u);
  EXPECT_EQ(letters[0].reason, "sink queue full (3 deliveries held)");
  EXPECT_EQ(letters[0].last_error, "");
  EXPECT_EQ(letters[0].attempts, 0u);
  receiver.release();
}

TEST_F(DispatcherTest, StopDeadLettersEverythingPending) {
  receiver.script("/hang", {}, test::hang());
  receiver.script("/fail", {}, test::answer(500));
  auto o = fast();
  o.initial_backoff = 60s;  // the failed one waits in the retry heap
  o.max_backoff = 60s;
  o.retry_budget = 600s;
  dispatcher d(*http, memory.get(), o);
  auto& p = d.add_producer();
  d.start();
  const auto hanging = make_sink("hang", receiver.url("/hang"), "", 1, 30s);
  const auto failing = make_sink("fail", receiver.url("/fail"));
  for (std::uint64_t i = 1; i <= 4; ++i) ASSERT_TRUE(p.post(make_delivery(hanging, i)));
  ASSERT_TRUE(p.post(make_delivery(failing, 100)));
  ASSERT_TRUE(receiver.wait_for_count("/hang", 1));
  ASSERT_TRUE(eventually([&] { return status_of(d, "fail").retries == 1; }));
  const auto before = std::chrono::steady_clock::now();
  d.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 2s);  // cancelled, not waited for
  EXPECT_FALSE(p.post(make_delivery(hanging, 5)));
  auto letters = dead_letters(*memory);
  ASSERT_EQ(letters.size(), 5u);  // 1 in flight + 3 queued + 1 retrying
  std::set<std::uint64_t> seqs;
  for (const auto& l : letters) {
    EXPECT_EQ(l.reason, "broker stopping");
    seqs.insert(l.seq);
  }
  EXPECT_EQ(seqs, (std::set<std::uint64_t>{1, 2, 3, 4, 100}));
  receiver.release();
}

TEST_F(DispatcherTest, ProducersNeverBlockAndOverflowIsDelivered) {
  auto o = fast();
  o.producer_queue_capacity = 4;
  dispatcher d(*http, memory.get(), o);
  auto& p1 = d.add_producer();
  auto& p2 = d.add_producer();
  const auto target = make_sink("many", receiver.url("/many"), "x", 32);
  // Before start() nothing drains: the queue fills and the rest waits in the overflow.
  for (std::uint64_t i = 1; i <= 20; ++i) ASSERT_TRUE(p1.post(make_delivery(target, i)));
  EXPECT_EQ(p1.overflow(), 16u);
  d.start();
  std::thread other([&] {
    for (std::uint64_t i = 21; i <= 220; ++i) ASSERT_TRUE(p2.post(make_delivery(target, i)));
    while (p2.overflow() > 0) p2.flush();
  });
  while (p1.overflow() > 0) p1.flush();
  other.join();
  ASSERT_TRUE(eventually([&] { return status_of(d, "many").deliveries == 220; }));
  EXPECT_EQ(receiver.count("/many"), 220u);
}

}  // namespace
}  // namespace switchboard::webhook
