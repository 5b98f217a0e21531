// transport_core (broker/transport/core.cc) driven in-process through a recording wire and a real
// router: session teardown under a full shard queue and a vanished peer (run it under ASan), the
// heartbeat range, the bound on unread replies, and empty messages from unknown peers.
#include "broker/transport/core.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "support/recording_wire.h"

namespace switchboard::transport {
namespace {

namespace proto = switchboard::protocol;
using testing::recording_wire;

class core_test : public ::testing::Test {
 protected:
  void make(router::router_options ro = {}, transport_options to = {}) {
    ro.inline_shards = true;
    if (ro.epoch == 0) ro.epoch = 7;
    _router = std::make_unique<router::router>(ro);
    to.epoch = ro.epoch;
    _opts = to;
    _core = std::make_unique<transport_core>(_opts, *_router, _wire);
    _router->start([] {});
  }
  void SetUp() override { make(); }
  void TearDown() override {
    if (_router) _router->stop();
  }

  void send(const std::string& identity, std::string bytes, int peer = 0) {
    auto owner = std::make_shared<std::string>(std::move(bytes));
    _core->handle_message(identity, peer, owner, *owner);
  }
  template <typename F>
  void send_frame(const std::string& identity, const F& f) {
    send(identity, proto::encode(f));
  }
  // Runs the loop until nothing moves (inline shards: bounded by the work queued).
  void settle() {
    for (int i = 0; i < 1000; ++i) {
      _core->tick(clock::now());  // reaping submits teardown: drain after it
      const bool worked = _core->drain();
      if (!worked && !_core->busy()) return;
    }
  }
  void hello(const std::string& identity, std::uint32_t heartbeat_ms = 0) {
    send_frame(identity, proto::hello{.version = proto::version, .heartbeat_ms = heartbeat_ms, .token = {}});
    settle();
  }

  recording_wire _wire;
  transport_options _opts;
  std::unique_ptr<router::router> _router;
  std::unique_ptr<transport_core> _core;
};

TEST_F(core_test, publisher_vanishing_while_its_message_is_submitted_is_reaped_safely) {
  router::router_options ro;
  ro.queue_capacity = 2;  // every few submits find the shard queue full and drain output meanwhile
  ro.flush_bytes = 1;     // each PUBACK leaves at once, so one hits the vanished peer mid-message
  make(ro);
  hello("pub");
  hello("sub");
  send_frame("sub", proto::subscribe{.sub_id = 1, .pattern = "t.>", .options = {}});
  settle();
  ASSERT_EQ(_wire.all<proto::suback>("sub").size(), 1u);

  _wire.gone.insert("pub");
  std::string batch;
  proto::frame_writer w(batch);
  for (std::uint32_t i = 0; i < 200; ++i) {  // PUB runs broken by PINGs: many submits and barriers
    w.write(proto::publish{.request_id = i, .ack_requested = true, .channel = "t.x", .key = {}, .payload = "p"});
    if (i % 3 == 0) w.write(proto::ping{i});
  }
  send("pub", batch);
  settle();
  EXPECT_EQ(_core->stats().connections.load(), 1u);  // only "sub" is left

  // Everything the vanished publisher managed to publish reached the subscriber in order.
  const auto events = _wire.all<proto::event>("sub");
  ASSERT_FALSE(events.empty());
  EXPECT_LT(events.size(), 200u) << "the publisher should have been found gone mid-message";
  for (std::size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].seq, i + 1);

  // A message under the old identity now needs a new HELLO, and the broker serves others.
  send_frame("pub", proto::ping{1});
  _wire.gone.erase("pub");
  send_frame("pub", proto::ping{2});
  settle();
  ASSERT_FALSE(_wire.all<proto::error>("pub").empty());
  EXPECT_EQ(_wire.all<proto::error>("pub").back().code, "hello_required");
  hello("pub");
  send_frame("pub", proto::publish{.request_id = 9, .ack_requested = true, .channel = "t.y", .key = {}, .payload = "z"});
  settle();
  ASSERT_EQ(_wire.all<proto::puback>("pub").size(), 1u);
  EXPECT_EQ(_wire.all<proto::event>("sub").back().payload, "z");
}

// Regression (issue 14 item 9): a new connection that set a vanished client's routing identity
// inherited its session (subscriptions, PUB rights) without HELLO or token.
TEST_F(core_test, identity_reused_by_another_connection_needs_a_new_hello) {
  hello("victim-01");  // on connection 0
  send_frame("victim-01", proto::subscribe{.sub_id = 1, .pattern = "v.>", .options = {}});
  settle();
  ASSERT_EQ(_wire.all<proto::suback>("victim-01").size(), 1u);
  _wire.sent.clear();
  // Connection 1 claims the identity: nothing runs, and the victim's session is gone.
  send("victim-01", proto::encode(proto::subscribe{.sub_id = 2, .pattern = "v.>", .options = {}}) +
                        proto::encode(proto::publish{.request_id = 1, .ack_requested = true, .channel = "v.x",
                                                     .key = {}, .payload = "p"}),
       1);
  settle();
  const auto errs = _wire.all<proto::error>("victim-01");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].code, "hello_required");
  EXPECT_TRUE(_wire.all<proto::suback>("victim-01").empty());
  EXPECT_TRUE(_wire.all<proto::puback>("victim-01").empty());
  EXPECT_EQ(_core->stats().connections.load(), 0u);
  EXPECT_EQ(_router->snapshot().subscriptions, 0u);
}

TEST_F(core_test, closed_connection_ends_its_sessions_at_once) {
  hello("a");
  send_frame("a", proto::subscribe{.sub_id = 1, .pattern = "c.>", .options = {}});
  settle();
  _core->peer_closed(0);
  settle();
  EXPECT_EQ(_core->stats().connections.load(), 0u);
  EXPECT_EQ(_router->snapshot().subscriptions, 0u);
}

TEST_F(core_test, heartbeat_is_clamped_to_its_documented_range) {
  hello("slow", 0xFFFFFFFFu);
  hello("fast", 1);
  hello("default", 0);
  ASSERT_EQ(_wire.all<proto::welcome>("slow").size(), 1u);
  EXPECT_EQ(_wire.all<proto::welcome>("slow")[0].heartbeat_ms, 300'000u);
  EXPECT_EQ(_wire.all<proto::welcome>("fast")[0].heartbeat_ms, 10u);
  EXPECT_EQ(_wire.all<proto::welcome>("default")[0].heartbeat_ms, 5000u);
}

TEST_F(core_test, silent_session_with_subscriptions_is_reaped_after_three_heartbeats) {
  hello("quiet", 10);
  send_frame("quiet", proto::subscribe{.sub_id = 1, .pattern = "q.>", .options = {}});
  settle();
  _core->tick(clock::now() + std::chrono::seconds(1));
  EXPECT_EQ(_core->stats().reaped.load(), 1u);
  EXPECT_EQ(_core->stats().connections.load(), 0u);
  settle();
  EXPECT_EQ(_router->snapshot().subscriptions, 0u);
}

TEST_F(core_test, publisher_that_never_reads_its_pubacks_is_dropped_at_the_reply_bound) {
  transport_options to;
  to.reply_queue_bytes = 4096;
  make({}, to);
  hello("pub");
  _wire.full.insert("pub");
  for (std::uint32_t i = 0; i < 2000 && _core->stats().connections.load() == 1; ++i) {
    send_frame("pub", proto::publish{.request_id = i, .ack_requested = true, .channel = "r.x", .key = {}, .payload = "p"});
    settle();
  }
  EXPECT_EQ(_core->stats().connections.load(), 0u);
  EXPECT_EQ(_core->stats().slow_disconnects.load(), 1u);
  _wire.full.erase("pub");
  settle();
  const auto errs = _wire.all<proto::error>("pub");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].code, "slow_consumer");
  EXPECT_TRUE(std::string(errs[0].message).starts_with("client left ")) << errs[0].message;
  EXPECT_TRUE(std::string(errs[0].message).ends_with("bytes of replies unread (limit 4096); its session was dropped"))
      << errs[0].message;
}

TEST_F(core_test, empty_message_is_ignored_from_known_and_unknown_peers) {
  send("stranger", "");
  hello("known");
  send("known", "");
  settle();
  EXPECT_EQ(_wire.sent.count("stranger"), 0u);
  EXPECT_EQ(_wire.frames("known").size(), 1u);  // the WELCOME only
  EXPECT_EQ(_core->stats().bad_frames.load(), 0u);
}

}  // namespace
}  // namespace switchboard::transport
