// Tests of libswitchboard_client against the real broker, started in process per test.
#include <gtest/gtest.h>
#include <switchboard/client.h>
#include <switchboard/protocol.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "broker/server/server.h"

namespace switchboard {
namespace {

using namespace std::chrono_literals;

// Polls `done` until it holds or `timeout` passes (waiting for a condition, not for readiness).
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

server::options broker_options(std::string bind = "tcp://127.0.0.1:*") {
  server::options o;
  o.bind = std::move(bind);
  o.memory = true;
  o.admin_port = 0;
  o.shards = 1;
  o.log_level = "warn";
  return o;
}

class client_test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = server::server::start(broker_options());
    ASSERT_TRUE(s) << s.error().message;
    _server = std::move(*s);
    _endpoint = _server->endpoint();
  }
  void TearDown() override {
    if (_server) _server->stop();
  }

  client_options options() const {
    client_options o;
    o.url = _endpoint;
    o.connect_timeout = 5s;
    return o;
  }
  std::shared_ptr<client> connect(client_options o) {
    auto c = client::connect(std::move(o));
    EXPECT_TRUE(c) << (c ? "" : c.error().message);
    return c ? *c : nullptr;
  }
  std::shared_ptr<client> connect() { return connect(options()); }

  std::unique_ptr<server::server> _server;
  std::string _endpoint;
};

TEST_F(client_test, publish_subscribe_round_trip_with_callback) {
  auto sub_client = connect();
  auto pub_client = connect();
  ASSERT_TRUE(sub_client && pub_client);

  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> got;  // channel, payload
  auto sub = sub_client->subscribe("orders.created", [&](const event_view& ev) {
    std::lock_guard lk(mu);
    got.emplace_back(std::string(ev.channel), std::string(ev.payload));
  });
  ASSERT_TRUE(sub) << sub.error().message;

  ASSERT_TRUE(pub_client->publish("orders.created", R"({"id":1})"));
  ASSERT_TRUE(pub_client->flush(5s));
  ASSERT_TRUE(wait_until([&] {
    std::lock_guard lk(mu);
    return !got.empty();
  }));
  std::lock_guard lk(mu);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, "orders.created");
  EXPECT_EQ(got[0].second, R"({"id":1})");
}

TEST_F(client_test, pull_next_returns_empty_optional_on_timeout) {
  auto c = connect();
  ASSERT_TRUE(c);
  auto sub = c->subscribe("quiet.channel");
  ASSERT_TRUE(sub) << sub.error().message;
  const auto start = std::chrono::steady_clock::now();
  auto m = (*sub)->next(100ms);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_FALSE(m->has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);

  // And a published event arrives through the same API.
  ASSERT_TRUE(c->publish("quiet.channel", "hello"));
  auto m2 = (*sub)->next(5s);
  ASSERT_TRUE(m2 && m2->has_value());
  EXPECT_EQ((*m2)->payload, "hello");
  EXPECT_EQ((*m2)->channel, "quiet.channel");
}

TEST_F(client_test, wildcards_fan_out_to_several_subscribers) {
  auto star = connect();
  auto tail = connect();
  auto exact = connect();
  auto pub = connect();
  ASSERT_TRUE(star && tail && exact && pub);
  auto s_star = star->subscribe("fan.*.x");
  auto s_tail = tail->subscribe("fan.>");
  auto s_exact = exact->subscribe("fan.a.x");
  ASSERT_TRUE(s_star && s_tail && s_exact);

  ASSERT_TRUE(pub->publish("fan.a.x", "1"));
  ASSERT_TRUE(pub->publish("fan.b.x", "2"));
  ASSERT_TRUE(pub->publish("fan.a.y.z", "3"));
  ASSERT_TRUE(pub->flush(5s));

  auto drain = [](subscription& s, std::size_t want) {
    std::vector<std::string> out;
    while (out.size() < want) {
      auto m = s.next(5s);
      if (!m || !m->has_value()) break;
      out.push_back((*m)->channel + "=" + (*m)->payload);
    }
    // Nothing more arrives (the broker processed everything: flush above).
    auto extra = s.next(100ms);
    if (extra && extra->has_value()) out.push_back("unexpected " + (*extra)->channel);
    return out;
  };
  EXPECT_EQ(drain(**s_star, 2), (std::vector<std::string>{"fan.a.x=1", "fan.b.x=2"}));
  EXPECT_EQ(drain(**s_tail, 3), (std::vector<std::string>{"fan.a.x=1", "fan.b.x=2", "fan.a.y.z=3"}));
  EXPECT_EQ(drain(**s_exact, 1), (std::vector<std::string>{"fan.a.x=1"}));
}

TEST_F(client_test, unsubscribe_stops_delivery) {
  auto c = connect();
  auto pub = connect();
  ASSERT_TRUE(c && pub);
  std::atomic<int> stopped{0}, control{0};
  auto s_stopped = c->subscribe("unsub.test", [&](const event_view&) { stopped.fetch_add(1); });
  auto s_control = c->subscribe("unsub.test", [&](const event_view&) { control.fetch_add(1); });
  ASSERT_TRUE(s_stopped && s_control);

  ASSERT_TRUE(pub->publish("unsub.test", "before"));
  ASSERT_TRUE(wait_until([&] { return stopped.load() == 1 && control.load() == 1; }));

  (*s_stopped)->unsubscribe();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(pub->publish("unsub.test", "after"));
  ASSERT_TRUE(pub->flush(5s));
  ASSERT_TRUE(wait_until([&] { return control.load() == 11; }));
  EXPECT_EQ(stopped.load(), 1);
  (*s_stopped)->unsubscribe();  // idempotent
}

TEST_F(client_test, one_publisher_keeps_order_of_100k_events) {
  constexpr std::uint64_t count = 100'000;
  auto sub_client = connect();
  auto pub_client = connect();
  ASSERT_TRUE(sub_client && pub_client);

  std::atomic<std::uint64_t> received{0};
  std::atomic<bool> in_order{true};
  std::uint64_t last_seq = 0;      // I/O thread only
  std::uint64_t next_counter = 0;  // I/O thread only
  auto sub = sub_client->subscribe("order.test", [&](const event_view& ev) {
    std::uint64_t counter = 0;
    if (ev.payload.size() != sizeof counter) {
      in_order = false;
    } else {
      std::memcpy(&counter, ev.payload.data(), sizeof counter);
    }
    if (counter != next_counter || (received.load() > 0 && ev.seq <= last_seq)) in_order = false;
    last_seq = ev.seq;
    next_counter = counter + 1;
    received.fetch_add(1, std::memory_order_release);
  });
  ASSERT_TRUE(sub);

  for (std::uint64_t i = 0; i < count; ++i) {
    ASSERT_TRUE(pub_client->publish("order.test", std::string_view(reinterpret_cast<const char*>(&i), sizeof i)));
  }
  ASSERT_TRUE(pub_client->flush(30s));
  ASSERT_TRUE(wait_until([&] { return received.load() == count; }, 60s)) << "received " << received.load();
  EXPECT_TRUE(in_order.load());
}

TEST_F(client_test, publish_sync_returns_sequence) {
  auto c = connect();
  ASSERT_TRUE(c);
  auto a = c->publish_sync("sync.test", "one", 5s);
  ASSERT_TRUE(a) << a.error().message;
  auto b = c->publish_sync("sync.test", "two", 5s);
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(b->seq, a->seq + 1);
  EXPECT_EQ(b->epoch, a->epoch);

  std::promise<std::expected<publish_ack, error>> done;
  ASSERT_TRUE(c->publish_async("sync.test", "three", [&](std::expected<publish_ack, error> r) { done.set_value(r); }));
  auto fut = done.get_future();
  ASSERT_EQ(fut.wait_for(5s), std::future_status::ready);
  auto r = fut.get();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->seq, b->seq + 1);
}

TEST_F(client_test, invalid_pattern_is_rejected_with_broker_code) {
  auto c = connect();
  ASSERT_TRUE(c);
  auto sub = c->subscribe("a..b");
  ASSERT_FALSE(sub);
  EXPECT_EQ(sub.error().code, errc::rejected);
  EXPECT_EQ(sub.error().broker_code, "invalid_pattern");

  auto empty = c->subscribe("");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, errc::invalid_argument);
  EXPECT_EQ(c->publish("", "x").error().code, errc::invalid_argument);
}

TEST_F(client_test, connect_to_nothing_is_unreachable_within_timeout) {
  _server->stop();  // its port is now free and nothing listens on it
  auto o = options();
  o.connect_timeout = 300ms;
  const auto start = std::chrono::steady_clock::now();
  auto c = client::connect(o);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, errc::unreachable);
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 2s);
}

// close() says BYE (issue 19): against the real broker the session and its subscriptions are gone
// at once, with no heartbeat reap.
TEST_F(client_test, close_ends_the_session_at_once) {
  auto o = options();
  o.heartbeat = 60s;  // a reap would take 3 minutes
  auto c = client::connect(o);
  ASSERT_TRUE(c) << c.error().message;
  auto s = (*c)->subscribe("bye.>");
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_EQ(_server->snapshot().connections, 1u);
  (*c)->close();
  EXPECT_TRUE(wait_until([&] { return _server->snapshot().connections == 0 && _server->snapshot().subscriptions == 0; }, 2s));
  EXPECT_EQ(_server->snapshot().reaped, 0u);
}

// The record itself: a stand-in broker (a ROUTER socket) answers HELLO and sees BYE as the last
// record the client sends on close().
TEST(client_bye, close_sends_bye_as_its_last_record) {
  zmq::context_t ctx;
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("tcp://127.0.0.1:*");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  auto recv_records = [&](std::string& identity) -> std::vector<protocol::frame_type> {
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(5000)) <= 0) return {};
    zmq::message_t id;
    zmq::message_t body;
    (void)router.recv(id);
    (void)router.recv(body);
    identity = id.to_string();
    std::vector<protocol::frame_type> types;
    const auto bytes = body.to_string();
    for (std::size_t at = 0; at + protocol::header_bytes <= bytes.size();) {
      types.push_back(static_cast<protocol::frame_type>(bytes[at]));
      std::uint32_t len = 0;
      std::memcpy(&len, bytes.data() + at + 4, sizeof len);
      at += protocol::header_bytes + len;
    }
    return types;
  };
  std::thread broker([&] {
    std::string identity;
    auto hello = recv_records(identity);
    ASSERT_EQ(hello, std::vector{protocol::frame_type::hello});
    const std::string welcome = protocol::encode(protocol::welcome{.heartbeat_ms = 60000, .max_payload_bytes = 1024,
                                                                   .epoch = 1, .server = "stand-in"});
    (void)router.send(zmq::buffer(identity), zmq::send_flags::sndmore);
    (void)router.send(zmq::buffer(welcome), zmq::send_flags::none);
  });
  client_options o;
  o.url = endpoint;
  o.heartbeat = 60s;
  auto c = client::connect(o);
  broker.join();
  ASSERT_TRUE(c) << c.error().message;
  (*c)->close();  // the stand-in never answers the PING: close() waits its 1 s bound, then says BYE
  std::string identity;
  std::vector<protocol::frame_type> records;
  while (records.empty() || records.back() != protocol::frame_type::bye) {
    const auto more = recv_records(identity);
    if (more.empty()) break;
    records.insert(records.end(), more.begin(), more.end());
  }
  ASSERT_FALSE(records.empty()) << "nothing arrived after close()";
  EXPECT_EQ(records.back(), protocol::frame_type::bye);
  // Before BYE, a PING: everything sent earlier is applied before the session ends (ACKs have no
  // answer of their own).
  EXPECT_NE(std::find(records.begin(), records.end(), protocol::frame_type::ping), records.end());
}

TEST_F(client_test, close_is_idempotent_and_fails_later_calls) {
  auto c = connect();
  ASSERT_TRUE(c);
  c->close();
  c->close();
  auto r = c->publish("x.y", "z");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::closed);
}

TEST_F(client_test, reconnects_and_resubscribes_after_broker_restart) {
  auto o = options();
  o.heartbeat = 100ms;
  o.reconnect_min = 10ms;
  o.reconnect_max = 200ms;
  o.connect_timeout = 1s;
  auto sub_client = connect(o);
  auto pub_client = connect(o);
  ASSERT_TRUE(sub_client && pub_client);
  std::atomic<int> after_restart{0};
  auto sub = sub_client->subscribe("restart.test", [&](const event_view& ev) {
    if (ev.payload == "after") after_restart.fetch_add(1);
  });
  ASSERT_TRUE(sub);

  _server->stop();
  _server.reset();
  // Same endpoint: the port of the first broker. Binding can race with the old socket's teardown.
  std::unique_ptr<server::server> second;
  ASSERT_TRUE(wait_until([&] {
    auto s = server::server::start(broker_options(_endpoint));
    if (s) second = std::move(*s);
    return second != nullptr;
  }));
  _server = std::move(second);
  ASSERT_EQ(_server->endpoint(), _endpoint);

  // Probe: publish until the resubscribed client receives, bounded by a deadline.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (after_restart.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    (void)pub_client->publish("restart.test", "after");
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_GT(after_restart.load(), 0);
  EXPECT_GE(sub_client->reconnects(), 1u);
  EXPECT_TRUE(sub_client->connected());
}

// Send asap: idle publishes leave from the calling thread, bursts go through the I/O thread. The
// same client publishes and receives, so a direct send may consume the ZMQ_FD edge the sleeping I/O
// thread waits on; with a 10 s heartbeat a missed edge shows up as a stalled round trip. Order of
// one thread's publishes must hold across direct sends, batches and publish_sync, and across
// several publishing threads.
TEST_F(client_test, send_asap_and_batched_publishes_keep_order_without_stalls) {
  for (const auto gap : {std::chrono::microseconds(20), std::chrono::microseconds(0)}) {
    SCOPED_TRACE(gap.count());
    auto o = options();
    o.heartbeat = 10s;
    o.send_asap_gap = gap;
    auto c = connect(o);
    ASSERT_TRUE(c);
    auto sub = c->subscribe("asap.events");
    ASSERT_TRUE(sub) << sub.error().message;

    // Round trips: every publish finds the client idle.
    for (int i = 0; i < 300; ++i) {
      ASSERT_TRUE(c->publish("asap.events", std::to_string(i)));
      auto m = (*sub)->next(1s);
      ASSERT_TRUE(m && m->has_value()) << "round trip " << i << " stalled";
      ASSERT_EQ((*m)->payload, std::to_string(i));
    }

    // Bursts, pauses and acknowledged publishes mixed, one thread.
    int n = 0;
    for (int round = 0; round < 200; ++round) {
      for (int k = 0; k < round % 7 + 1; ++k) ASSERT_TRUE(c->publish("asap.events", std::to_string(n++)));
      if (round % 5 == 0) {
        auto a = c->publish_sync("asap.events", std::to_string(n++), 5s);
        ASSERT_TRUE(a) << a.error().message;
      }
      if (round % 3 != 0) std::this_thread::sleep_for(std::chrono::microseconds(30 * (round % 3)));
    }
    ASSERT_TRUE(c->flush(5s));
    for (int i = 0; i < n; ++i) {
      auto m = (*sub)->next(5s);
      ASSERT_TRUE(m && m->has_value()) << "event " << i << " of " << n << " missing";
      ASSERT_EQ((*m)->payload, std::to_string(i));
    }

    // Several threads, paced and bursty: each thread's events arrive in its order.
    constexpr int threads = 4;
    constexpr int per_thread = 2000;
    std::vector<std::thread> pubs;
    for (int t = 0; t < threads; ++t) {
      pubs.emplace_back([&c, t] {
        for (int i = 0; i < per_thread; ++i) {
          (void)c->publish("asap.events", std::to_string(t) + ":" + std::to_string(i));
          if (i % 16 == t) std::this_thread::sleep_for(50us);
        }
      });
    }
    for (auto& th : pubs) th.join();
    ASSERT_TRUE(c->flush(5s));
    std::vector<int> next_of(threads, 0);
    for (int i = 0; i < threads * per_thread; ++i) {
      auto m = (*sub)->next(5s);
      ASSERT_TRUE(m && m->has_value()) << "event " << i << " missing";
      const std::string& p = (*m)->payload;
      const auto colon = p.find(':');
      ASSERT_NE(colon, std::string::npos) << p;
      const int t = std::stoi(p.substr(0, colon));
      ASSERT_EQ(std::stoi(p.substr(colon + 1)), next_of[t]++) << "thread " << t;
    }
    EXPECT_EQ((*sub)->dropped(), 0u);
  }
}

// A client that publishes from its own thread now and then (each publish a direct send, spaced
// beyond ZeroMQ's ~1 ms command throttle so each one processes the socket's pending commands)
// while it receives a steady stream from another client: no received event may get stuck behind
// an edge on ZMQ_FD that the publisher's send consumed (heartbeat 10 s, so a miss is a long stall).
TEST_F(client_test, direct_sends_do_not_stall_receiving_on_the_same_client) {
  auto o = options();
  o.heartbeat = 10s;
  auto a = connect(o);
  auto b = connect(o);
  ASSERT_TRUE(a && b);
  auto sub = a->subscribe("stream.in");
  ASSERT_TRUE(sub) << sub.error().message;

  constexpr int events = 1500;
  std::atomic<bool> stop{false};
  std::thread a_pub([&] {
    while (!stop.load()) {
      (void)a->publish("stream.out", "x");
      std::this_thread::sleep_for(1050us);
    }
  });
  std::thread b_pub([&] {
    for (int i = 0; i < events; ++i) {
      (void)b->publish("stream.in", std::to_string(i));
      std::this_thread::sleep_for(1ms);
    }
  });
  int got = 0;
  for (; got < events; ++got) {
    auto m = (*sub)->next(1s);
    if (!m || !m->has_value()) break;
    if ((*m)->payload != std::to_string(got)) break;
  }
  stop.store(true);
  a_pub.join();
  b_pub.join();
  EXPECT_EQ(got, events) << "receiving stalled or reordered after " << got << " events";
}

}  // namespace
}  // namespace switchboard
