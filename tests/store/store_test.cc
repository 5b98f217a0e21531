// Tests for broker/store: the same cases on the RocksDB store (a real database in a fresh temp
// dir) and the in-memory store, plus a crash-consistency test that SIGKILLs a writer process.
#include "broker/store/store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

extern char** environ;

namespace switchboard::store {
namespace {

std::string make_temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "store_test.XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
    return {};
  }
  return pattern;
}

struct rocksdb_backend {
  static constexpr bool persistent = true;
  static std::expected<std::unique_ptr<store>, error> open(const std::string& dir, const store_options& o) {
    return store::open_rocksdb(dir + "/db", o);
  }
};

struct memory_backend {
  static constexpr bool persistent = false;
  static std::expected<std::unique_ptr<store>, error> open(const std::string&, const store_options& o) {
    return store::open_memory(o);
  }
};

// prefix + decimal n. (Not `"literal" + std::to_string(n)`: g++ 12 -O3 reports a false -Wrestrict.)
std::string numbered(std::string_view prefix, std::uint64_t n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

append_request event(std::uint64_t channel, std::uint64_t seq, std::size_t payload_bytes = 10,
                     std::uint64_t time_ns = 0) {
  std::string payload = numbered("p", seq);
  payload.resize(payload_bytes, '.');
  return append_request{channel, seq, time_ns, numbered("k", seq), std::move(payload)};
}

// Appends and waits for the completion (the store must be started).
std::expected<void, error> append_and_wait(store& s, std::vector<append_request> batch) {
  std::promise<std::expected<void, error>> done;
  auto result = done.get_future();
  if (auto queued =
          s.append(std::move(batch), [&done](std::expected<void, error> r) { done.set_value(std::move(r)); });
      !queued) {
    return queued;
  }
  return result.get();
}

std::vector<append_request> range(std::uint64_t channel, std::uint64_t from, std::uint64_t to,
                                  std::size_t payload_bytes = 10) {
  std::vector<append_request> batch;
  for (std::uint64_t seq = from; seq <= to; ++seq) batch.push_back(event(channel, seq, payload_bytes));
  return batch;
}

template <typename Backend>
class store_test : public ::testing::Test {
 protected:
  void SetUp() override {
    _dir = make_temp_dir();
    ASSERT_FALSE(_dir.empty());
    open();
  }
  void TearDown() override {
    _store.reset();
    std::filesystem::remove_all(_dir);
  }
  void open(const store_options& options = {}) {
    _store.reset();
    auto s = Backend::open(_dir, options);
    ASSERT_TRUE(s) << s.error().message;
    _store = std::move(*s);
    _store->start();
  }
  store& s() { return *_store; }

  std::string _dir;
  std::unique_ptr<store> _store;
};

using backends = ::testing::Types<rocksdb_backend, memory_backend>;
class backend_names {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, rocksdb_backend> ? "rocksdb" : "memory";
  }
};
TYPED_TEST_SUITE(store_test, backends, backend_names);

TYPED_TEST(store_test, config_put_get_list_delete) {
  store& s = this->s();
  ASSERT_TRUE(s.put_config(kind::channels, "acme.calls.>", R"({"durable":true})"));
  ASSERT_TRUE(s.put_config(kind::channels, "acme.a", "A"));
  ASSERT_TRUE(s.put_config(kind::subscriptions, "billing", "sub"));
  ASSERT_TRUE(s.put_config(kind::channels, "acme.a", "A2"));  // overwrite

  auto got = s.get_config(kind::channels, "acme.a");
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, std::optional<std::string>("A2"));
  auto absent = s.get_config(kind::channels, "nope");
  ASSERT_TRUE(absent);
  EXPECT_FALSE(absent->has_value());
  auto other_kind = s.get_config(kind::dead_letters, "acme.a");
  ASSERT_TRUE(other_kind);
  EXPECT_FALSE(other_kind->has_value());

  auto list = s.list_configs(kind::channels);
  ASSERT_TRUE(list);
  using kv = std::pair<std::string, std::string>;
  EXPECT_EQ(*list, (std::vector<kv>{{"acme.a", "A2"}, {"acme.calls.>", R"({"durable":true})"}}));

  ASSERT_TRUE(s.delete_config(kind::channels, "acme.a"));
  ASSERT_TRUE(s.delete_config(kind::channels, "never-there"));
  list = s.list_configs(kind::channels);
  ASSERT_TRUE(list);
  EXPECT_EQ(*list, (std::vector<kv>{{"acme.calls.>", R"({"durable":true})"}}));
}

TYPED_TEST(store_test, config_rejects_events_kind_and_reserved_meta_keys) {
  store& s = this->s();
  auto r = s.put_config(kind::events, "x", "y");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  EXPECT_EQ(r.error().message, "the events kind is written with append(), not put_config()");

  r = s.put_config(kind::meta, "store.next_channel_id", "x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  EXPECT_EQ(r.error().message, "meta key 'store.next_channel_id' is reserved for the store");

  ASSERT_TRUE(s.put_config(kind::meta, "broker.version", "1"));
  ASSERT_TRUE(s.channel_id("a"));
  ASSERT_TRUE(s.epoch(1));
  auto list = s.list_configs(kind::meta);
  ASSERT_TRUE(list);
  EXPECT_EQ(*list, (std::vector<std::pair<std::string, std::string>>{{"broker.version", "1"}}));
}

TYPED_TEST(store_test, list_channels_returns_every_named_channel_in_name_order) {
  using named = std::vector<std::pair<std::string, std::uint64_t>>;
  {
    auto none = this->s().list_channels();
    ASSERT_TRUE(none) << none.error().message;
    EXPECT_TRUE(none->empty());
  }
  ASSERT_EQ(this->s().channel_id("acme.b"), 1u);
  ASSERT_EQ(this->s().channel_id("acme.a"), 2u);
  ASSERT_EQ(this->s().channel_id("acme.a.x"), 3u);
  ASSERT_TRUE(this->s().put_config(kind::meta, "broker.version", "1"));  // not a channel
  const named expected{{"acme.a", 2}, {"acme.a.x", 3}, {"acme.b", 1}};
  auto list = this->s().list_channels();
  ASSERT_TRUE(list) << list.error().message;
  EXPECT_EQ(*list, expected);
  if constexpr (TypeParam::persistent) {
    this->open();
    auto again = this->s().list_channels();
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(*again, expected);
  }
}

TYPED_TEST(store_test, channel_ids_and_epochs_are_created_once) {
  store& s = this->s();
  auto a = s.channel_id("acme.a");
  auto b = s.channel_id("acme.b");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, 1u);
  EXPECT_EQ(*b, 2u);
  EXPECT_EQ(s.channel_id("acme.a"), 1u);

  auto e1 = s.epoch(*a);
  auto e2 = s.epoch(*b);
  ASSERT_TRUE(e1 && e2);
  EXPECT_NE(*e1, 0u);
  EXPECT_NE(*e1, *e2);
  EXPECT_EQ(s.epoch(*a), *e1);
}

TYPED_TEST(store_test, empty_log) {
  store& s = this->s();
  EXPECT_EQ(s.first_seq(7), 0u);
  EXPECT_EQ(s.last_seq(7), 0u);
  auto r = s.read(7, 1, 100, 1 << 20);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(s.trim(7, retention{.max_events = 1}, 0), 0u);
}

TYPED_TEST(store_test, append_then_read_round_trips_every_field) {
  store& s = this->s();
  std::vector<append_request> batch{{1, 1, 111, "idem-1", "hello"},
                                    {1, 2, 222, "", std::string("\0bin\xff", 5)},
                                    {2, 1, 333, std::string(max_event_key_bytes, 'k'), ""}};
  ASSERT_TRUE(append_and_wait(s, batch));
  auto r = s.read(1, 0, 100, 1 << 20);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (std::vector<stored_event>{{1, 111, "idem-1", "hello"},
                                           {2, 222, "", std::string("\0bin\xff", 5)}}));
  r = s.read(2, 1, 100, 1 << 20);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(r->front().key.size(), max_event_key_bytes);
  EXPECT_EQ(s.first_seq(1), 1u);
  EXPECT_EQ(s.last_seq(1), 2u);
  EXPECT_EQ(s.last_seq(2), 1u);
}

TYPED_TEST(store_test, append_rejects_bad_requests_and_leaves_them_intact) {
  store& s = this->s();
  std::vector<append_request> batch{event(1, 1), event(1, 0)};
  bool called = false;
  auto r = s.append(std::move(batch), [&called](std::expected<void, error>) { called = true; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  EXPECT_EQ(r.error().message, "append: seq 0 is not valid");
  EXPECT_EQ(batch.size(), 2u);  // NOLINT(bugprone-use-after-move): left intact on failure

  batch = {append_request{1, 1, 0, std::string(max_event_key_bytes + 1, 'k'), ""}};
  r = s.append(std::move(batch), [](std::expected<void, error>) {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "append: idempotency key of 65536 bytes exceeds 65535");

  batch = {event(0, 1)};
  r = s.append(std::move(batch), [](std::expected<void, error>) {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "append: channel id 0 is not valid");
  s.stop();
  EXPECT_FALSE(called);
}

TYPED_TEST(store_test, read_honours_limits) {
  store& s = this->s();
  ASSERT_TRUE(append_and_wait(s, range(1, 1, 10)));  // each event: 2-3 key bytes + 10 payload

  auto r = s.read(1, 3, 4, 1 << 20);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ(r->front().seq, 3u);
  EXPECT_EQ(r->back().seq, 6u);

  r = s.read(1, 1, 100, 25);  // 12 + 12 = 24 fits, a third would not
  ASSERT_TRUE(r);
  EXPECT_EQ(r->size(), 2u);

  r = s.read(1, 1, 100, 1);  // always at least one event
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(r->front().seq, 1u);

  r = s.read(1, 11, 100, 1 << 20);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
  r = s.read(1, 1, 0, 1 << 20);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
  r = s.read(2, 1, 100, 1 << 20);  // another channel's key range
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
}

TYPED_TEST(store_test, concurrent_appends_complete_exactly_once_and_read_in_order) {
  store& s = this->s();
  constexpr int threads = 4;
  constexpr int batches = 100;
  constexpr int per_batch = 10;
  std::vector<std::atomic<int>> completions(threads * batches);
  std::atomic<int> failures{0};
  {
    std::vector<std::jthread> writers;
    for (int t = 0; t < threads; ++t) {
      writers.emplace_back([&, t] {
        const auto channel = static_cast<std::uint64_t>(t + 1);
        for (int b = 0; b < batches; ++b) {
          auto batch = range(channel, b * per_batch + 1, (b + 1) * per_batch);
          auto& count = completions[t * batches + b];
          for (;;) {
            auto r = s.append(std::move(batch), [&count, &failures](std::expected<void, error> r) {
              count.fetch_add(1);
              if (!r) failures.fetch_add(1);
            });
            if (r) break;
            if (r.error().code != errc::overloaded) {
              failures.fetch_add(1);
              break;
            }
            std::this_thread::yield();  // retry: the batch was left intact
          }
        }
      });
    }
  }
  s.stop();  // drains everything queued and runs its completions
  EXPECT_EQ(failures.load(), 0);
  for (std::size_t i = 0; i < completions.size(); ++i) EXPECT_EQ(completions[i].load(), 1) << i;
  for (std::uint64_t channel = 1; channel <= threads; ++channel) {
    auto r = s.read(channel, 1, 1'000'000, 1 << 30);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->size(), std::size_t{batches * per_batch});
    for (std::size_t i = 0; i < r->size(); ++i) {
      EXPECT_EQ((*r)[i].seq, i + 1);
      EXPECT_EQ((*r)[i].payload, event(channel, i + 1).payload);
    }
  }
}

TYPED_TEST(store_test, full_queue_refuses_with_overloaded) {
  store_options options;
  options.max_queued_events = 4;
  this->open(options);
  store& s = this->s();

  // Hold the store thread inside the first completion so later batches stay queued.
  std::promise<void> entered;
  std::promise<void> release;
  auto release_future = release.get_future().share();
  ASSERT_TRUE(s.append(range(1, 1, 1), [&](std::expected<void, error>) {
    entered.set_value();
    release_future.wait();
  }));
  entered.get_future().wait();

  std::atomic<int> done{0};
  auto count = [&done](std::expected<void, error> r) { done.fetch_add(r ? 1 : 100); };
  ASSERT_TRUE(s.append(range(1, 2, 7), count));  // 6 > 4, but an empty queue takes any batch
  auto batch = range(1, 8, 8);
  auto r = s.append(std::move(batch), count);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::overloaded);
  EXPECT_EQ(r.error().message, "append: 6 events already queued (max_queued_events 4)");
  EXPECT_EQ(batch.size(), 1u);  // NOLINT(bugprone-use-after-move): left intact on failure

  release.set_value();
  s.stop();
  EXPECT_EQ(done.load(), 1);
  EXPECT_EQ(s.last_seq(1), 7u);
}

TYPED_TEST(store_test, append_after_stop_is_refused) {
  store& s = this->s();
  ASSERT_TRUE(append_and_wait(s, range(1, 1, 3)));
  s.stop();
  s.stop();  // idempotent
  auto batch = range(1, 4, 4);
  auto r = s.append(std::move(batch), [](std::expected<void, error>) { ADD_FAILURE(); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::stopped);
  EXPECT_EQ(r.error().message, "append: the store is stopping");
  EXPECT_EQ(batch.size(), 1u);  // NOLINT(bugprone-use-after-move): left intact on failure
  s.start();                    // no restart after stop
  EXPECT_FALSE(s.append(std::move(batch), [](std::expected<void, error>) {}));
  EXPECT_EQ(s.last_seq(1), 3u);  // reads still work
}

TYPED_TEST(store_test, append_before_start_is_refused) {
  auto opened = TypeParam::open(this->_dir + "/other", {});
  ASSERT_TRUE(opened);
  auto r = (*opened)->append(range(1, 1, 1), [](std::expected<void, error>) {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::stopped);
  EXPECT_EQ(r.error().message, "append: the store is not started");
}

TYPED_TEST(store_test, trim_by_count) {
  store& s = this->s();
  ASSERT_TRUE(append_and_wait(s, range(1, 1, 10)));
  ASSERT_TRUE(append_and_wait(s, range(2, 1, 10)));
  EXPECT_EQ(s.trim(1, retention{.max_events = 4}, 0), 6u);
  EXPECT_EQ(s.first_seq(1), 7u);
  EXPECT_EQ(s.last_seq(1), 10u);
  EXPECT_EQ(s.trim(1, retention{.max_events = 4}, 0), 0u);
  EXPECT_EQ(s.first_seq(2), 1u);  // other channels untouched
  auto r = s.read(1, 1, 100, 1 << 20);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ(r->front().seq, 7u);
}

TYPED_TEST(store_test, trim_by_age) {
  store& s = this->s();
  std::vector<append_request> batch;
  for (std::uint64_t seq = 1; seq <= 10; ++seq) batch.push_back(event(1, seq, 10, seq * 100));
  ASSERT_TRUE(append_and_wait(s, std::move(batch)));
  // Too old: time_ns + 500 < 1000, i.e. time_ns < 500 → seqs 1..4.
  EXPECT_EQ(s.trim(1, retention{.max_age_ns = 500}, 1000), 4u);
  EXPECT_EQ(s.first_seq(1), 5u);
  EXPECT_EQ(s.trim(1, retention{.max_age_ns = 5000}, 1000), 0u);  // now < max_age: nothing
  EXPECT_EQ(s.trim(1, retention{.max_age_ns = 1}, 2000), 6u);     // all gone
  EXPECT_EQ(s.first_seq(1), 0u);
  // Issue 12: the numbering is not forgotten with the events (no seq is bound to two events).
  EXPECT_EQ(s.last_seq(1), 10u);
  auto r = s.read(1, 0, 100, 1 << 20);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
  ASSERT_TRUE(append_and_wait(s, range(1, 11, 12)));
  EXPECT_EQ(s.first_seq(1), 11u);
  EXPECT_EQ(s.last_seq(1), 12u);
}

TYPED_TEST(store_test, trim_by_bytes_and_combined_limits) {
  store& s = this->s();
  ASSERT_TRUE(append_and_wait(s, range(1, 1, 9)));          // key "kN" 2 bytes + 10 payload = 12 each
  EXPECT_EQ(s.trim(1, retention{.max_bytes = 40}, 0), 6u);  // 3 × 12 = 36 fit, 48 would not
  EXPECT_EQ(s.first_seq(1), 7u);
  EXPECT_EQ(s.trim(1, retention{.max_events = 5, .max_bytes = 24}, 0), 1u);  // bytes bind
  EXPECT_EQ(s.first_seq(1), 8u);
  EXPECT_EQ(s.last_seq(1), 9u);
}

TYPED_TEST(store_test, recent_keys_reads_the_window_backwards_and_returns_it_in_order) {
  store& s = this->s();
  std::vector<append_request> batch;
  for (std::uint64_t seq = 1; seq <= 6; ++seq) batch.push_back(event(1, seq, 10, seq * 100));
  batch[3].key.clear();  // seq 4 has no key
  ASSERT_TRUE(append_and_wait(s, std::move(batch)));
  auto keys = s.recent_keys(1, 250, 100);  // published at or after 250: seqs 3..6, 4 has no key
  ASSERT_TRUE(keys);
  ASSERT_EQ(keys->size(), 3u);
  EXPECT_EQ(keys->at(0).seq, 3u);
  EXPECT_EQ(keys->at(0).key, "k3");
  EXPECT_EQ(keys->at(0).time_ns, 300u);
  EXPECT_EQ(keys->at(2).seq, 6u);
  auto newest = s.recent_keys(1, 0, 2);  // at most two: the newest
  ASSERT_TRUE(newest);
  ASSERT_EQ(newest->size(), 2u);
  EXPECT_EQ(newest->at(0).key, "k5");
  EXPECT_EQ(newest->at(1).key, "k6");
  EXPECT_TRUE(s.recent_keys(2, 0, 10)->empty());  // no such log
}

TYPED_TEST(store_test, wipe_gives_a_new_epoch_and_an_empty_log) {
  store& s = this->s();
  auto id = s.channel_id("acme.calls");
  ASSERT_TRUE(id);
  auto before = s.epoch(*id);
  ASSERT_TRUE(before);
  ASSERT_TRUE(append_and_wait(s, range(*id, 1, 5)));
  ASSERT_TRUE(append_and_wait(s, range(*id + 1, 1, 5)));
  auto after = s.wipe(*id);
  ASSERT_TRUE(after);
  EXPECT_NE(*after, *before);
  EXPECT_NE(*after, 0u);
  EXPECT_EQ(s.epoch(*id), *after);
  EXPECT_EQ(s.first_seq(*id), 0u);
  EXPECT_EQ(s.last_seq(*id), 0u);
  EXPECT_EQ(s.last_seq(*id + 1), 5u);                 // the neighbouring channel is untouched
  ASSERT_EQ(s.trim(*id + 1, retention{.max_events = 1}, 0), 4u);
  ASSERT_EQ(s.trim(*id + 1, retention{.max_age_ns = 1}, 1000), 1u);  // trimmed to empty: mark 5
  ASSERT_TRUE(s.wipe(*id + 1));
  EXPECT_EQ(s.last_seq(*id + 1), 0u);  // a wiped history (new epoch) numbers from 1 again
  ASSERT_TRUE(append_and_wait(s, range(*id, 1, 2)));  // numbering restarts in the new history
  EXPECT_EQ(s.last_seq(*id), 2u);

  auto fresh = s.wipe(99);  // a channel that never had an epoch still gets one
  ASSERT_TRUE(fresh);
  EXPECT_EQ(s.epoch(99), *fresh);
}

// Only RocksDB keeps anything across instances, so this case runs on it alone.
using rocksdb_store_test = store_test<rocksdb_backend>;

TEST_F(rocksdb_store_test, everything_survives_close_and_reopen) {
  {
    store& s = this->s();
    ASSERT_TRUE(s.put_config(kind::channels, "acme.>", "cfg"));
    ASSERT_TRUE(s.put_config(kind::subscriptions, "durable-1", "sub"));
    ASSERT_TRUE(s.put_config(kind::dead_letters, "dl-1", "dead"));
    ASSERT_TRUE(s.put_config(kind::meta, "broker.version", "1"));
    auto a = s.channel_id("acme.a");
    auto b = s.channel_id("acme.b");
    ASSERT_TRUE(a && b);
    auto epoch_a = s.epoch(*a);
    ASSERT_TRUE(epoch_a);
    ASSERT_TRUE(append_and_wait(s, range(*a, 1, 50)));
    ASSERT_TRUE(append_and_wait(s, range(*b, 1, 3)));
    ASSERT_EQ(s.trim(*a, retention{.max_events = 40}, 0), 10u);

    this->open();
    store& t = this->s();
    EXPECT_EQ(t.get_config(kind::channels, "acme.>").value(), std::optional<std::string>("cfg"));
    EXPECT_EQ(t.get_config(kind::subscriptions, "durable-1").value(), std::optional<std::string>("sub"));
    EXPECT_EQ(t.get_config(kind::dead_letters, "dl-1").value(), std::optional<std::string>("dead"));
    EXPECT_EQ(t.get_config(kind::meta, "broker.version").value(), std::optional<std::string>("1"));
    EXPECT_EQ(t.channel_id("acme.b"), *b);
    EXPECT_EQ(t.channel_id("acme.a"), *a);
    EXPECT_EQ(t.channel_id("acme.c"), 3u);  // the id counter survived too
    EXPECT_EQ(t.epoch(*a), *epoch_a);
    EXPECT_EQ(t.first_seq(*a), 11u);
    EXPECT_EQ(t.last_seq(*a), 50u);
    EXPECT_EQ(t.last_seq(*b), 3u);
    auto r = t.read(*a, 0, 1000, 1 << 20);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->size(), 40u);
    EXPECT_EQ(r->back(), (stored_event{50, 0, "k50", event(*a, 50).payload}));
    ASSERT_TRUE(append_and_wait(t, range(*a, 51, 51)));  // numbering continues
    EXPECT_EQ(t.last_seq(*a), 51u);

    // A log trimmed to empty keeps its high-water seq across a reopen (issue 12).
    ASSERT_EQ(t.trim(*a, retention{.max_age_ns = 1}, 1000), 41u);
    EXPECT_EQ(t.first_seq(*a), 0u);

    auto wiped = t.wipe(*b);
    ASSERT_TRUE(wiped);
    this->open();
    EXPECT_EQ(this->s().epoch(*b), *wiped);
    EXPECT_EQ(this->s().last_seq(*b), 0u);
    EXPECT_EQ(this->s().epoch(*a), *epoch_a);
    EXPECT_EQ(this->s().first_seq(*a), 0u);
    EXPECT_EQ(this->s().last_seq(*a), 51u);
  }
}

// Issue 14, item 12: a WAL damaged in the middle refuses the open naming the file and changes
// nothing; wal_recovery::recover keeps the readable prefix, reports the loss and moves every channel
// with a history to a new epoch.
TEST_F(rocksdb_store_test, damaged_wal_is_refused_then_recovered_with_new_epochs) {
  auto a = s().channel_id("dur.a");
  auto b = s().channel_id("dur.b");
  ASSERT_TRUE(a && b);
  auto epoch_a = s().epoch(*a);
  auto epoch_b = s().epoch(*b);
  ASSERT_TRUE(epoch_a && epoch_b);
  ASSERT_TRUE(append_and_wait(s(), range(*b, 1, 5)));
  for (std::uint64_t seq = 1; seq <= 1000; ++seq) ASSERT_TRUE(append_and_wait(s(), range(*a, seq, seq)));
  _store.reset();

  std::filesystem::path wal;
  for (const auto& e : std::filesystem::directory_iterator(_dir + "/db")) {
    if (e.path().extension() == ".log" && (wal.empty() || e.file_size() > std::filesystem::file_size(wal)))
      wal = e.path();
  }
  ASSERT_FALSE(wal.empty());
  const auto size = std::filesystem::file_size(wal);
  {
    std::fstream f(wal, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2));
    const std::string zeros(64, '\0');
    f.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  }

  auto refused = rocksdb_backend::open(_dir, {});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, errc::corruption);
  EXPECT_NE(refused.error().message.find(wal.string()), std::string::npos) << refused.error().message;
  EXPECT_EQ(std::filesystem::file_size(wal), size);

  store_options recover;
  recover.on_damaged_wal = wal_recovery::recover;
  open(recover);
  const recovery_report& r = s().recovery();
  ASSERT_TRUE(r.recovered);
  EXPECT_EQ(r.mode, "point_in_time");
  ASSERT_EQ(r.damaged_files, std::vector<std::string>{wal.string()});
  ASSERT_EQ(r.channels.size(), 2u);
  const channel_recovery ra = r.channels[0];  // copies: the report dies with the store
  EXPECT_EQ(ra.name, "dur.a");
  EXPECT_EQ(ra.old_epoch, *epoch_a);
  EXPECT_NE(ra.new_epoch, *epoch_a);
  EXPECT_EQ(ra.last_seq_before, 1000u);
  EXPECT_LT(ra.last_seq_after, 1000u);
  EXPECT_GT(ra.lost_events, 0u);
  EXPECT_EQ(s().last_seq(*a), ra.last_seq_after);
  EXPECT_EQ(s().epoch(*a), ra.new_epoch);
  const channel_recovery rb = r.channels[1];  // written before the damage: kept, new epoch anyway
  EXPECT_EQ(rb.name, "dur.b");
  EXPECT_EQ(rb.last_seq_after, 5u);
  EXPECT_EQ(rb.lost_events, 0u);
  EXPECT_NE(rb.new_epoch, *epoch_b);
  EXPECT_EQ(s().current_health().state, health_state::ok);
  EXPECT_EQ(s().channel_id("dur.c"), 3u);  // ids are never reused

  open();  // the recovered dir opens normally, epochs kept
  EXPECT_FALSE(s().recovery().recovered);
  EXPECT_EQ(s().epoch(*a), ra.new_epoch);
}

TEST(store_open, bad_directory_fails_with_io_error) {
  auto s = store::open_rocksdb("/proc/definitely/not/writable", {});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, errc::io);
  EXPECT_TRUE(s.error().message.starts_with("open /proc/definitely/not/writable: ")) << s.error().message;
}

// --- crash consistency -------------------------------------------------------------------------
// The parent re-executes this binary to run crash_child.appends_until_killed in a fresh process
// (fork() alone is unsafe: RocksDB's thread pools from earlier tests would not exist in the child).

constexpr const char* crash_dir_env = "SWITCHBOARD_STORE_CRASH_DIR";
constexpr const char* crash_fd_env = "SWITCHBOARD_STORE_CRASH_FD";
constexpr std::uint64_t crash_batch = 50;

std::string crash_payload(std::uint64_t seq) { return numbered("crash-event-", seq); }

TEST(store_crash, every_acknowledged_event_survives_sigkill) {
  const std::string root = make_temp_dir();
  ASSERT_FALSE(root.empty());
  const std::string dir = root + "/db";
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);

  // Everything exec needs is built before fork: only async-signal-safe calls in the child.
  std::vector<std::string> env_strings{std::string(crash_dir_env) + "=" + dir,
                                       std::string(crash_fd_env) + "=" + std::to_string(fds[1])};
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string arg0 = SWITCHBOARD_STORE_CRASH_CHILD;
  std::array<char*, 2> argv{arg0.data(), nullptr};

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    execve(arg0.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  close(fds[1]);
  // On an early ASSERT return, do not leave the child running.
  struct reaper {
    pid_t pid;
    int fd;
    bool reaped = false;
    ~reaper() {
      if (reaped) return;
      kill(pid, SIGKILL);
      close(fd);
      waitpid(pid, nullptr, 0);
    }
  } guard{child, fds[0]};

  // Kill the child once it has acknowledged this many events (well into its run), then read what
  // it acknowledged before dying: every one of those was reported durable.
  constexpr std::uint64_t kill_after = 20'000;
  std::uint64_t acked = 0;
  bool killed = false;
  for (;;) {
    std::uint64_t last = 0;
    const ssize_t n = read(fds[0], &last, sizeof last);
    if (n == 0) break;
    if (n < 0 && errno == EINTR) continue;
    ASSERT_EQ(n, static_cast<ssize_t>(sizeof last));
    ASSERT_EQ(last, acked + crash_batch) << "acknowledgements out of order";
    acked = last;
    if (!killed && acked >= kill_after) {
      ASSERT_EQ(kill(child, SIGKILL), 0);
      killed = true;
    }
  }
  close(fds[0]);
  guard.reaped = true;
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(killed) << "the child stopped after acknowledging " << acked << " events";
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;

  {
    auto opened = store::open_rocksdb(dir, {});
    ASSERT_TRUE(opened) << opened.error().message;
    store& s = **opened;
    auto last = s.last_seq(1);
    ASSERT_TRUE(last);
    EXPECT_GE(*last, acked);
    auto events = s.read(1, 1, 100'000'000, std::size_t{1} << 40);
    ASSERT_TRUE(events);
    // Present exactly once and in order: seqs 1, 2, … with no gap or repeat up to what survived.
    ASSERT_GE(events->size(), acked);
    for (std::size_t i = 0; i < events->size(); ++i) {
      const std::uint64_t seq = i + 1;
      ASSERT_EQ((*events)[i].seq, seq);
      ASSERT_EQ((*events)[i].payload, crash_payload(seq));
      ASSERT_EQ((*events)[i].time_ns, seq);
    }
    std::cout << "acknowledged " << acked << " events before SIGKILL, " << events->size() << " recovered\n";
  }
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace switchboard::store
