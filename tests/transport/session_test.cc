// session_table (broker/transport/session.cc): two-phase end, lookups, heartbeat expiry, reaping.
#include "broker/transport/session.h"

#include <gtest/gtest.h>

namespace switchboard::transport {
namespace {

using namespace std::chrono_literals;

TEST(session_test, ended_session_is_invisible_but_alive_until_reaped) {
  session_table t;
  const auto now = clock::now();
  session& a = t.open("peer-a", 1, auth::anonymous_principal(), 100ms, now);
  EXPECT_EQ(t.find("peer-a"), &a);
  EXPECT_EQ(t.find(a.id), &a);
  t.end(a, "gone");
  t.end(a, "again");  // idempotent
  EXPECT_TRUE(a.ended);
  EXPECT_EQ(t.find("peer-a"), nullptr);
  EXPECT_EQ(t.find(a.id), nullptr);
  EXPECT_EQ(t.live(), 0u);

  // The identity can open a new session while the old one waits to be reaped.
  session& b = t.open("peer-a", 1, auth::anonymous_principal(), 100ms, now);
  EXPECT_NE(a.id, b.id);
  EXPECT_EQ(t.find("peer-a"), &b);

  std::vector<std::pair<router::conn_id, std::string>> reaped;
  const auto old_id = a.id;
  EXPECT_EQ(t.reap([&](session& s, std::string_view why) { reaped.emplace_back(s.id, std::string(why)); }), 1u);
  ASSERT_EQ(reaped.size(), 1u);
  EXPECT_EQ(reaped[0], (std::pair<router::conn_id, std::string>{old_id, "gone"}));
  EXPECT_EQ(t.find("peer-a"), &b);
  EXPECT_FALSE(t.has_ended());
}

TEST(session_test, expired_lists_live_sessions_silent_for_three_heartbeats) {
  session_table t;
  const auto now = clock::now();
  session& quiet = t.open("q", 2, auth::anonymous_principal(), 10ms, now);
  t.open("chatty", 3, auth::anonymous_principal(), 10ms, now).last_seen = now + 1s;
  EXPECT_TRUE(t.expired(now + 30ms).empty());
  EXPECT_EQ(t.expired(now + 31ms), (std::vector<router::conn_id>{quiet.id}));
  t.end(quiet, "x");
  EXPECT_TRUE(t.expired(now + 1s).empty());
}

TEST(session_test, end_peer_ends_the_live_sessions_of_that_connection_only) {
  session_table t;
  const auto now = clock::now();
  session& a = t.open("a", 5, auth::anonymous_principal(), 100ms, now);
  session& b = t.open("b", 5, auth::anonymous_principal(), 100ms, now);
  session& c = t.open("c", 6, auth::anonymous_principal(), 100ms, now);
  EXPECT_EQ(t.end_peer(5, "closed"), 2u);
  EXPECT_TRUE(a.ended && b.ended);
  EXPECT_FALSE(c.ended);
  EXPECT_EQ(t.reap([](session&, std::string_view) {}), 2u);
  EXPECT_EQ(t.end_peer(5, "closed"), 0u);
  EXPECT_EQ(t.find("c"), &c);
}

}  // namespace
}  // namespace switchboard::transport
