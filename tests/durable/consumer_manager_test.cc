#include "broker/durable/consumer_manager.h"

#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "broker/common/epoch_text.h"
#include "broker/engine/local_engine.h"
#include "switchboard/protocol.h"

namespace switchboard::durable {
namespace {

using namespace std::chrono_literals;

// One decoded output record.
struct record {
  protocol::frame_type type{};
  router::conn_id conn = 0;
  std::uint32_t sub_id = 0;
  std::string channel;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  std::uint64_t time_ns = 0;
  std::string payload;  // EVENT payload, NOTICE detail, ERR message
  std::string kind;     // NOTICE kind, ERR code
};

struct rocksdb_backend {
  static constexpr bool persistent = true;
  static std::expected<std::unique_ptr<store::store>, store::error> open(const std::string& dir) {
    return store::store::open_rocksdb(dir + "/db");
  }
};
struct memory_backend {
  static constexpr bool persistent = false;
  static std::expected<std::unique_ptr<store::store>, store::error> open(const std::string&) {
    return store::store::open_memory();
  }
};

constexpr std::uint64_t base_ns = 1714564800ull * 1'000'000'000;  // 2024-05-01T12:00:00Z

template <typename Backend>
class consumer_manager_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "durable_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    _dir = tmpl;
    auto s = Backend::open(_dir);
    ASSERT_TRUE(s) << s.error().message;
    _store = std::move(*s);
    _store->start();
    _engine = std::make_unique<engine::local_engine>(*_store);
    start_manager();
  }
  void TearDown() override {
    _manager.reset();
    _engine.reset();
    _store.reset();
    std::filesystem::remove_all(_dir);
  }

  void start_manager(manager_options o = {}) {
    _manager.reset();
    o.wake = [this] {
      std::lock_guard lock(_wake_mutex);
      _woken = true;
      _wake_cv.notify_all();
    };
    _manager = std::make_unique<consumer_manager>(*_store, *_engine, std::move(o));
    _notifier = &_manager->add_notifier();
    _input = &_manager->add_client_input();
    auto r = _manager->start();
    ASSERT_TRUE(r) << r.error().message;
  }

  consumer_manager& m() { return *_manager; }

  // Appends events (payloads) to `channel` with the next seqs, waits until durable, notifies.
  // Event i (1-based seq) gets time base_ns + seq seconds.
  void publish(const std::string& channel, const std::vector<std::string>& payloads) {
    auto id = _store->channel_id(channel);
    ASSERT_TRUE(id);
    auto last = _store->last_seq(*id);
    ASSERT_TRUE(last);
    std::uint64_t seq = std::max(*last, _published[channel]);
    std::vector<store::append_request> batch;
    for (const auto& p : payloads) {
      ++seq;
      batch.push_back(store::append_request{*id, seq, base_ns + seq * 1'000'000'000, "", p});
    }
    std::promise<std::expected<void, store::error>> done;
    auto f = done.get_future();
    ASSERT_TRUE(_store->append(std::move(batch),
                               [&done](std::expected<void, store::error> r) { done.set_value(r); }));
    ASSERT_TRUE(f.get());
    _published[channel] = seq;
    _notifier->notify(channel, seq);
  }
  void publish_n(const std::string& channel, int n) {
    std::vector<std::string> payloads;
    for (int i = 0; i < n; ++i) payloads.push_back(R"({"n":)" + std::to_string(i) + "}");
    publish(channel, payloads);
  }

  subscription_spec spec(const std::string& json) {
    auto s = parse_spec(json);
    EXPECT_TRUE(s) << s.error().message;
    return s ? *s : subscription_spec{};
  }

  // Decodes everything available now into _records.
  void drain() {
    while (auto out = _manager->try_take()) {
      protocol::frame_reader reader(out->bytes);
      for (;;) {
        auto f = reader.next();
        ASSERT_TRUE(f) << f.error().message;
        if (!f->has_value()) break;
        record r;
        r.conn = out->conn;
        if (auto* e = std::get_if<protocol::event>(&**f)) {
          r = {protocol::frame_type::event,
               out->conn,
               e->sub_id,
               std::string(e->channel),
               e->epoch,
               e->seq,
               e->time_ns,
               std::string(e->payload),
               ""};
        } else if (auto* n = std::get_if<protocol::notice>(&**f)) {
          r = {protocol::frame_type::notice, out->conn,           n->sub_id, "", 0, 0, 0,
               std::string(n->detail),       std::string(n->kind)};
        } else if (auto* s = std::get_if<protocol::suback>(&**f)) {
          r = {protocol::frame_type::suback, out->conn, s->sub_id, "", 0, 0, 0, "", ""};
        } else if (auto* err = std::get_if<protocol::error>(&**f)) {
          r = {protocol::frame_type::err, out->conn, err->ref, "", 0, 0, 0, std::string(err->message),
               std::string(err->code)};
        } else {
          ADD_FAILURE() << "unexpected record type";
          continue;
        }
        _records.push_back(std::move(r));
      }
    }
  }

  // Waits (bounded) until `pred()` holds, draining output meanwhile.
  template <typename Pred>
  bool wait_for(Pred pred, std::chrono::milliseconds limit = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      drain();
      if (pred()) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::unique_lock lock(_wake_mutex);
      _wake_cv.wait_for(lock, 20ms, [this] { return _woken; });
      _woken = false;
    }
  }

  // Records for (conn, sub_id), removed from _records.
  std::vector<record> take(router::conn_id conn, std::uint32_t sub_id) {
    std::vector<record> out;
    std::erase_if(_records, [&](record& r) {
      if (r.conn != conn || r.sub_id != sub_id) return false;
      out.push_back(std::move(r));
      return true;
    });
    return out;
  }
  std::size_t count(router::conn_id conn, std::uint32_t sub_id, protocol::frame_type t) const {
    return std::count_if(_records.begin(), _records.end(), [&](const record& r) {
      return r.conn == conn && r.sub_id == sub_id && r.type == t;
    });
  }
  bool wait_events(router::conn_id conn, std::uint32_t sub_id, std::size_t n) {
    return wait_for([&] { return count(conn, sub_id, protocol::frame_type::event) >= n; });
  }
  // Attaches and waits for the SUBACK (consumed).
  void attach(router::conn_id conn, std::uint32_t sub_id, const std::string& name,
              std::optional<subscription_spec> create = std::nullopt) {
    _input->attach(conn, sub_id, name, std::move(create));
    ASSERT_TRUE(wait_for([&] {
      return count(conn, sub_id, protocol::frame_type::suback) +
                 count(conn, sub_id, protocol::frame_type::err) >
             0;
    }));
    auto it = std::find_if(_records.begin(), _records.end(), [&](const record& r) {
      return r.conn == conn && r.sub_id == sub_id && r.type != protocol::frame_type::event;
    });
    ASSERT_EQ(it->type, protocol::frame_type::suback) << it->kind << ": " << it->payload;
    _records.erase(it);
  }
  static std::vector<std::uint64_t> seqs(const std::vector<record>& rs) {
    std::vector<std::uint64_t> out;
    for (const auto& r : rs) {
      if (r.type == protocol::frame_type::event) out.push_back(r.seq);
    }
    return out;
  }
  std::uint64_t epoch_of(const std::string& channel) {
    auto id = _store->channel_id(channel);
    return _store->epoch(*id).value();
  }

  std::string _dir;
  std::unique_ptr<store::store> _store;
  std::unique_ptr<engine::local_engine> _engine;  // the manager reads histories through it
  std::unique_ptr<consumer_manager> _manager;
  consumer_manager::notifier* _notifier = nullptr;
  consumer_manager::client_input* _input = nullptr;
  std::map<std::string, std::uint64_t> _published;
  std::vector<record> _records;
  std::mutex _wake_mutex;
  std::condition_variable _wake_cv;
  bool _woken = false;
};

#if defined(__SANITIZE_THREAD__)
// Debian's RocksDB is not built with TSan: its lock-free memtable reads (the manager thread's
// store::read) are reported as races against the store thread's writes. Under TSan only the memory
// store runs, which still exercises every thread hand-over of the manager.
using backends = ::testing::Types<memory_backend>;
#else
using backends = ::testing::Types<rocksdb_backend, memory_backend>;
#endif
class backend_names {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, rocksdb_backend> ? "rocksdb" : "memory";
  }
};
TYPED_TEST_SUITE(consumer_manager_test, backends, backend_names);

TYPED_TEST(consumer_manager_test, catch_up_then_live_in_order) {
  this->publish_n("acme.calls.1", 5);
  this->publish_n("acme.calls.2", 2);
  this->publish_n("other.x", 1);
  ASSERT_EQ(this->m().create(this->spec(R"({"name":"billing","pattern":"acme.calls.>","start":"all"})")),
            true);
  this->attach(1, 7, "billing");
  ASSERT_TRUE(this->wait_events(1, 7, 7));
  this->publish_n("acme.calls.1", 3);
  this->publish_n("acme.calls.3", 1);  // a channel that appears after the subscription
  ASSERT_TRUE(this->wait_events(1, 7, 11));
  std::map<std::string, std::vector<std::uint64_t>> by_channel;
  for (const auto& r : this->take(1, 7)) {
    ASSERT_EQ(r.type, protocol::frame_type::event);
    EXPECT_EQ(r.epoch, this->epoch_of(r.channel));
    EXPECT_EQ(r.time_ns, base_ns + r.seq * 1'000'000'000);
    by_channel[r.channel].push_back(r.seq);
  }
  EXPECT_EQ(by_channel["acme.calls.1"], (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(by_channel["acme.calls.2"], (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(by_channel["acme.calls.3"], (std::vector<std::uint64_t>{1}));
  EXPECT_FALSE(by_channel.contains("other.x"));
  EXPECT_EQ(this->m().stats().delivered, 11u);
  EXPECT_EQ(this->m().stats().attached, 1u);
}

TYPED_TEST(consumer_manager_test, attach_creates_when_missing_and_reports_errors) {
  this->_input->attach(1, 1, "nope", std::nullopt);
  ASSERT_TRUE(this->wait_for([&] { return this->count(1, 1, protocol::frame_type::err) == 1; }));
  auto rs = this->take(1, 1);
  EXPECT_EQ(rs[0].kind, "not_found");
  EXPECT_EQ(rs[0].payload, R"(durable subscription "nope" does not exist)");

  this->attach(1, 2, "made", this->spec(R"({"name":"made","pattern":"a.>","start":"all"})"));
  EXPECT_TRUE(this->m().get("made"));
  this->_input->attach(1, 3, "made", this->spec(R"({"name":"made","pattern":"b.>"})"));
  ASSERT_TRUE(this->wait_for([&] { return this->count(1, 3, protocol::frame_type::err) == 1; }));
  rs = this->take(1, 3);
  EXPECT_EQ(rs[0].kind, "conflict");
  EXPECT_EQ(rs[0].payload, R"(durable subscription "made" already exists with a different spec)");

  auto conflict = this->m().create(this->spec(R"({"name":"made","pattern":"b.>"})"));
  ASSERT_FALSE(conflict);
  EXPECT_EQ(
      conflict.error(),
      (spec_error{409, "conflict", R"(durable subscription "made" already exists with a different spec)"}));
  EXPECT_EQ(this->m().create(this->spec(R"({"name":"made","pattern":"a.>","start":"all"})")),
            false);  // identical
  auto missing = this->m().get("ghost");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(),
            (spec_error{404, "not_found", R"(durable subscription "ghost" does not exist)"}));
  auto removed = this->m().remove("ghost");
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error().http_status, 404);

  // Another connection takes the subscription over; the first is told.
  this->attach(2, 9, "made");
  ASSERT_TRUE(this->wait_for([&] { return this->count(1, 2, protocol::frame_type::err) == 1; }));
  rs = this->take(1, 2);
  EXPECT_EQ(rs[0].kind, "detached");
  EXPECT_EQ(rs[0].payload, R"(durable subscription "made" was attached by another connection)");

  ASSERT_TRUE(this->m().remove("made"));
  ASSERT_TRUE(this->wait_for([&] { return this->count(2, 9, protocol::frame_type::err) == 1; }));
  EXPECT_EQ(this->take(2, 9)[0].kind, "subscription_removed");
  EXPECT_EQ(this->m().list().value(), "[]");
}

TYPED_TEST(consumer_manager_test, filter_by_equality_and_prefix) {
  ASSERT_TRUE(
      this->m().create(this->spec(R"({"name":"eq","pattern":"calls.>","filter":{"call_sid":"CA1"}})")));
  ASSERT_TRUE(this->m().create(
      this->spec(R"({"name":"pre","pattern":"calls.>","filter":{"from":{"prefix":"+44"}}})")));
  this->attach(1, 1, "eq");
  this->attach(1, 2, "pre");
  this->publish("calls.a", {R"({"call_sid":"CA1","from":"+4420"})",  // 1: both
                            R"({"call_sid":"CA2","from":"+1555"})",  // 2: neither
                            "not json",                              // 3: neither
                            R"({"from":"+4471"})",                   // 4: pre
                            R"({"call_sid":"CA1"})",                 // 5: eq
                            R"({"call_sid":1,"from":44})",           // 6: neither (types differ)
                            R"([1,2])",                              // 7: neither
                            R"({"call_sid":"CA1","from":"+44"})"});  // 8: both
  ASSERT_TRUE(this->wait_for([&] {
    return this->count(1, 1, protocol::frame_type::event) >= 3 &&
           this->count(1, 2, protocol::frame_type::event) >= 3;
  }));
  // A witness event on a second channel proves nothing else is coming from calls.a.
  this->publish("calls.b", {R"({"call_sid":"CA1","from":"+44"})"});
  ASSERT_TRUE(this->wait_events(1, 1, 4));
  ASSERT_TRUE(this->wait_events(1, 2, 4));
  auto eq = this->take(1, 1);
  auto pre = this->take(1, 2);
  EXPECT_EQ(this->seqs(eq), (std::vector<std::uint64_t>{1, 5, 8, 1}));
  EXPECT_EQ(this->seqs(pre), (std::vector<std::uint64_t>{1, 4, 8, 1}));
  EXPECT_EQ(eq[1].payload, R"({"call_sid":"CA1"})");
}

TYPED_TEST(consumer_manager_test, at_least_once_redelivers_after_ack_wait) {
  ASSERT_TRUE(this->m().create(this->spec(
      R"({"name":"w","pattern":"q","ack":{"policy":"at_least_once","ack_wait_ms":100,"max_deliveries":5},"start":"all"})")));
  this->attach(1, 1, "w");
  this->publish_n("q", 3);
  ASSERT_TRUE(this->wait_events(1, 1, 3));
  const std::uint64_t epoch = this->epoch_of("q");
  EXPECT_EQ(this->seqs(this->take(1, 1)), (std::vector<std::uint64_t>{1, 2, 3}));
  this->_input->ack(1, 1, epoch, 2);
  this->_input->ack(1, 1, epoch, 3);
  this->_input->ack(1, 1, epoch + 1, 1);  // wrong epoch: not an ack of seq 1
  ASSERT_TRUE(this->wait_events(1, 1, 1));
  auto again = this->take(1, 1);
  EXPECT_EQ(this->seqs(again), (std::vector<std::uint64_t>{1}));
  auto doc = this->m().get("w");
  ASSERT_TRUE(doc);
  EXPECT_NE(doc->find(R"("q":{"epoch":")" + common::epoch_text(epoch) + R"(","acked_seq":0,"pending":1})"),
            std::string::npos)
      << *doc;
  this->_input->ack(1, 1, epoch, 1);
  ASSERT_TRUE(this->wait_for([&] { return this->m().stats().pending == 0; }));
  doc = this->m().get("w");
  EXPECT_NE(doc->find(R"("acked_seq":3,"pending":0})"), std::string::npos) << *doc;
  EXPECT_NE(doc->find(R"("redeliveries":)"), std::string::npos);
  EXPECT_GE(this->m().stats().redeliveries, 1u);
}

TYPED_TEST(consumer_manager_test, dead_letters_after_max_deliveries_and_cursor_moves_on) {
  ASSERT_TRUE(this->m().create(this->spec(
      R"({"name":"dl","pattern":"q","ack":{"policy":"at_least_once","ack_wait_ms":50,"max_deliveries":2},"start":"all"})")));
  this->attach(1, 1, "dl");
  this->publish("q", {R"({"poison":true})", R"({"ok":1})", "raw\x01bytes"});
  ASSERT_TRUE(this->wait_events(1, 1, 3));
  const std::uint64_t epoch = this->epoch_of("q");
  this->_input->ack(1, 1, epoch, 2);
  ASSERT_TRUE(this->wait_for([&] { return this->m().stats().dead_letters == 2; }));
  auto rs = this->take(1, 1);
  EXPECT_EQ(std::count_if(rs.begin(), rs.end(), [](const record& r) { return r.seq == 1; }),
            2);  // max_deliveries
  EXPECT_EQ(std::count_if(rs.begin(), rs.end(), [](const record& r) { return r.seq == 3; }), 2);
  EXPECT_EQ(std::count_if(rs.begin(), rs.end(), [](const record& r) { return r.seq == 2; }), 1);
  auto doc = this->m().get("dl");
  EXPECT_NE(doc->find(R"("acked_seq":3,"pending":0})"), std::string::npos) << *doc;

  auto list = this->m().dead_letters();
  ASSERT_TRUE(list);
  // The id carries the epoch, so ids never collide across wipes of the channel (issue 12).
  const std::string e = common::epoch_text(epoch);
  const std::string id1 = "dl-q-" + e + "-1";
  const std::string id3 = "dl-q-" + e + "-3";
  EXPECT_NE(list->find(R"("id":")" + id1 + R"(","subscription":"dl","channel":"q","epoch":")" + e +
                       R"(","seq":1,"deliveries":2,"reason":"max_deliveries (2) exceeded without ack")"),
            std::string::npos)
      << *list;
  EXPECT_NE(list->find(R"("data":{"poison":true})"), std::string::npos) << *list;
  auto first = this->m().take_dead_letter(id1);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->payload, R"({"poison":true})");
  EXPECT_EQ(first->channel, "q");
  EXPECT_EQ(first->seq, 1u);
  EXPECT_EQ(first->deliveries, 2u);
  EXPECT_EQ(first->reason, "max_deliveries (2) exceeded without ack");
  auto raw = this->m().take_dead_letter(id3);
  ASSERT_TRUE(raw) << raw.error().message;
  EXPECT_EQ(raw->payload, "raw\x01bytes");
  auto gone = this->m().take_dead_letter(id1);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error(), (spec_error{404, "not_found", "dead letter \"" + id1 + "\" does not exist"}));
  EXPECT_EQ(this->m().dead_letters().value(), "[]");
}

TYPED_TEST(consumer_manager_test, acked_cursor_survives_a_new_manager) {
  ASSERT_TRUE(this->m().create(this->spec(
      R"({"name":"p","pattern":"q","ack":{"policy":"at_least_once","ack_wait_ms":30000},"start":"all"})")));
  this->attach(1, 1, "p");
  this->publish_n("q", 5);
  ASSERT_TRUE(this->wait_events(1, 1, 5));
  this->take(1, 1);
  const std::uint64_t epoch = this->epoch_of("q");
  for (std::uint64_t s : {1, 2, 3, 5}) this->_input->ack(1, 1, epoch, s);
  ASSERT_TRUE(this->wait_for([&] { return this->m().stats().pending == 1; }));
  this->start_manager();  // stop() saves; the new manager loads from the same store
  EXPECT_NE(this->m().get("p").value().find(R"("acked_seq":3,)"), std::string::npos);
  this->attach(2, 4, "p");
  ASSERT_TRUE(this->wait_events(2, 4, 2));
  // 4 was never acked, 5 was acked above the floor: both come again (at least once).
  EXPECT_EQ(this->seqs(this->take(2, 4)), (std::vector<std::uint64_t>{4, 5}));
  this->publish_n("q", 1);
  ASSERT_TRUE(this->wait_events(2, 4, 1));
  EXPECT_EQ(this->seqs(this->take(2, 4)), (std::vector<std::uint64_t>{6}));
}

TYPED_TEST(consumer_manager_test, policy_none_advances_on_send) {
  ASSERT_TRUE(this->m().create(this->spec(R"({"name":"n","pattern":"q","start":"all"})")));
  this->publish_n("q", 3);
  this->attach(1, 1, "n");
  ASSERT_TRUE(this->wait_events(1, 1, 3));
  this->take(1, 1);
  EXPECT_EQ(this->m().stats().pending, 0u);
  EXPECT_NE(this->m().get("n").value().find(R"("acked_seq":3,"pending":0})"), std::string::npos);
  this->start_manager();
  this->attach(2, 1, "n");
  this->publish_n("q", 1);
  ASSERT_TRUE(this->wait_events(2, 1, 1));
  EXPECT_EQ(this->seqs(this->take(2, 1)), (std::vector<std::uint64_t>{4}));
}

TYPED_TEST(consumer_manager_test, start_positions) {
  this->publish_n("s", 5);  // seq i published at base + i seconds
  ASSERT_TRUE(this->m().create(this->spec(R"({"name":"new","pattern":"s"})")));
  ASSERT_TRUE(this->m().create(this->spec(R"({"name":"all","pattern":"s","start":"all"})")));
  ASSERT_TRUE(this->m().create(this->spec(R"({"name":"seq","pattern":"s","start":"seq:4"})")));
  ASSERT_TRUE(
      this->m().create(this->spec(R"({"name":"time","pattern":"s","start":"time:2024-05-01T12:00:03Z"})")));
  ASSERT_TRUE(
      this->m().create(this->spec(R"({"name":"later","pattern":"s","start":"time:2030-01-01T00:00:00Z"})")));
  this->attach(1, 1, "new");
  this->attach(1, 2, "all");
  this->attach(1, 3, "seq");
  this->attach(1, 4, "time");
  this->attach(1, 5, "later");
  this->publish_n("s", 1);
  ASSERT_TRUE(this->wait_events(1, 1, 1));
  ASSERT_TRUE(this->wait_events(1, 2, 6));
  ASSERT_TRUE(this->wait_events(1, 3, 3));
  ASSERT_TRUE(this->wait_events(1, 4, 4));
  ASSERT_TRUE(this->wait_events(1, 5, 1));
  EXPECT_EQ(this->seqs(this->take(1, 1)), (std::vector<std::uint64_t>{6}));
  EXPECT_EQ(this->seqs(this->take(1, 2)), (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(this->seqs(this->take(1, 3)), (std::vector<std::uint64_t>{4, 5, 6}));
  EXPECT_EQ(this->seqs(this->take(1, 4)), (std::vector<std::uint64_t>{3, 4, 5, 6}));
  EXPECT_EQ(this->seqs(this->take(1, 5)), (std::vector<std::uint64_t>{6}));
}

TYPED_TEST(consumer_manager_test, gap_notice_when_retention_removed_the_cursor) {
  ASSERT_TRUE(this->m().create(this->spec(R"({"name":"g","pattern":"acme.calls.1","start":"all"})")));
  this->publish_n("acme.calls.1", 10);
  auto id = this->_store->channel_id("acme.calls.1");
  ASSERT_EQ(this->_store->trim(*id, store::retention{.max_events = 4}, 0), 6u);
  this->attach(1, 1, "g");
  ASSERT_TRUE(this->wait_events(1, 1, 4));
  auto rs = this->take(1, 1);
  ASSERT_EQ(rs.size(), 5u);
  EXPECT_EQ(rs[0].type, protocol::frame_type::notice);
  EXPECT_EQ(rs[0].kind, "gap");
  EXPECT_EQ(rs[0].payload, R"({"channel":"acme.calls.1","expected_seq":1,"first_seq":7})");
  EXPECT_EQ(this->seqs(rs), (std::vector<std::uint64_t>{7, 8, 9, 10}));
}

TYPED_TEST(consumer_manager_test, detach_and_drop_connection_stop_delivery) {
  ASSERT_TRUE(this->m().create(this->spec(R"({"name":"a","pattern":"q","start":"all"})")));
  ASSERT_TRUE(this->m().create(this->spec(R"({"name":"b","pattern":"q","start":"all"})")));
  ASSERT_TRUE(this->m().create(this->spec(R"({"name":"witness","pattern":"q","start":"all"})")));
  this->attach(1, 1, "a");
  this->attach(2, 1, "b");
  this->attach(3, 1, "witness");
  this->publish_n("q", 1);
  ASSERT_TRUE(this->wait_events(1, 1, 1));
  ASSERT_TRUE(this->wait_events(2, 1, 1));
  ASSERT_TRUE(this->wait_events(3, 1, 1));
  this->_records.clear();
  this->_input->detach(1, 1);
  this->_input->drop_connection(2);
  this->publish_n("q", 2);
  ASSERT_TRUE(this->wait_events(3, 1, 2));  // the witness got them: the others would have too
  EXPECT_EQ(this->count(1, 1, protocol::frame_type::event), 0u);
  EXPECT_EQ(this->count(2, 1, protocol::frame_type::event), 0u);
  EXPECT_NE(this->m().get("a").value().find(R"("attached":false)"), std::string::npos);
  EXPECT_EQ(this->m().stats().attached, 1u);
  // Re-attaching resumes where the cursor stopped.
  this->attach(4, 1, "a");
  ASSERT_TRUE(this->wait_events(4, 1, 2));
  EXPECT_EQ(this->seqs(this->take(4, 1)), (std::vector<std::uint64_t>{2, 3}));
}

TYPED_TEST(consumer_manager_test, overlapping_subscriptions_are_independent) {
  ASSERT_TRUE(this->m().create(this->spec(
      R"({"name":"calls","pattern":"acme.calls.>","ack":{"policy":"at_least_once","ack_wait_ms":30000},"start":"all"})")));
  ASSERT_TRUE(this->m().create(this->spec(R"({"name":"acme","pattern":"acme.>","start":"all"})")));
  this->attach(1, 1, "calls");
  this->attach(1, 2, "acme");
  this->publish_n("acme.calls.1", 2);
  this->publish_n("acme.sms.1", 1);
  ASSERT_TRUE(this->wait_events(1, 1, 2));
  ASSERT_TRUE(this->wait_events(1, 2, 3));
  const std::uint64_t epoch = this->epoch_of("acme.calls.1");
  this->_input->ack(1, 2, epoch, 1);  // an ack on the `none` subscription changes nothing
  this->_input->ack(1, 1, epoch, 1);
  ASSERT_TRUE(this->wait_for([&] { return this->m().stats().pending == 1; }));
  auto calls = this->m().get("calls").value();
  auto acme = this->m().get("acme").value();
  EXPECT_NE(
      calls.find(R"("acme.calls.1":{"epoch":")" + common::epoch_text(epoch) + R"(","acked_seq":1,"pending":1})"),
      std::string::npos)
      << calls;
  EXPECT_EQ(calls.find("acme.sms.1"), std::string::npos) << calls;
  EXPECT_NE(acme.find(R"(,"acked_seq":2,"pending":0})"), std::string::npos) << acme;
  EXPECT_NE(acme.find(R"("acme.sms.1":{)"), std::string::npos) << acme;
  EXPECT_EQ(this->seqs(this->take(1, 1)), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(this->take(1, 2).size(), 3u);
}

TYPED_TEST(consumer_manager_test, large_backlog_through_a_small_output_queue_stays_in_order) {
  manager_options small;
  small.max_output_batches = 2;
  small.flush_bytes = 512;
  small.read_chunk_events = 64;
  this->start_manager(std::move(small));
  this->publish_n("big", 3000);
  ASSERT_TRUE(this->m().create(this->spec(R"({"name":"big","pattern":"big","start":"all"})")));
  this->attach(1, 1, "big");
  ASSERT_TRUE(this->wait_events(1, 1, 3000));
  const auto got = this->seqs(this->take(1, 1));
  ASSERT_EQ(got.size(), 3000u);
  for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], i + 1);
}

}  // namespace
}  // namespace switchboard::durable
