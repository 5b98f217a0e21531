// What every engine must do (broker/engine/engine.h), run against each engine with the same
// assertions: the local engine on RocksDB and on the in-memory store, and a test engine that fails
// over (new epoch, unsynced tail lost). A Redis engine joins this list; passing it is what "an
// engine" means. The invariant at the heart of it: an (epoch, seq) is never bound to two events,
// whatever happens to the history in between (restart, trim to empty, wipe, failover).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "broker/engine/local_engine.h"
#include "broker/store/store.h"
#include "engine/failover_engine.h"

namespace switchboard::engine {
namespace {

using entry = history_engine::entry;
using log_error = history_engine::log_error;

// prefix + decimal n. (Not `"literal" + std::to_string(n)`: g++ 12 -O3 reports a false -Wrestrict.)
std::string numbered(std::string_view prefix, std::uint64_t n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

// The local engine over a store that can be closed and opened again (a broker restart).
template <bool Persistent>
class local_fixture {
 public:
  local_fixture() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "engine-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) _dir = tmpl;
    open();
  }
  ~local_fixture() {
    close();
    std::error_code ec;
    std::filesystem::remove_all(_dir, ec);
  }
  history_engine& engine() { return *_engine; }
  void sync() {}  // the local engine acknowledges once synced by itself
  // What can happen to this engine's histories: a restart (the in-memory store loses everything).
  void disrupt() {
    close();
    open();
  }

 private:
  void open() {
    _store = (Persistent ? store::store::open_rocksdb(_dir + "/db") : store::store::open_memory()).value();
    _store->start();
    _engine = std::make_unique<local_engine>(*_store);
  }
  void close() {
    _engine.reset();
    if (_store) _store->stop();
    _store.reset();
  }
  std::string _dir;
  std::unique_ptr<store::store> _store;
  std::unique_ptr<local_engine> _engine;
};

class failover_fixture {
 public:
  history_engine& engine() { return _engine; }
  void sync() { _engine.sync(); }
  void disrupt() { _engine.fail_over(); }

 private:
  testing::failover_engine _engine;
};

template <typename Fixture>
class engine_conformance_test : public ::testing::Test {
 protected:
  history_engine& e() { return _f.engine(); }

  // Appends events seq from..to (payload "p<seq>", key "k<seq>", time = seq * 100) and returns the
  // completion's future; `sync` makes a replicated engine acknowledge.
  std::future<std::expected<void, log_error>> append(std::uint64_t log, std::uint64_t from, std::uint64_t to) {
    std::vector<std::string> keys, payloads;
    for (auto s = from; s <= to; ++s) {
      keys.push_back(numbered("k", s));
      payloads.push_back(numbered("p", s));
    }
    std::vector<entry> batch;
    for (auto s = from; s <= to; ++s) {
      batch.push_back(entry{log, s, s * 100, keys[s - from], payloads[s - from]});
    }
    auto done = std::make_shared<std::promise<std::expected<void, log_error>>>();
    auto f = done->get_future();
    history_engine::completion c = [done](std::expected<void, log_error> r) { done->set_value(std::move(r)); };
    EXPECT_TRUE(e().append(batch, c));
    return f;
  }
  // Appends and waits for the acknowledgement.
  void append_acked(std::uint64_t log, std::uint64_t from, std::uint64_t to) {
    auto f = append(log, from, to);
    _f.sync();
    auto r = f.get();
    ASSERT_TRUE(r) << r.error().message;
  }
  std::vector<std::pair<std::uint64_t, std::string>> read_all(std::uint64_t log) {
    auto r = e().read(log, 0, 1000, 1 << 20);
    EXPECT_TRUE(r);
    std::vector<std::pair<std::uint64_t, std::string>> out;
    if (r) {
      for (auto& ev : *r) out.emplace_back(ev.seq, ev.payload);
    }
    return out;
  }

  Fixture _f;
};

using engines = ::testing::Types<local_fixture<true>, local_fixture<false>, failover_fixture>;
class engine_names {
 public:
  template <typename T>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<T, local_fixture<true>>) return "rocksdb";
    if constexpr (std::is_same_v<T, local_fixture<false>>) return "memory";
    return "failover";
  }
};
TYPED_TEST_SUITE(engine_conformance_test, engines, engine_names);

TYPED_TEST(engine_conformance_test, a_new_history_has_an_epoch_and_no_events) {
  auto p = this->e().open("acme.calls.CA1.status", 0);
  ASSERT_TRUE(p) << p.error();
  EXPECT_NE(p->log_id, 0u);
  EXPECT_NE(p->epoch, 0u);
  EXPECT_EQ(p->last_seq, 0u);
  auto x = this->e().extent_of(p->log_id);
  ASSERT_TRUE(x);
  EXPECT_EQ(x->epoch, p->epoch);
  EXPECT_EQ(x->first_seq, 0u);
  EXPECT_TRUE(this->read_all(p->log_id).empty());
  auto again = this->e().open("acme.calls.CA1.status", 0);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->log_id, p->log_id);
  EXPECT_EQ(again->epoch, p->epoch);
  auto other = this->e().open("acme.calls.CA2.status", 0);
  ASSERT_TRUE(other);
  EXPECT_NE(other->log_id, p->log_id);
  // Every history is listed, by name, a page at a time.
  auto first_page = this->e().list("", 1);
  ASSERT_TRUE(first_page);
  ASSERT_EQ(first_page->size(), 1u);
  EXPECT_EQ(first_page->front(), std::make_pair(std::string("acme.calls.CA1.status"), p->log_id));
  auto next_page = this->e().list(first_page->front().first, 10);
  ASSERT_TRUE(next_page);
  ASSERT_EQ(next_page->size(), 1u);
  EXPECT_EQ(next_page->front(), std::make_pair(std::string("acme.calls.CA2.status"), other->log_id));
  std::vector<std::string> visited;
  ASSERT_TRUE(this->e().for_each_history([&](std::string&& name, std::uint64_t) {
    visited.push_back(std::move(name));
    return true;
  }, 1));  // pages of one: the paging itself is exercised
  EXPECT_EQ(visited, (std::vector<std::string>{"acme.calls.CA1.status", "acme.calls.CA2.status"}));
  visited.clear();
  ASSERT_TRUE(this->e().for_each_history([&](std::string&& name, std::uint64_t) {
    visited.push_back(std::move(name));
    return false;  // stop after the first
  }));
  EXPECT_EQ(visited.size(), 1u);
}

TYPED_TEST(engine_conformance_test, acknowledged_events_read_back_in_order_and_set_the_high_water_seq) {
  auto p = this->e().open("c", 0);
  ASSERT_TRUE(p);
  this->append_acked(p->log_id, 1, 3);
  this->append_acked(p->log_id, 4, 5);
  EXPECT_EQ(this->read_all(p->log_id),
            (std::vector<std::pair<std::uint64_t, std::string>>{{1, "p1"}, {2, "p2"}, {3, "p3"}, {4, "p4"}, {5, "p5"}}));
  auto from3 = this->e().read(p->log_id, 3, 2, 1 << 20);
  ASSERT_TRUE(from3);
  ASSERT_EQ(from3->size(), 2u);
  EXPECT_EQ(from3->front().seq, 3u);
  EXPECT_EQ(from3->front().key, "k3");
  EXPECT_EQ(from3->front().time_ns, 300u);
  auto reopened = this->e().open("c", 0);
  ASSERT_TRUE(reopened);
  EXPECT_EQ(reopened->last_seq, 5u);
  EXPECT_EQ(reopened->epoch, p->epoch);
  auto pos = this->e().position_of(p->log_id);
  ASSERT_TRUE(pos);
  EXPECT_EQ(pos->epoch, p->epoch);
  EXPECT_EQ(pos->last_seq, 5u);
}

TYPED_TEST(engine_conformance_test, open_returns_the_keys_of_the_dedupe_window) {
  auto p = this->e().open("c", 0);
  ASSERT_TRUE(p);
  this->append_acked(p->log_id, 1, 4);
  auto with_keys = this->e().open("c", 250);  // published at or after 250: seqs 3 and 4
  ASSERT_TRUE(with_keys);
  ASSERT_EQ(with_keys->recent_keys.size(), 2u);
  EXPECT_EQ(with_keys->recent_keys[0].seq, 3u);
  EXPECT_EQ(with_keys->recent_keys[0].key, "k3");
  EXPECT_EQ(with_keys->recent_keys[1].key, "k4");
}

TYPED_TEST(engine_conformance_test, a_history_trimmed_to_empty_keeps_its_numbering) {
  auto p = this->e().open("c", 0);
  ASSERT_TRUE(p);
  this->append_acked(p->log_id, 1, 5);
  auto kept = this->e().trim(p->log_id, {.max_age_ns = 0, .max_events = 2, .max_bytes = 0}, 0);
  ASSERT_TRUE(kept);
  EXPECT_EQ(*kept, 3u);
  EXPECT_EQ(this->e().extent_of(p->log_id)->first_seq, 4u);
  EXPECT_EQ(this->e().extent_of(p->log_id)->trimmed_through, 3u);  // seqs 1-3 went to retention
  auto all = this->e().trim(p->log_id, {.max_age_ns = 1, .max_events = 0, .max_bytes = 0}, 10'000);
  ASSERT_TRUE(all);
  EXPECT_EQ(*all, 2u);
  EXPECT_TRUE(this->read_all(p->log_id).empty());
  auto reopened = this->e().open("c", 0);
  ASSERT_TRUE(reopened);
  EXPECT_EQ(reopened->epoch, p->epoch);
  EXPECT_EQ(reopened->last_seq, 5u) << "a trimmed history must not number from 1 again in its epoch";
  EXPECT_EQ(this->e().extent_of(p->log_id)->last_seq, 5u);
}

TYPED_TEST(engine_conformance_test, wipe_starts_a_new_epoch_numbered_from_one) {
  auto p = this->e().open("c", 0);
  ASSERT_TRUE(p);
  this->append_acked(p->log_id, 1, 3);
  auto fresh = this->e().wipe(p->log_id);
  ASSERT_TRUE(fresh);
  EXPECT_NE(*fresh, p->epoch);
  EXPECT_NE(*fresh, 0u);
  auto reopened = this->e().open("c", 0);
  ASSERT_TRUE(reopened);
  EXPECT_EQ(reopened->epoch, *fresh);
  EXPECT_EQ(reopened->last_seq, 0u);
  EXPECT_TRUE(this->read_all(p->log_id).empty());
  this->append_acked(p->log_id, 1, 1);
  EXPECT_EQ(this->read_all(p->log_id), (std::vector<std::pair<std::uint64_t, std::string>>{{1, "p1"}}));
}

// The invariant, across whatever can happen to this engine's histories (a restart for the local
// engines — everything gone for the in-memory store — and a failover with an unsynced tail for the
// replicated one): every position acknowledged before either still names the same event, or its
// history has a new epoch; new events never take an acknowledged position.
TYPED_TEST(engine_conformance_test, no_position_is_bound_to_two_events_across_a_disruption) {
  auto p = this->e().open("c", 0);
  ASSERT_TRUE(p);
  this->append_acked(p->log_id, 1, 3);
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::string> acked;  // (epoch, seq) -> payload
  for (std::uint64_t s = 1; s <= 3; ++s) acked[{p->epoch, s}] = numbered("p", s);
  auto tail = this->append(p->log_id, 4, 5);  // in flight when the disruption comes

  this->_f.disrupt();
  auto r = tail.get();  // acknowledged (synced before it) or refused (lost): never left hanging
  if (r) {
    for (std::uint64_t s = 4; s <= 5; ++s) acked[{p->epoch, s}] = numbered("p", s);
  }

  auto after = this->e().open("c", 0);
  ASSERT_TRUE(after) << after.error();
  auto present = this->read_all(after->log_id);
  for (const auto& [seq, payload] : present) {
    auto it = acked.find({after->epoch, seq});
    if (it != acked.end()) {
      EXPECT_EQ(it->second, payload) << "seq " << seq;
    }
  }
  // New events continue from the high-water seq of the surviving history.
  const std::uint64_t next = after->last_seq + 1;
  std::vector<std::string> keys{"new-k"}, payloads{"new"};
  std::vector<entry> batch{entry{after->log_id, next, 1, keys[0], payloads[0]}};
  auto done = std::make_shared<std::promise<std::expected<void, log_error>>>();
  auto f = done->get_future();
  history_engine::completion c = [done](std::expected<void, log_error> res) { done->set_value(std::move(res)); };
  ASSERT_TRUE(this->e().append(batch, c));
  this->_f.sync();
  ASSERT_TRUE(f.get());
  EXPECT_FALSE(acked.contains({after->epoch, next})) << "a new event took an acknowledged position";
  if (after->epoch == p->epoch) {
    // Same history: everything acknowledged is still there, under the same positions.
    for (const auto& [pos, payload] : acked) {
      auto it = std::ranges::find(present, std::pair<std::uint64_t, std::string>{pos.second, payload});
      EXPECT_NE(it, present.end()) << "acknowledged seq " << pos.second << " lost without an epoch change";
    }
  }
}

}  // namespace
}  // namespace switchboard::engine
