// Channel slow_consumer policies on the real broker binary, with a subscriber that stops reading:
// conflate keeps the latest event per key, spill serves the subscriber from the log without loss.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>
#include <thread>

#include "support/broker_process.h"
#include "support/raw_client.h"

namespace switchboard {
namespace {

namespace proto = switchboard::protocol;
using namespace std::chrono_literals;
constexpr const char* token = "slow-token";

class slow_consumer_test : public ::testing::Test {
 protected:
  void SetUp() override {
#if defined(__SANITIZE_ADDRESS__)
    // ASan keeps freed memory in a 256 MiB quarantine by default, which the RSS bounds below would
    // count against the broker. A small quarantine keeps use-after-free detection for the recent
    // frees and lets the bounds measure the broker's queues.
    static const bool quarantine_set = [] {
      const char* old = std::getenv("ASAN_OPTIONS");
      const std::string opts = std::string(old != nullptr ? old : "") + (old != nullptr && *old ? ":" : "") +
                               "quarantine_size_mb=8";
      return ::setenv("ASAN_OPTIONS", opts.c_str(), 1) == 0;
    }();
    ASSERT_TRUE(quarantine_set);
#endif
    _broker = std::make_unique<test::broker_process>(
        _dir.path(), token, std::vector<std::string>{"--subscriber-queue", "1000", "--socket-hwm", "2"});
    ASSERT_TRUE(_broker->ok()) << _broker->stderr_text();
    _http = _broker->http(token);
  }

  std::uint64_t metric(const std::string& name) {
    auto r = _http->Get("/metrics");
    if (!r || r->status != 200) return 0;
    auto at = r->body.find("\n" + name + " ");
    return at == std::string::npos ? 0 : std::stoull(r->body.substr(at + name.size() + 2));
  }

  // Publishes batches of 32 events until `done()` or `max` events; returns how many were sent.
  template <typename Payload, typename Done>
  int flood(testing::raw_client& pub, const std::string& channel, int max, Payload payload, Done done) {
    int sent = 0;
    while (sent < max && !done()) {
      std::string batch;
      proto::frame_writer w(batch);
      for (int i = 0; i < 32; ++i, ++sent) {
        const std::string p = payload(sent);
        w.write(proto::publish{.request_id = 0, .ack_requested = false, .channel = channel, .key = {}, .payload = p});
      }
      pub.send_bytes(batch);
      // A PING round trip paces the publisher to what the broker has taken in.
      pub.send(proto::ping{static_cast<std::uint64_t>(sent)});
      EXPECT_TRUE(pub.expect<proto::pong>(10s));
    }
    return sent;
  }

  test::temp_dir _dir;
  std::unique_ptr<test::broker_process> _broker;
  std::unique_ptr<httplib::Client> _http;
};

TEST_F(slow_consumer_test, conflate_keeps_the_latest_event_per_key) {
  auto put = _http->Put("/v1/channels/tick.%2A", R"({"slow_consumer":"conflate","conflate_key":"sym"})",
                        "application/json");
  ASSERT_TRUE(put && put->status == 200) << (put ? put->body : "");
  testing::raw_client slow(_broker->endpoint, 2);
  ASSERT_TRUE(slow.hello(0, token));
  slow.send(proto::subscribe{.sub_id = 1, .pattern = "tick.prices", .options = {}});
  ASSERT_TRUE(slow.expect<proto::suback>());

  testing::raw_client pub(_broker->endpoint);
  ASSERT_TRUE(pub.hello(0, token));
  const std::string pad(1000, 'p');
  const int sent = flood(
      pub, "tick.prices", 400000,
      [&](int i) { return R"({"sym":"S)" + std::to_string(i % 10) + R"(","n":)" + std::to_string(i) + R"(,"pad":")" + pad + "\"}"; },
      [&] { return metric("switchboard_slow_consumer_conflated_total") > 0; });
  ASSERT_GT(metric("switchboard_slow_consumer_conflated_total"), 0u) << "never overflowed after " << sent;
  // The last event per symbol, published now, must arrive after whatever was conflated.
  std::map<std::string, int> last_n;
  for (int i = sent; i < sent + 10; ++i) {
    const std::string p = R"({"sym":"S)" + std::to_string(i % 10) + R"(","n":)" + std::to_string(i) + "}";
    pub.send(proto::publish{.request_id = 0, .ack_requested = false, .channel = "tick.prices", .key = {}, .payload = p});
  }
  int received = 0;
  std::uint64_t last_seq = 0;
  for (int finals = 0; finals < 10;) {
    auto r = slow.recv(10s);
    ASSERT_TRUE(r) << "stalled after " << received << " events";
    for (auto& f : r->frames) {
      ASSERT_FALSE(std::holds_alternative<proto::error>(f)) << std::get<proto::error>(f).message;
      const auto* ev = std::get_if<proto::event>(&f);
      if (ev == nullptr) continue;
      ++received;
      ASSERT_GT(ev->seq, last_seq);
      last_seq = ev->seq;
      const auto at = ev->payload.find(R"("n":)");
      const int n = std::stoi(std::string(ev->payload.substr(at + 4)));
      const std::string sym(ev->payload.substr(8, ev->payload.find('"', 8) - 8));
      if (auto prev = last_n.find(sym); prev != last_n.end()) {
        ASSERT_GT(n, prev->second) << "per-key order broken for " << sym;
      }
      last_n[sym] = n;
      if (n >= sent) ++finals;
    }
  }
  EXPECT_LT(received, sent + 10) << "conflation removed nothing the subscriber could see";
  EXPECT_EQ(metric("switchboard_slow_consumer_disconnects_total"), 0u);
}

TEST_F(slow_consumer_test, spill_serves_a_lagging_subscriber_from_the_log_without_loss) {
  auto put = _http->Put("/v1/channels/audit.log", R"({"durable":true,"slow_consumer":"spill"})", "application/json");
  ASSERT_TRUE(put && put->status == 200) << (put ? put->body : "");
  testing::raw_client slow(_broker->endpoint, 2);
  ASSERT_TRUE(slow.hello(0, token));
  slow.send(proto::subscribe{.sub_id = 7, .pattern = "audit.log", .options = {}});
  ASSERT_TRUE(slow.expect<proto::suback>());

  testing::raw_client pub(_broker->endpoint);
  ASSERT_TRUE(pub.hello(0, token));
  const std::string pad(1000, 'a');
  int sent = flood(
      pub, "audit.log", 400000, [&](int i) { return std::to_string(i) + ":" + pad; },
      [&] { return metric("switchboard_slow_consumer_spills_total") > 0; });
  ASSERT_EQ(metric("switchboard_slow_consumer_spills_total"), 1u) << "no spill after " << sent;
  sent += flood(pub, "audit.log", 3200, [&](int i) { return std::to_string(sent + i) + ":" + pad; }, [] { return false; });

  // Every event, exactly once and in order, whichever path it took.
  std::uint64_t next_seq = 1;
  while (next_seq <= static_cast<std::uint64_t>(sent)) {
    auto r = slow.recv(10s);
    ASSERT_TRUE(r) << "stalled at seq " << next_seq << " of " << sent;
    for (auto& f : r->frames) {
      ASSERT_FALSE(std::holds_alternative<proto::error>(f)) << std::get<proto::error>(f).message;
      const auto* ev = std::get_if<proto::event>(&f);
      if (ev == nullptr) continue;
      ASSERT_EQ(ev->sub_id, 7u);
      ASSERT_EQ(ev->seq, next_seq) << "lost or duplicated around seq " << next_seq;
      ASSERT_EQ(ev->payload.substr(0, ev->payload.find(':')), std::to_string(next_seq - 1));
      ++next_seq;
    }
  }
  EXPECT_EQ(metric("switchboard_slow_consumer_disconnects_total"), 0u);
  EXPECT_GT(metric("switchboard_slow_consumer_spilled_total"), 0u);
}


// Regression (issue 13 item 5): a durable subscriber with ack policy `none` that stops reading used
// to queue every event in the transport, whose backlog was re-decoded on each new batch (100 % CPU,
// publishing collapsed, RSS grew with the log). Credit from the socket now paces the consumer
// manager: broker memory stays bounded while 2 000 000 events are published, and the subscriber
// still gets every event in order when it reads again.
TEST_F(slow_consumer_test, durable_subscriber_that_stops_reading_is_paced_by_credit) {
  auto put = _http->Put("/v1/channels/flow.x", R"({"durable":true})", "application/json");
  ASSERT_TRUE(put && put->status == 200) << (put ? put->body : "");
  testing::raw_client lazy(_broker->endpoint, 2);
  ASSERT_TRUE(lazy.hello(300'000, token));  // silent for the whole publishing phase, not dead
  lazy.send(proto::subscribe{.sub_id = 3, .pattern = "flow.x", .options = R"({"durable":"lazy","start":"all"})"});
  ASSERT_TRUE(lazy.expect<proto::suback>());

  testing::raw_client pub(_broker->endpoint);
  ASSERT_TRUE(pub.hello(0, token));
  const std::size_t rss_before = _broker->rss_bytes();
  std::size_t rss_peak = rss_before;
  constexpr int total = 2'000'000;
  constexpr int per_batch = 1000;
  const std::string pad(60, 'f');
  const auto start = std::chrono::steady_clock::now();
  for (int sent = 0; sent < total;) {
    std::string batch;
    proto::frame_writer w(batch);
    std::vector<std::string> payloads;
    payloads.reserve(per_batch);
    for (int i = 0; i < per_batch; ++i, ++sent) {
      payloads.push_back(std::to_string(sent) + ":" + pad);
      w.write(proto::publish{.request_id = 0, .ack_requested = false, .channel = "flow.x", .key = {},
                             .payload = payloads.back()});
    }
    pub.send_bytes(batch);
    pub.send(proto::ping{static_cast<std::uint64_t>(sent)});
    ASSERT_TRUE(pub.expect<proto::pong>(30s)) << "publisher stalled at " << sent;
    if (sent % 100'000 == 0) rss_peak = std::max(rss_peak, _broker->rss_bytes());
  }
  const double publish_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Bounded: the credit window (65 536 events) plus RocksDB's memtables, not the 2 M events
  // (about 180 MB of payload alone) the subscriber has not read.
  EXPECT_LT(rss_peak - rss_before, std::size_t{200} << 20)
      << "before " << (rss_before >> 20) << " MiB, peak " << (rss_peak >> 20) << " MiB";
  // The broker kept serving the publisher at full speed meanwhile (the old failure mode fell to
  // ~180 events/s), and a new client is answered at once.
  EXPECT_LT(publish_s, 60.0);
  testing::raw_client fresh(_broker->endpoint);
  const auto hello_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(fresh.hello(0, token));
  EXPECT_LT(std::chrono::steady_clock::now() - hello_at, 1s);

  std::uint64_t next_seq = 1;
  while (next_seq <= static_cast<std::uint64_t>(total)) {
    auto r = lazy.recv(20s);
    ASSERT_TRUE(r) << "stalled at seq " << next_seq << " of " << total;
    for (auto& f : r->frames) {
      ASSERT_FALSE(std::holds_alternative<proto::error>(f)) << std::get<proto::error>(f).message;
      const auto* ev = std::get_if<proto::event>(&f);
      if (ev == nullptr) continue;
      ASSERT_EQ(ev->seq, next_seq) << "lost or duplicated around seq " << next_seq;
      ++next_seq;
    }
  }
  std::printf("[ flow ] published %d events in %.1f s; broker RSS %zu MiB before, %zu MiB peak\n", total, publish_s,
              rss_before >> 20, rss_peak >> 20);
}

// Regression (issue 14 item 4), against the binary: a publisher that asks for PUBACKs and never
// reads them grew the broker without bound (3.2 GB in 30 s). Its unread replies now count against a
// bound (64 MiB), past which it is dropped as a slow consumer while everyone else is served.
TEST_F(slow_consumer_test, publisher_that_never_reads_its_pubacks_is_dropped) {
  testing::raw_client pub(_broker->endpoint, 1);
  ASSERT_TRUE(pub.hello(300'000, token));
  const std::size_t rss_before = _broker->rss_bytes();
  std::size_t rss_peak = rss_before;
  std::string batch;
  proto::frame_writer w(batch);
  for (int i = 0; i < 1000; ++i) {
    w.write(proto::publish{.request_id = static_cast<std::uint32_t>(i), .ack_requested = true, .channel = "acks.x",
                           .key = {}, .payload = "p"});
  }
  const auto end = std::chrono::steady_clock::now() + 90s;
  long sent = 0;
  while (metric("switchboard_slow_consumer_disconnects_total") == 0) {
    ASSERT_LT(std::chrono::steady_clock::now(), end) << "never dropped after " << sent << " acked publishes";
    for (int i = 0; i < 100; ++i) {
      if (pub.socket().send(zmq::buffer(batch), zmq::send_flags::dontwait)) sent += 1000;
    }
    rss_peak = std::max(rss_peak, _broker->rss_bytes());
  }
  EXPECT_LT(rss_peak - rss_before, std::size_t{400} << 20)
      << "before " << (rss_before >> 20) << " MiB, peak " << (rss_peak >> 20) << " MiB";
  std::printf("[ pubacks ] dropped after ~%ld acked publishes; broker RSS %zu -> %zu MiB\n", sent, rss_before >> 20,
              rss_peak >> 20);
  // Everyone else is still served.
  testing::raw_client other(_broker->endpoint);
  ASSERT_TRUE(other.hello(0, token));
  other.send(proto::publish{.request_id = 7, .ack_requested = true, .channel = "acks.y", .key = {}, .payload = "q"});
  ASSERT_TRUE(other.expect<proto::puback>());
}

// Regression (issue 14 item 5), against the binary: HELLO with heartbeat_ms 2^32-1 kept a session
// and its subscriptions for ever after the client vanished. The interval is clamped (WELCOME says
// the value in force) and a closed connection ends its session at once.
TEST_F(slow_consumer_test, heartbeat_is_capped_and_a_closed_connection_ends_its_session) {
  {
    testing::raw_client c(_broker->endpoint);
    auto welcome = c.hello(0xFFFFFFFFu, token);
    ASSERT_TRUE(welcome);
    EXPECT_EQ(welcome->heartbeat_ms, 300'000u);
    c.send(proto::subscribe{.sub_id = 1, .pattern = "hb.>", .options = {}});
    ASSERT_TRUE(c.expect<proto::suback>());
    ASSERT_EQ(metric("switchboard_connections"), 1u);
  }
  for (auto end = std::chrono::steady_clock::now() + 10s; metric("switchboard_connections") != 0;) {
    ASSERT_LT(std::chrono::steady_clock::now(), end) << "the session outlived its connection";
    std::this_thread::yield();
  }
  EXPECT_EQ(metric("switchboard_subscriptions"), 0u);
}

}  // namespace
}  // namespace switchboard
