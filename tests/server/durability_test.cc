// Durability of the real broker binary on a real RocksDB data dir: acknowledged events and
// configs survive SIGTERM restarts and SIGKILL.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <switchboard/client.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>

#include "support/broker_process.h"

namespace switchboard {
namespace {

using namespace std::chrono_literals;
using test::broker_process;
using test::temp_dir;

constexpr const char* token = "durability-token";

// (seq, payload) of a durable channel's whole history, read page by page over the admin API.
std::vector<std::pair<std::uint64_t, std::string>> read_history(const broker_process& b, const std::string& channel) {
  auto http = b.http(token);
  std::vector<std::pair<std::uint64_t, std::string>> out;
  simdjson::dom::parser parser;
  for (std::uint64_t from = 1;;) {
    auto res = http->Get("/v1/channels/" + channel + "/events?from_seq=" + std::to_string(from) + "&limit=1000");
    if (!res || res->status != 200) {
      ADD_FAILURE() << "history request failed: " << (res ? res->body : "no response");
      return out;
    }
    simdjson::dom::element doc = parser.parse(res->body);
    auto events = doc["events"].get_array();
    if (events.size() == 0) return out;
    for (auto ev : events) {
      out.emplace_back(std::uint64_t(ev["seq"]), simdjson::minify(ev["data"]));
    }
    from = std::uint64_t(doc["next_seq"]);
  }
}

TEST(durability_test, acknowledged_events_survive_sigkill_exactly_once_in_order) {
  temp_dir dir;
  std::optional<broker_process> b(std::in_place, dir.path(), token);
  ASSERT_TRUE(b->ok()) << b->stderr_text();
  auto put = b->http(token)->Put("/v1/channels/dur.orders", R"({"durable":true})", "application/json");
  ASSERT_TRUE(put && put->status == 200) << (put ? put->body : "no response");
  auto sub = b->http(token)->Post(
      "/v1/subscriptions", R"({"name":"ledger","pattern":"dur.orders","ack":{"policy":"at_least_once"},"start":"all"})",
      "application/json");
  ASSERT_TRUE(sub && sub->status == 201) << (sub ? sub->body : "no response");

  client_options co;
  co.url = b->endpoint;
  co.token = token;
  co.reconnect = false;
  co.send_timeout = 1s;
  auto c = client::connect(co);
  ASSERT_TRUE(c.has_value()) << c.error().message;

  constexpr int total = 100000;
  std::random_device rd;
  const unsigned seed = rd();
  std::mt19937 rng(seed);
  const int kill_after = std::uniform_int_distribution<int>(5000, 90000)(rng);
  SCOPED_TRACE("seed " + std::to_string(seed) + ", SIGKILL after " + std::to_string(kill_after) + " acks");

  std::mutex m;
  std::map<int, std::uint64_t> acked;  // payload counter -> seq
  std::atomic<int> acks{0};
  std::atomic<bool> stop{false};
  // The publisher keeps going while the broker is killed, so writes are in flight at that moment.
  std::jthread publisher([&] {
    for (int i = 0; i < total && !stop; ++i) {
      auto ok = (*c)->publish_async("dur.orders", "{\"i\":" + std::to_string(i) + "}",
                                    [i, &m, &acked, &acks](std::expected<publish_ack, error> r) {
                                      if (!r) return;
                                      std::lock_guard lock(m);
                                      acked.emplace(i, r->seq);
                                      acks.fetch_add(1);
                                    });
      if (!ok) return;  // the broker is gone
    }
  });
  for (auto end = std::chrono::steady_clock::now() + 60s; acks.load() < kill_after;) {
    ASSERT_LT(std::chrono::steady_clock::now(), end) << "only " << acks.load() << " acks";
    std::this_thread::yield();
  }
  b->kill9();
  stop = true;
  publisher.join();
  (*c)->close();
  std::map<int, std::uint64_t> confirmed;
  {
    std::lock_guard lock(m);
    confirmed = acked;
  }
  ASSERT_GE(confirmed.size(), static_cast<std::size_t>(kill_after));

  b.emplace(dir.path(), token);
  ASSERT_TRUE(b->ok()) << b->stderr_text();
  const auto history = read_history(*b, "dur.orders");
  RecordProperty("acknowledged", static_cast<int>(confirmed.size()));
  RecordProperty("stored", static_cast<int>(history.size()));
  std::map<std::uint64_t, std::string> by_seq;
  std::uint64_t last_seq = 0;
  int last_i = -1;
  for (const auto& [seq, data] : history) {
    ASSERT_GT(seq, last_seq) << "seq out of order or duplicated";
    last_seq = seq;
    const int i = std::stoi(data.substr(5));  // {"i":N}
    ASSERT_GT(i, last_i) << "payload order differs from publish order at seq " << seq;
    last_i = i;
    by_seq.emplace(seq, data);
  }
  for (const auto& [i, seq] : confirmed) {
    auto it = by_seq.find(seq);
    ASSERT_NE(it, by_seq.end()) << "acknowledged event i=" << i << " seq=" << seq << " is missing";
    ASSERT_EQ(it->second, "{\"i\":" + std::to_string(i) + "}") << "seq " << seq;
  }
  // A durable at_least_once subscriber that attaches now receives every stored event, in order.
  {
    client_options so;
    so.url = b->endpoint;
    so.token = token;
    auto reader = client::connect(so);
    ASSERT_TRUE(reader.has_value()) << reader.error().message;
    auto s = (*reader)->subscribe("dur.orders", nullptr, subscribe_options{.slow_consumer = {}, .extra_json = R"("durable":"ledger")"});
    ASSERT_TRUE(s.has_value()) << s.error().message;
    std::uint64_t expect_seq = history.empty() ? 0 : history.front().first;
    for (const auto& [seq, data] : history) {
      auto m = (*s)->next(20s);
      ASSERT_TRUE(m.has_value() && m->has_value()) << "durable subscriber stalled before seq " << seq;
      ASSERT_EQ((*m)->seq, expect_seq);
      ASSERT_EQ((*m)->payload, data);
      (*reader)->ack(**m);
      ++expect_seq;
    }
  }
  // Numbering continues after the last stored event; nothing is re-used.
  auto next = b->http(token)->Post("/v1/channels/dur.orders/events", R"({"after":"restart"})", "application/json");
  ASSERT_TRUE(next && next->status == 202) << (next ? next->body : "no response");
  EXPECT_NE(next->body.find("\"seq\":" + std::to_string(last_seq + 1) + ","), std::string::npos) << next->body;
}

TEST(durability_test, configs_are_identical_after_clean_restart_and_sigkill) {
  temp_dir dir;
  std::optional<broker_process> b(std::in_place, dir.path(), token);
  ASSERT_TRUE(b->ok()) << b->stderr_text();
  {
    auto http = b->http(token);
    auto r1 = http->Put("/v1/channels/acme.calls.%3E", R"({"durable":true,"retention":{"max_events":1000}})",
                        "application/json");
    ASSERT_TRUE(r1 && r1->status == 200) << (r1 ? r1->body : "no response");
    auto r2 = http->Put("/v1/channels/acme.calls.CA1", R"({"slow_consumer":"drop_oldest","dedupe_window":"5s"})",
                        "application/json");
    ASSERT_TRUE(r2 && r2->status == 200) << (r2 ? r2->body : "no response");
  }
  auto fetch = [&] {
    auto http = b->http(token);
    auto a = http->Get("/v1/channels/acme.calls.%3E");
    auto c = http->Get("/v1/channels/acme.calls.CA1");
    auto l = http->Get("/v1/channels");
    EXPECT_TRUE(a && a->status == 200 && c && c->status == 200 && l && l->status == 200);
    return (a ? a->body : "") + "\n" + (c ? c->body : "");
  };
  const auto before = fetch();
  EXPECT_NE(before.find(R"("durable":true)"), std::string::npos) << before;
  EXPECT_NE(before.find(R"("durable":"acme.calls.>")"), std::string::npos) << before;

  EXPECT_EQ(b->terminate(), 0) << "SIGTERM must drain and exit 0";
  b.emplace(dir.path(), token);
  ASSERT_TRUE(b->ok()) << b->stderr_text();
  EXPECT_EQ(fetch(), before);

  b->kill9();
  b.emplace(dir.path(), token);
  ASSERT_TRUE(b->ok()) << b->stderr_text();
  EXPECT_EQ(fetch(), before);
}

}  // namespace
}  // namespace switchboard
