// shed(): the slow-consumer policies applied to a client's backlog, record by record.
#include "broker/transport/backlog.h"

#include <gtest/gtest.h>
#include <switchboard/protocol.h>

namespace switchboard::transport {
namespace {

namespace proto = switchboard::protocol;

queued_batch batch_of(std::uint32_t sub, std::string_view channel, std::uint64_t first_seq, int n,
                      std::function<std::string(int)> payload, bool droppable = false) {
  queued_batch b;
  b.droppable = droppable;
  for (int i = 0; i < n; ++i) {
    const auto p = payload(i);
    proto::frame_writer(b.bytes).write(
        proto::event{.sub_id = sub, .epoch = 1, .seq = first_seq + i, .time_ns = 0, .channel = channel, .payload = p});
    ++b.events;
  }
  return b;
}

std::vector<proto::event> events_in(const std::deque<queued_batch>& backlog, std::vector<std::string>& keep) {
  std::vector<proto::event> out;
  for (const auto& b : backlog) {
    keep.push_back(b.bytes);
    proto::frame_reader r(keep.back());
    for (;;) {
      auto f = r.next();
      if (!f || !*f) break;
      if (auto* ev = std::get_if<proto::event>(&**f)) out.push_back(*ev);
    }
  }
  return out;
}

policy_lookup fixed(overflow_policy p, std::string_view key = {}) {
  return [p, key](std::uint32_t, std::string_view) { return event_policy{p, key}; };
}

TEST(backlog_test, drop_oldest_batches_go_whole_and_are_reported) {
  std::deque<queued_batch> backlog;
  backlog.push_back(batch_of(1, "a", 1, 10, [](int) { return "x"; }, true));
  backlog.back().tally = {{1, 10}};  // channel serial 1
  backlog.back().shard = 3;
  backlog.push_back(batch_of(1, "a", 11, 10, [](int) { return "x"; }, true));
  std::size_t events = 20;
  auto r = shed(backlog, events, 15, 1000, fixed(overflow_policy::drop_oldest));
  EXPECT_EQ(r.dropped, 10u);
  EXPECT_EQ(events, 10u);
  EXPECT_FALSE(r.disconnect);
  ASSERT_EQ(r.reports.size(), 1u);
  EXPECT_EQ(r.reports[0].first, 3u);
  std::vector<std::string> keep;
  EXPECT_EQ(events_in(backlog, keep).front().seq, 11u);
}

TEST(backlog_test, conflate_keeps_newest_per_key_and_order) {
  std::deque<queued_batch> backlog;
  backlog.push_back(batch_of(1, "t", 1, 9, [](int i) { return R"({"k":")" + std::to_string(i % 3) + R"(","v":)" + std::to_string(i) + "}"; }));
  backlog.push_back(batch_of(1, "t", 10, 1, [](int) { return "not json"; }));
  std::size_t events = 10;
  auto r = shed(backlog, events, 5, 1000, fixed(overflow_policy::conflate, "k"));
  EXPECT_EQ(r.conflated, 6u);
  EXPECT_FALSE(r.disconnect);
  EXPECT_EQ(events, 4u);
  std::vector<std::string> keep;
  auto evs = events_in(backlog, keep);
  ASSERT_EQ(evs.size(), 4u);
  EXPECT_EQ(evs[0].seq, 7u);
  EXPECT_EQ(evs[1].seq, 8u);
  EXPECT_EQ(evs[2].seq, 9u);
  EXPECT_EQ(evs[3].payload, "not json");  // no key: kept as drop_oldest, and it fit
}

TEST(backlog_test, spill_removes_the_subscription_and_names_the_first_seq) {
  std::deque<queued_batch> backlog;
  backlog.push_back(batch_of(2, "log", 40, 5, [](int) { return "e"; }));
  std::string pong;
  proto::frame_writer(pong).write(proto::pong{9});
  backlog.push_back(queued_batch{pong, 0, false, 0, {}});
  backlog.push_back(batch_of(2, "log", 45, 5, [](int) { return "e"; }));
  std::size_t events = 10;
  auto r = shed(backlog, events, 3, 1000, fixed(overflow_policy::spill));
  EXPECT_EQ(r.spilled, 10u);
  ASSERT_EQ(r.spills.size(), 1u);
  EXPECT_EQ(r.spills[0].sub_id, 2u);
  EXPECT_EQ(r.spills[0].channel, "log");
  EXPECT_EQ(r.spills[0].first_seq, 40u);
  EXPECT_EQ(events, 0u);
  ASSERT_EQ(backlog.size(), 1u);
  EXPECT_EQ(backlog.front().bytes, pong) << "non-EVENT records are kept";
}

TEST(backlog_test, disconnect_when_nothing_may_be_shed_and_keep_is_exempt) {
  std::deque<queued_batch> backlog;
  backlog.push_back(batch_of(1, "a", 1, 10, [](int) { return "x"; }));
  std::size_t events = 10;
  EXPECT_TRUE(shed(backlog, events, 5, 1000, fixed(overflow_policy::disconnect)).disconnect);
  EXPECT_EQ(events, 10u);

  events = 10;
  EXPECT_FALSE(shed(backlog, events, 5, 1000, fixed(overflow_policy::keep)).disconnect);
  events = 10;
  EXPECT_TRUE(shed(backlog, events, 5, 9, fixed(overflow_policy::keep)).disconnect) << "keep_limit bounds kept events";
}

}  // namespace
}  // namespace switchboard::transport
