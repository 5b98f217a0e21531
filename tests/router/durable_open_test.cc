// Opening a durable channel's log never blocks its shard (issue 12): the engine opens it on its
// own thread while the channel's publishes wait and every other channel keeps flowing. The engine
// is the real local engine on the in-memory store, with its opens held at a gate the test opens.
#include <gtest/gtest.h>
#include <switchboard/protocol.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "broker/engine/local_engine.h"
#include "broker/router/router.h"
#include "broker/store/store.h"

namespace switchboard::router {
namespace {

namespace proto = switchboard::protocol;
using namespace std::chrono_literals;

// The local engine whose open_async waits at a gate until release().
class gated_engine final : public engine::history_engine {
 public:
  gated_engine() : _store(store::store::open_memory().value()), _inner(*_store) { _store->start(); }
  ~gated_engine() override {
    release();
    if (_opener.joinable()) _opener.join();
    _store->stop();
  }
  void release() {
    std::lock_guard lock(_mutex);
    _open = true;
    _cv.notify_all();
  }
  std::expected<position, std::string> open(std::string_view c, std::uint64_t k) override { return _inner.open(c, k); }
  void open_async(std::string channel, std::uint64_t keys_since, open_completion done) override {
    if (_opener.joinable()) _opener.join();
    _opener = std::thread([this, channel = std::move(channel), keys_since, done = std::move(done)]() mutable {
      {
        std::unique_lock lock(_mutex);
        _cv.wait(lock, [this] { return _open; });
      }
      done(_inner.open(channel, keys_since));
    });
  }
  std::expected<void, log_error> append(const std::vector<entry>& b, completion& d) override { return _inner.append(b, d); }
  std::expected<std::uint64_t, log_error> wipe(std::uint64_t id) override { return _inner.wipe(id); }
  std::expected<std::vector<event>, log_error> read(std::uint64_t id, std::uint64_t from, std::size_t n,
                                                    std::size_t bytes) override {
    return _inner.read(id, from, n, bytes);
  }
  std::expected<extent, log_error> extent_of(std::uint64_t id) override { return _inner.extent_of(id); }
  std::expected<position, log_error> position_of(std::uint64_t id) override { return _inner.position_of(id); }
  std::expected<std::uint64_t, log_error> trim(std::uint64_t id, const limits& l, std::uint64_t now) override {
    return _inner.trim(id, l, now);
  }
  std::expected<std::vector<std::pair<std::string, std::uint64_t>>, log_error> list(std::string_view after,
                                                                                    std::size_t limit) override {
    return _inner.list(after, limit);
  }

 private:
  std::unique_ptr<store::store> _store;
  engine::local_engine _inner;
  std::mutex _mutex;
  std::condition_variable _cv;
  bool _open = false;
  std::thread _opener;
};

// "dur.*" channels are durable.
class durable_pattern final : public policy_source {
 public:
  channel_policy lookup(std::string_view channel) const override {
    channel_policy p;
    p.durable = channel.starts_with("dur.");
    return p;
  }
  std::uint64_t generation() const noexcept override { return 1; }
};

TEST(durable_open_test, the_shard_keeps_serving_while_a_log_opens_and_held_publishes_follow_in_order) {
  gated_engine log;
  durable_pattern policies;
  router_options o;
  o.shards = 1;
  o.epoch = 42;
  o.policies = &policies;
  o.log = &log;
  router r(o);
  auto& producer = r.add_producer();
  r.start([] {});

  std::map<std::string, std::vector<std::uint64_t>> events;  // channel -> seqs, conn 1
  std::vector<std::uint64_t> pubacks;                         // conn 2
  const auto drain = [&] {
    while (auto out = r.try_take(0)) {
      proto::frame_reader reader(out->bytes);
      for (;;) {
        auto f = reader.next();
        if (!f || !*f) break;
        if (auto* ev = std::get_if<proto::event>(&**f)) events[std::string(ev->channel)].push_back(ev->seq);
        if (auto* ack = std::get_if<proto::puback>(&**f)) pubacks.push_back(ack->seq);
      }
    }
  };
  const auto submit = [&](command cmd) {
    while (!producer.try_submit(0, cmd)) drain();
  };
  const auto publish = [&](const std::string& channel, int n) {
    auto bytes = std::make_shared<std::string>();
    proto::frame_writer w(*bytes);
    for (int i = 0; i < n; ++i) {
      w.write(proto::publish{.request_id = 7, .ack_requested = channel.starts_with("dur."), .channel = channel,
                             .key = {}, .payload = "p"});
    }
    submit(publish_batch{2, bytes, *bytes, 1, true});
  };
  const auto wait_for = [&](auto done) {
    for (auto end = std::chrono::steady_clock::now() + 10s; !done();) {
      if (std::chrono::steady_clock::now() > end) return false;
      drain();
      std::this_thread::yield();
    }
    return true;
  };

  submit(subscribe_command{1, 1, ">", slow_policy::disconnect, false, "tenant", "principal", nullptr});
  publish("dur.calls", 3);   // its log is opening: held
  publish("live.ticks", 2);  // another channel on the same shard: delivered at once
  ASSERT_TRUE(wait_for([&] { return events["live.ticks"].size() == 2; })) << "the shard waited for the open";
  EXPECT_TRUE(events["dur.calls"].empty());
  EXPECT_TRUE(pubacks.empty());

  log.release();
  ASSERT_TRUE(wait_for([&] { return pubacks.size() == 3; }));
  EXPECT_EQ(events["dur.calls"], (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(pubacks, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(r.snapshot().durable_open, 1u);

  // A publisher that goes away while its durable publishes wait: no PUBACK, and no output buffer
  // re-created for the dead connection (the leak of issue 12, "also fix").
  std::size_t outputs_for_3 = 0;
  {
    auto bytes = std::make_shared<std::string>();
    proto::frame_writer w(*bytes);
    w.write(proto::publish{.request_id = 9, .ack_requested = true, .channel = "dur.other", .key = {}, .payload = "x"});
    submit(publish_batch{3, bytes, *bytes, 1, true});  // dur.other's log opens at the (open) gate
    submit(drop_connection{3});
  }
  ASSERT_TRUE(wait_for([&] {
    while (auto out = r.try_take(0)) {
      if (out->conn == 3 && !out->bytes.empty()) ++outputs_for_3;
      proto::frame_reader reader(out->bytes);
      for (;;) {
        auto f = reader.next();
        if (!f || !*f) break;
        if (auto* ev = std::get_if<proto::event>(&**f)) events[std::string(ev->channel)].push_back(ev->seq);
      }
    }
    return events["dur.other"].size() == 1;  // stored and delivered to the subscriber
  }));
  submit(barrier{3, 1});
  ASSERT_TRUE(wait_for([&] {
    bool barrier_seen = false;
    while (auto out = r.try_take(0)) {
      if (out->conn == 3 && !out->bytes.empty()) ++outputs_for_3;
      barrier_seen |= out->conn == 3 && out->barrier_token.has_value();
    }
    return barrier_seen;
  }));
  EXPECT_EQ(outputs_for_3, 0u) << "a PUBACK was sent to a connection that is gone";
  r.stop();
}

}  // namespace
}  // namespace switchboard::router
