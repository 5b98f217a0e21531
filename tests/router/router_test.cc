// The router on its own: real shard threads, a producer thread and a consumer thread, no sockets.
// Runs under TSan (label tsan) to check the SPSC hand-offs and the idle/wake protocol.
#include "broker/router/router.h"

#include <gtest/gtest.h>
#include <switchboard/protocol.h>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>

namespace switchboard::router {
namespace {

namespace proto = switchboard::protocol;

// Collects output for each connection, decoding EVENT/PUBACK records.
struct collected {
  std::map<std::string, std::vector<std::uint64_t>> seqs_by_channel;  // EVENTs
  std::map<std::string, std::vector<std::uint64_t>> epochs_by_channel;
  std::vector<std::uint64_t> puback_seqs;
  std::size_t barriers = 0;
  std::size_t events = 0;
};

// Parameter: inline_shards (the consumer thread runs the shards) or shard threads.
class router_test : public ::testing::TestWithParam<bool> {
 protected:
  void make(unsigned shards, std::uint64_t channel_idle_ns = 0) {
    router_options o;
    o.channel_idle_ns = channel_idle_ns;
    o.shards = shards;
    o.epoch = 42;
    o.queue_capacity = 64;  // small, so back-pressure paths run
    o.flush_bytes = 4096;
    o.inline_shards = GetParam();
    _router = std::make_unique<router>(o);
    _producer = &_router->add_producer();
    _router->start([this] { _wakes.fetch_add(1); });
  }
  void TearDown() override {
    if (_router) _router->stop();
  }

  void submit(unsigned shard, command cmd) {
    while (!_producer->try_submit(shard, cmd)) drain();
  }
  void submit_all(const command& cmd) {
    for (unsigned s = 0; s < _router->shards(); ++s) submit(s, command(cmd));
  }

  void drain() {
    if (_router->inline_shards()) (void)_router->poll();
    for (unsigned s = 0; s < _router->shards(); ++s) {
      while (auto out = _router->try_take(s)) take(std::move(*out));
    }
  }
  void take(outbound&& out) {
    auto& c = _out[out.conn];
    if (out.barrier_token) {
      ++c.barriers;
      return;
    }
    proto::frame_reader r(out.bytes);
    std::uint32_t events = 0;
    for (;;) {
      auto f = r.next();
      ASSERT_TRUE(f.has_value());
      if (!*f) break;
      if (auto* ev = std::get_if<proto::event>(&**f)) {
        if (_broker_epoch_only) {
          EXPECT_EQ(ev->epoch, 42u);
        }
        c.seqs_by_channel[std::string(ev->channel)].push_back(ev->seq);
        c.epochs_by_channel[std::string(ev->channel)].push_back(ev->epoch);
        ++c.events;
        ++events;
      } else if (auto* ack = std::get_if<proto::puback>(&**f)) {
        c.puback_seqs.push_back(ack->seq);
      }
    }
    EXPECT_EQ(events, out.events);
  }
  // Waits until every shard answered a barrier submitted now for `conn`.
  void sync(conn_id conn) {
    const auto before = _out[conn].barriers;
    submit_all(barrier{conn, 1});
    const auto want = before + _router->shards();
    for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10); _out[conn].barriers < want;) {
      ASSERT_LT(std::chrono::steady_clock::now(), end) << "barrier never completed";
      drain();
      std::this_thread::yield();
    }
  }

  std::shared_ptr<std::string> batch_of(const std::vector<std::string>& channels, int per_channel, bool ack) {
    auto bytes = std::make_shared<std::string>();
    proto::frame_writer w(*bytes);
    for (int i = 0; i < per_channel; ++i) {
      for (const auto& ch : channels) {
        w.write(proto::publish{.request_id = 1, .ack_requested = ack, .channel = ch, .key = {}, .payload = "p"});
      }
    }
    return bytes;
  }
  void publish(conn_id conn, const std::shared_ptr<std::string>& bytes, bool prevalidated = true) {
    submit_all(publish_batch{conn, bytes, *bytes, 1, prevalidated});
  }

  std::unique_ptr<router> _router;
  router::producer* _producer = nullptr;
  std::atomic<int> _wakes{0};
  std::map<conn_id, collected> _out;
  bool _broker_epoch_only = true;  // every EVENT carries router_options::epoch (no expiry happened)
};

TEST_P(router_test, events_reach_matching_subscribers_in_order_across_shards) {
  make(3);
  submit_all(subscribe_command{1, 7, "a.>", slow_policy::disconnect, false, "tenant", "principal", nullptr});
  submit_all(subscribe_command{3, 1, "a.*", slow_policy::drop_oldest, false, "tenant", "principal", nullptr});
  sync(1);
  const std::vector<std::string> channels{"a.x", "a.y", "a.z", "a.w", "b.x"};
  constexpr int rounds = 50;
  for (int i = 0; i < rounds; ++i) publish(2, batch_of(channels, 10, true));
  sync(1);
  sync(3);
  sync(2);
  for (conn_id sub : {1, 3}) {
    const auto& c = _out[sub];
    EXPECT_EQ(c.events, 4u * rounds * 10) << "subscriber " << sub;
    EXPECT_FALSE(c.seqs_by_channel.contains("b.x"));
    for (const auto& [ch, seqs] : c.seqs_by_channel) {
      ASSERT_EQ(seqs.size(), rounds * 10u) << ch;
      for (std::size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], i + 1) << ch;
    }
  }
  EXPECT_EQ(_out[2].puback_seqs.size(), 5u * rounds * 10);
  const auto st = _router->snapshot();
  EXPECT_EQ(st.published, 5u * rounds * 10);
  EXPECT_EQ(st.delivered, 2u * 4 * rounds * 10);
  EXPECT_EQ(st.subscriptions, 2u);
  EXPECT_EQ(st.channels, 5u);
}

TEST_P(router_test, producer_on_its_own_thread_and_consumer_here) {
  make(2);
  submit_all(subscribe_command{1, 1, ">", slow_policy::disconnect, false, "tenant", "principal", nullptr});
  sync(1);
  constexpr int batches = 400;
  std::atomic<bool> done{false};
  // The producer role moves to another thread: hand the producer over, consume here.
  std::jthread producer([&] {
    for (int i = 0; i < batches; ++i) {
      auto b = batch_of({"x.1", "x.2", "x.3"}, 20, false);
      for (unsigned s = 0; s < _router->shards(); ++s) {
        command cmd{publish_batch{2, b, *b, 1, true}};
        while (!_producer->try_submit(s, cmd)) std::this_thread::yield();
      }
    }
    done = true;
  });
  const std::size_t want = batches * 60;
  for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30); _out[1].events < want;) {
    ASSERT_LT(std::chrono::steady_clock::now(), end) << "got " << _out[1].events << " of " << want;
    drain();
    std::this_thread::yield();
  }
  producer.join();
  for (const auto& [ch, seqs] : _out[1].seqs_by_channel) {
    for (std::size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], i + 1) << ch;
  }
}

TEST_P(router_test, unsubscribe_and_drop_connection_stop_delivery) {
  make(2);
  submit_all(subscribe_command{1, 1, "c.>", slow_policy::disconnect, false, "tenant", "principal", nullptr});
  submit_all(subscribe_command{1, 2, "c.d", slow_policy::disconnect, false, "tenant", "principal", nullptr});
  submit_all(subscribe_command{3, 1, "c.d", slow_policy::disconnect, false, "tenant", "principal", nullptr});
  sync(1);
  publish(2, batch_of({"c.d"}, 1, false));
  sync(1);
  sync(3);
  EXPECT_EQ(_out[1].events, 2u);
  EXPECT_EQ(_out[3].events, 1u);
  submit_all(unsubscribe_command{1, 2});
  submit_all(drop_connection{3});
  publish(2, batch_of({"c.d"}, 1, false));
  sync(1);
  EXPECT_EQ(_out[1].events, 3u);
  EXPECT_EQ(_out[3].events, 1u);
  EXPECT_EQ(_router->snapshot().subscriptions, 1u);
}

TEST_P(router_test, unvalidated_batch_skips_bad_records) {
  make(1);
  submit_all(subscribe_command{1, 1, ">", slow_policy::disconnect, false, "tenant", "principal", nullptr});
  sync(1);
  publish(2, batch_of({"ok", "bad..name", "fine"}, 1, true), /*prevalidated=*/false);
  sync(1);
  EXPECT_EQ(_out[1].events, 2u);
  EXPECT_FALSE(_out[1].seqs_by_channel.contains("bad..name"));
}

TEST_P(router_test, stop_processes_everything_already_submitted) {
  make(2);
  submit_all(subscribe_command{1, 1, "s", slow_policy::disconnect, false, "tenant", "principal", nullptr});
  sync(1);
  publish(2, batch_of({"s"}, 30, false));
  // Drain concurrently while stop() runs: shards may wait for room in their output queues.
  std::atomic<bool> stopped{false};
  std::jthread stopper([&] {
    _router->stop();
    stopped = true;
  });
  while (!stopped) drain();
  drain();
  EXPECT_EQ(_out[1].events, 30u);
}

INSTANTIATE_TEST_SUITE_P(modes, router_test, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "inline" : "threaded"; });

// Channel lifecycle (issue 12): idle channels with no subscriber leave memory on expire_idle; a
// channel that comes back starts a new history under a new epoch, never re-using (epoch, seq).
TEST_P(router_test, idle_channels_expire_and_come_back_under_a_new_epoch) {
  constexpr std::uint64_t second = 1'000'000'000;
  _broker_epoch_only = false;
  make(2, second);
  submit_all(subscribe_command{1, 1, "keep.>", slow_policy::disconnect, false, "tenant", "principal", nullptr});
  publish(2, batch_of({"keep.a", "gone.a", "gone.b"}, 3, false));  // published at t = 1 ns
  auto recent = batch_of({"busy.a"}, 1, false);
  submit_all(publish_batch{2, recent, *recent, 2 * second + second / 2, true});
  sync(2);
  EXPECT_EQ(_router->snapshot().channels, 4u);
  EXPECT_EQ(_out[1].epochs_by_channel["keep.a"], (std::vector<std::uint64_t>{42, 42, 42}));

  submit_all(expire_idle{.now_ns = 3 * second});
  sync(2);
  // gone.a and gone.b were idle and unwatched; keep.a has a subscriber; busy.a was active 0.5 s ago.
  EXPECT_EQ(_router->snapshot().channels, 2u);
  EXPECT_EQ(_router->snapshot().channels_expired, 2u);

  // gone.a comes back: numbered from 1 again, under an epoch that is not the old one.
  submit_all(subscribe_command{3, 1, "gone.a", slow_policy::disconnect, false, "tenant", "principal", nullptr});
  publish(2, batch_of({"gone.a"}, 2, false));
  sync(2);
  sync(3);
  EXPECT_EQ(_out[3].seqs_by_channel["gone.a"], (std::vector<std::uint64_t>{1, 2}));
  ASSERT_EQ(_out[3].epochs_by_channel["gone.a"].size(), 2u);
  EXPECT_NE(_out[3].epochs_by_channel["gone.a"][0], 42u);
  EXPECT_EQ(_out[3].epochs_by_channel["gone.a"][0], _out[3].epochs_by_channel["gone.a"][1]);

  // Once its subscriber leaves and it stays idle, keep.a goes too; busy.a after its idle period.
  submit_all(unsubscribe_command{.conn = 1, .sub_id = 1});
  submit_all(expire_idle{.now_ns = 5 * second});
  sync(2);
  EXPECT_EQ(_router->snapshot().channels, 1u);  // gone.a: watched by conn 3
  EXPECT_EQ(_router->snapshot().channels_expired, 4u);
}

}  // namespace
}  // namespace switchboard::router
