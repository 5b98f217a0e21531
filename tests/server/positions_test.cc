// Positions are (epoch, seq) and never bound to two events (issue 12), against the real binary on a
// real RocksDB data dir: a log trimmed to empty keeps numbering across SIGTERM and SIGKILL restarts,
// DELETE /v1/channels/{name}/events starts a new epoch and tells attached durable subscriptions,
// clients present positions (SUB start {"epoch","seq"}, history ?epoch=) and a stale epoch is
// refused, never answered by seq.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <switchboard/client.h>

#include <mutex>
#include <regex>
#include <string>
#include <vector>

#include "broker/common/epoch_text.h"
#include "support/broker_process.h"

namespace switchboard {
namespace {

using namespace std::chrono_literals;

constexpr const char* token = "positions-token";

class positions_test : public ::testing::Test {
 protected:
  void start() {
    _broker = std::make_unique<test::broker_process>(_dir.path(), token,
                                                     std::vector<std::string>{"--retention-interval-ms", "20"});
    ASSERT_TRUE(_broker->ok()) << _broker->stderr_text();
    _http = _broker->http(token);
  }
  void SetUp() override { start(); }

  // Connects; NOTICEs and errors the broker sends are collected in `_notices` as "code: message".
  std::shared_ptr<client> connect() {
    client_options co;
    co.url = _broker->endpoint;
    co.token = token;
    co.on_error = [this](const error& e) {
      std::lock_guard lock(_mutex);
      _notices.push_back(e.broker_code + ": " + e.message);
    };
    auto c = client::connect(co);
    EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message);
    return c ? *c : nullptr;
  }
  std::vector<std::string> notices() {
    std::lock_guard lock(_mutex);
    return _notices;
  }

  std::unique_ptr<subscription> attach(client& c, const std::string& channel, const std::string& options) {
    subscribe_options so;
    so.extra_json = options;
    auto sub = c.subscribe(channel, nullptr, so);
    EXPECT_TRUE(sub.has_value()) << (sub ? "" : sub.error().broker_code + ": " + sub.error().message);
    return sub ? std::move(*sub) : nullptr;
  }
  message next(subscription& s, std::chrono::milliseconds timeout = 10s) {
    auto m = s.next(timeout);
    if (!m || !*m) {
      ADD_FAILURE() << "no event within " << timeout.count() << " ms";
      return {};
    }
    return std::move(**m);
  }
  void expect_status(const httplib::Result& r, int status) {
    ASSERT_TRUE(r) << "no response";
    ASSERT_EQ(r->status, status) << r->body;
  }
  // A response body without the final newline (if the server ends bodies with one).
  static std::string body(const httplib::Result& r) {
    if (!r) return "";
    std::string b = r->body;
    if (!b.empty() && b.back() == '\n') b.pop_back();
    return b;
  }
  // The channel's history document (GET /v1/channels/{name}/events).
  std::string history(const std::string& channel, const std::string& query = "") {
    auto r = _http->Get("/v1/channels/" + channel + "/events" + query);
    EXPECT_TRUE(r);
    return body(r);
  }
  // Polls the subscription's document until `needle` appears and the cursor is saved (so a
  // SIGKILL now redelivers nothing).
  bool wait_subscription(const std::string& name, const std::string& needle) {
    for (auto end = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < end;) {
      auto r = _http->Get("/v1/subscriptions/" + name);
      if (r && r->status == 200 && r->body.find(needle) != std::string::npos &&
          r->body.find(R"("saved":true)") != std::string::npos) {
        return true;
      }
      std::this_thread::yield();
    }
    return false;
  }

  test::temp_dir _dir;
  std::unique_ptr<test::broker_process> _broker;
  std::unique_ptr<httplib::Client> _http;
  std::mutex _mutex;
  std::vector<std::string> _notices;

  // Waits until retention has emptied the channel's log.
  void wait_trimmed_to_empty(const std::string& channel) {
    for (auto end = std::chrono::steady_clock::now() + 10s;
         history(channel).find(R"("events":[],)") == std::string::npos;) {
      ASSERT_LT(std::chrono::steady_clock::now(), end) << history(channel);
    }
    EXPECT_NE(history(channel).find(R"("first_seq":0)"), std::string::npos) << history(channel);
  }

  // One round of issue 12's scenario on channel pos.trim with durable subscription "ledger": five
  // events from `first` are published and consumed, retention trims the log to empty, the broker
  // restarts (SIGKILL or SIGTERM), and the next publish continues the numbering, reaching the
  // subscription whose cursor was past the trimmed events with no gap and no skip.
  void trim_restart_round(std::uint64_t first, bool kill) {
    {
      auto c = connect();
      auto sub = attach(*c, "pos.trim", R"("durable":"ledger")");
      ASSERT_TRUE(sub);
      for (std::uint64_t i = 0; i < 5; ++i) {
        auto ack = c->publish_sync("pos.trim", "old-" + std::to_string(first + i), 5s);
        ASSERT_TRUE(ack) << ack.error().message;
        EXPECT_EQ(ack->seq, first + i);
      }
      for (std::uint64_t i = 0; i < 5; ++i) EXPECT_EQ(next(*sub).seq, first + i);
      ASSERT_TRUE(wait_subscription("ledger", "\"acked_seq\":" + std::to_string(first + 4)));
    }
    expect_status(_http->Patch("/v1/channels/pos.trim", R"({"retention":{"max_age":"1ms"}})", "application/json"),
                  200);
    wait_trimmed_to_empty("pos.trim");
    expect_status(_http->Patch("/v1/channels/pos.trim", R"({"retention":null})", "application/json"), 200);

    if (kill) {
      _broker->kill9();
    } else {
      ASSERT_EQ(_broker->terminate(), 0);
    }
    start();
    auto c = connect();
    auto ack = c->publish_sync("pos.trim", "new-" + std::to_string(first + 5), 5s);
    ASSERT_TRUE(ack) << ack.error().message;
    EXPECT_EQ(ack->seq, first + 5) << "a seq of the trimmed history was numbered again";
    auto sub = attach(*c, "pos.trim", R"("durable":"ledger")");
    ASSERT_TRUE(sub);
    auto m = next(*sub);
    EXPECT_EQ(m.seq, first + 5);
    EXPECT_EQ(m.payload, "new-" + std::to_string(first + 5));
    ASSERT_TRUE(wait_subscription("ledger", "\"acked_seq\":" + std::to_string(first + 5)));
    EXPECT_TRUE(notices().empty()) << notices().front();  // no gap: nothing the cursor needed was lost
  }
};

TEST_F(positions_test, log_trimmed_to_empty_keeps_numbering_across_sigterm_and_sigkill) {
  expect_status(_http->Put("/v1/channels/pos.trim", R"({"durable":true})", "application/json"), 200);
  expect_status(_http->Post("/v1/subscriptions", R"({"name":"ledger","pattern":"pos.trim","start":"all"})",
                            "application/json"),
                201);
  trim_restart_round(1, false);  // seqs 1..5 trimmed, SIGTERM, next is 6
  trim_restart_round(7, true);   // seqs 7..11 (and 6) trimmed, SIGKILL, next is 12
}

// The epoch of a channel as the admin API reports it (its history document).
std::string epoch_of(const std::string& history_doc) {
  std::smatch m;
  if (!std::regex_search(history_doc, m, std::regex(R"re("epoch":"([0-9a-f]{16})")re"))) return {};
  return m[1];
}

TEST_F(positions_test, wipe_starts_a_new_epoch_and_attached_durable_subscriptions_are_told) {
  expect_status(_http->Put("/v1/channels/pos.wipe", R"({"durable":true})", "application/json"), 200);
  auto c = connect();
  auto sub = attach(*c, "pos.wipe", R"("durable":"w1","start":"all")");
  ASSERT_TRUE(sub);
  std::uint64_t old_epoch = 0;
  for (int i = 1; i <= 3; ++i) {
    auto ack = c->publish_sync("pos.wipe", "old-" + std::to_string(i), 5s);
    ASSERT_TRUE(ack) << ack.error().message;
    old_epoch = ack->epoch;
  }
  for (std::uint64_t i = 1; i <= 3; ++i) EXPECT_EQ(next(*sub).seq, i);
  const std::string old_text = common::epoch_text(old_epoch);
  EXPECT_EQ(epoch_of(history("pos.wipe")), old_text);

  auto wiped = _http->Delete("/v1/channels/pos.wipe/events");
  expect_status(wiped, 200);
  const std::string new_text = epoch_of(wiped->body);
  ASSERT_EQ(new_text.size(), 16u) << wiped->body;
  EXPECT_NE(new_text, old_text);
  EXPECT_EQ(body(wiped), R"({"channel":"pos.wipe","epoch":")" + new_text + "\"}");

  // The attached subscription hears of it at once, before any new event.
  for (auto end = std::chrono::steady_clock::now() + 10s; notices().empty();) {
    ASSERT_LT(std::chrono::steady_clock::now(), end) << "no epoch notice";
  }
  EXPECT_EQ(notices().front(), "epoch: notice for subscription " + std::to_string(sub->id()) +
                                   R"(: {"channel":"pos.wipe","old_epoch":")" + old_text + R"(","epoch":")" + new_text +
                                   "\"}");
  EXPECT_EQ(history("pos.wipe"),
            R"({"epoch":")" + new_text + R"(","events":[],"next_seq":1,"first_seq":0})");

  // The new history numbers from 1 under the new epoch and reaches the subscription.
  auto ack = c->publish_sync("pos.wipe", "new-1", 5s);
  ASSERT_TRUE(ack) << ack.error().message;
  EXPECT_EQ(ack->seq, 1u);
  EXPECT_EQ(common::epoch_text(ack->epoch), new_text);
  auto m = next(*sub);
  EXPECT_EQ(m.seq, 1u);
  EXPECT_EQ(m.payload, "new-1");
  EXPECT_EQ(common::epoch_text(m.epoch), new_text);

  // A reader holding the old epoch is refused, never answered by seq.
  auto stale = _http->Get("/v1/channels/pos.wipe/events?epoch=" + old_text + "&from_seq=1");
  expect_status(stale, 409);
  EXPECT_EQ(body(stale), R"({"error":{"code":"epoch_changed","message":"channel \"pos.wipe\" has a new history (epoch )" +
                             new_text + R"(, first seq 1); epoch )" + old_text +
                             R"( is gone","detail":{"epoch":")" + new_text + R"(","first_seq":1}}})");
  auto current = _http->Get("/v1/channels/pos.wipe/events?epoch=" + new_text + "&from_seq=1");
  expect_status(current, 200);
  EXPECT_NE(current->body.find(R"("seq":1)"), std::string::npos) << current->body;
  auto bad = _http->Get("/v1/channels/pos.wipe/events?epoch=nothex");
  expect_status(bad, 400);
  EXPECT_EQ(body(bad), R"({"error":{"code":"invalid_parameter","message":"epoch must be 1 to 16 hex digits, as the API returns it"}})");

  // Only durable channels have a history to purge; the broker keeps serving.
  auto not_durable = _http->Delete("/v1/channels/pos.live/events");
  expect_status(not_durable, 404);
  EXPECT_EQ(body(not_durable),
            R"({"error":{"code":"not_found","message":"channel \"pos.live\" is not durable; it keeps no history"}})");
  EXPECT_TRUE(c->publish_sync("pos.wipe", "new-2", 5s));
  EXPECT_EQ(next(*sub).seq, 2u);
}

TEST_F(positions_test, sub_start_position_resumes_after_it_or_gets_the_epoch_notice) {
  expect_status(_http->Put("/v1/channels/pos.start", R"({"durable":true})", "application/json"), 200);
  auto c = connect();
  std::uint64_t epoch = 0;
  for (int i = 1; i <= 3; ++i) {
    auto ack = c->publish_sync("pos.start", "e" + std::to_string(i), 5s);
    ASSERT_TRUE(ack) << ack.error().message;
    epoch = ack->epoch;
  }
  const std::string current = common::epoch_text(epoch);
  // The position of event 2 in this history: resume after it.
  auto resume = attach(*c, "pos.start", R"("durable":"p1","start":{"epoch":")" + current + R"(","seq":2})");
  ASSERT_TRUE(resume);
  auto m = next(*resume);
  EXPECT_EQ(m.seq, 3u);
  EXPECT_EQ(m.payload, "e3");
  EXPECT_TRUE(notices().empty());

  // A position of another history: the epoch notice, then this history from its start.
  const std::string stale = current == "0000000000000001" ? "0000000000000002" : "0000000000000001";
  auto other = attach(*c, "pos.start", R"("durable":"p2","start":{"epoch":")" + stale + R"(","seq":2})");
  ASSERT_TRUE(other);
  auto first = next(*other);
  EXPECT_EQ(first.seq, 1u) << "events of another history were matched by seq";
  for (auto end = std::chrono::steady_clock::now() + 5s; notices().empty();) {
    ASSERT_LT(std::chrono::steady_clock::now(), end) << "no epoch notice";
  }
  EXPECT_EQ(notices().front(), "epoch: notice for subscription " + std::to_string(other->id()) +
                                   R"(: {"channel":"pos.start","old_epoch":")" + stale + R"(","epoch":")" + current +
                                   "\"}");

  // A position needs a channel, and a well-formed epoch.
  subscribe_options so;
  so.extra_json = R"("durable":"p3","start":{"epoch":")" + current + R"(","seq":1})";
  auto pattern = c->subscribe("pos.>", nullptr, so);
  ASSERT_FALSE(pattern);
  EXPECT_EQ(pattern.error().broker_code, "invalid_options");
  EXPECT_EQ(pattern.error().message,
            R"(attribute "start" is a position, which names one channel's history: the pattern must be a channel name)");
}

// A durable channel's dedupe window survives restarts: rebuilt from the keys in its log.
TEST_F(positions_test, dedupe_window_of_a_durable_channel_survives_sigterm_and_sigkill) {
  expect_status(_http->Put("/v1/channels/pos.dedupe", R"({"durable":true,"dedupe_window":"10m"})", "application/json"),
                200);
  const httplib::Headers order_42{{"Idempotency-Key", "order-42"}};
  auto first = _http->Post("/v1/channels/pos.dedupe/events", order_42, R"({"order":42})", "application/json");
  expect_status(first, 202);
  const std::string epoch = epoch_of(first->body);
  EXPECT_EQ(body(first), R"({"seq":1,"epoch":")" + epoch + R"(","duplicate":false})");
  for (bool kill : {false, true}) {
    SCOPED_TRACE(kill ? "SIGKILL" : "SIGTERM");
    if (kill) {
      _broker->kill9();
    } else {
      ASSERT_EQ(_broker->terminate(), 0);
    }
    start();
    auto again = _http->Post("/v1/channels/pos.dedupe/events", order_42, R"({"order":42})", "application/json");
    expect_status(again, 202);
    EXPECT_EQ(body(again), R"({"seq":1,"epoch":")" + epoch + R"(","duplicate":true})");
  }
  // Another key is a new event, numbered after the first; the log holds each event once.
  auto other = _http->Post("/v1/channels/pos.dedupe/events", httplib::Headers{{"Idempotency-Key", "order-43"}},
                           R"({"order":43})", "application/json");
  expect_status(other, 202);
  EXPECT_EQ(body(other), R"({"seq":2,"epoch":")" + epoch + R"(","duplicate":false})");
  EXPECT_NE(history("pos.dedupe").find(R"("next_seq":3,"first_seq":1})"), std::string::npos) << history("pos.dedupe");
}

}  // namespace
}  // namespace switchboard
