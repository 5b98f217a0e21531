// The media index in the store (RocksDB, `media_index` column family) and the size-bounded LRU cache
// over it: persistence across reopen of the store, undecodable records, orphans, eviction order.
#include "broker/media/media_cache.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

#include "broker/media/media_id.h"
#include "broker/media/store_media_index.h"
#include "broker/store/store.h"

namespace switchboard::media {
namespace {

namespace fs = std::filesystem;

media_entry make_entry(const std::string& name, std::int64_t access_ms) {
  media_entry e;
  e.id = url_media_id("http://origin/" + name, format::ulaw_8k, default_volatile_query_params());
  e.source = "http://origin/" + name;
  e.duration_ms = 1000;
  e.etag = "\"" + name + "\"";
  e.last_modified = "Mon, 01 Jan 2024 00:00:00 GMT";
  e.fetched_at_ms = access_ms;
  e.max_age_s = 60;
  e.last_access_ms = access_ms;
  return e;
}

class MediaCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = (fs::temp_directory_path() / "media_cache_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(dir.data()), nullptr);
    _dir = dir;
  }
  void TearDown() override {
    _store.reset();
    fs::remove_all(_dir);
  }

  fs::path db_path() const { return _dir / "db"; }

  // Closes and reopens the RocksDB store, as a restarted broker does. Indexes over the old store
  // must be gone (their caches destroyed) before this is called.
  void reopen_store() {
    _store.reset();
    auto st = store::store::open_rocksdb(db_path().string());
    ASSERT_TRUE(st.has_value()) << st.error().message;
    _store = std::move(*st);
  }

  std::unique_ptr<media_index> open_index() {
    if (!_store) reopen_store();
    return open_store_media_index(*_store);
  }

  std::unique_ptr<media_cache> open_cache(std::uint64_t max_bytes) {
    auto cache = media_cache::open(_dir, max_bytes, open_index());
    EXPECT_TRUE(cache.has_value()) << cache.error().message;
    return std::move(*cache);
  }

  fs::path _dir;
  std::unique_ptr<store::store> _store;
};

TEST_F(MediaCacheTest, IndexPutGetEraseListSurviveReopen) {
  media_entry a = make_entry("a", 1);
  a.source = "text with \"quotes\", a\nnewline and ünïcode";
  a.no_store = true;
  a.max_age_s = -1;
  media_entry b = make_entry("b", 2);
  b.fmt = format::pcm16_16k;
  {
    auto index = open_index();
    ASSERT_TRUE(index->put(a).has_value());
    ASSERT_TRUE(index->put(b).has_value());
    b.duration_ms = 2000;
    ASSERT_TRUE(index->put(b).has_value());  // replaces
    EXPECT_EQ(index->get(a.id).value(), a);
    ASSERT_TRUE(index->erase(a.id).has_value());
    EXPECT_FALSE(index->get(a.id).value().has_value());
    ASSERT_TRUE(index->erase("u-absent").has_value());
    ASSERT_TRUE(index->put(a).has_value());
  }
  reopen_store();
  auto index = open_index();
  EXPECT_EQ(index->get(a.id).value(), a);
  EXPECT_EQ(index->get(b.id).value(), b);
  EXPECT_EQ(index->list().value().size(), 2u);
  // The records live in the store's media_index kind, as JSON keyed by id.
  const auto raw = _store->list_configs(store::kind::media_index).value();
  ASSERT_EQ(raw.size(), 2u);
  EXPECT_EQ(entry_from_json(raw[0].second).value().id, raw[0].first);
}

TEST_F(MediaCacheTest, IndexSkipsAnUndecodableRecord) {
  const media_entry a = make_entry("a", 1);
  {
    auto index = open_index();
    ASSERT_TRUE(index->put(a).has_value());
  }
  ASSERT_TRUE(_store->put_config(store::kind::media_index, "u-0123", R"({"id":"u-0123","format":"ulaw_8k","by)"));
  ASSERT_TRUE(_store->put_config(store::kind::media_index, "u-4567", R"({"id":"u-4567","format":"mp3"})"));
  reopen_store();
  auto index = open_index();
  EXPECT_EQ(index->list().value().size(), 1u);
  EXPECT_EQ(index->get(a.id).value(), a);
  EXPECT_FALSE(index->get("u-0123").value().has_value());
}

TEST_F(MediaCacheTest, EntryJsonRoundTrips) {
  media_entry a = make_entry("a", -5);
  a.max_age_s = -1;
  a.no_store = true;
  const std::string json = entry_to_json(a);
  EXPECT_EQ(entry_from_json(json).value(), a);
  EXPECT_FALSE(entry_from_json("").has_value());
  EXPECT_FALSE(entry_from_json("[]").has_value());
  EXPECT_FALSE(entry_from_json(json.substr(0, json.size() - 1)).has_value());
}

TEST_F(MediaCacheTest, AccessTimesReachTheIndexAtMostOncePerInterval) {
  auto cache = open_cache(1 << 20);
  const media_entry a = make_entry("a", 1000);
  ASSERT_TRUE(cache->insert(a, std::string(10, 'a')).has_value());
  auto stored = [&] { return open_index()->get(a.id).value().value().last_access_ms; };
  ASSERT_TRUE(cache->find(a.id, 2000).has_value());
  EXPECT_EQ(stored(), 1000);  // within the interval: memory only
  ASSERT_TRUE(cache->find(a.id, 1000 + media_cache::access_persist_interval_ms, false).has_value());
  EXPECT_EQ(stored(), 1000);  // not asked to persist (the serving path)
  ASSERT_TRUE(cache->find(a.id, 1000 + media_cache::access_persist_interval_ms).has_value());
  EXPECT_EQ(stored(), 1000 + media_cache::access_persist_interval_ms);
}

TEST_F(MediaCacheTest, InsertFindAndFiles) {
  auto cache = open_cache(1 << 20);
  const media_entry a = make_entry("a", 1);
  auto evicted = cache->insert(a, std::string(1000, 'a'));
  ASSERT_TRUE(evicted.has_value()) << evicted.error().message;
  EXPECT_TRUE(evicted->empty());
  auto found = cache->find(a.id, 5);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->bytes, 1000u);
  EXPECT_EQ(found->last_access_ms, 5);
  EXPECT_EQ(fs::file_size(cache->path(a.id)), 1000u);
  EXPECT_EQ(cache->path(a.id), _dir / (a.id + ".wav"));
  EXPECT_EQ(cache->bytes(), 1000u);
  // Replacing keeps one entry and counts only the new size.
  ASSERT_TRUE(cache->insert(a, std::string(400, 'b')).has_value());
  EXPECT_EQ(cache->bytes(), 400u);
  EXPECT_EQ(cache->entries(), 1u);
  auto erased = cache->erase(a.id);
  ASSERT_TRUE(erased.has_value());
  ASSERT_TRUE(erased->has_value());
  EXPECT_EQ((*erased)->bytes, 400u);
  EXPECT_FALSE(cache->erase(a.id).value().has_value());  // absent: succeeds, nothing removed
  EXPECT_FALSE(cache->find(a.id, 6).has_value());
  EXPECT_FALSE(fs::exists(cache->path(a.id)));
  EXPECT_EQ(cache->bytes(), 0u);
}

TEST_F(MediaCacheTest, EvictsLeastRecentlyUsedBySize) {
  auto cache = open_cache(2500);
  const media_entry a = make_entry("a", 1);
  const media_entry b = make_entry("b", 2);
  const media_entry c = make_entry("c", 3);
  ASSERT_TRUE(cache->insert(a, std::string(1000, 'a')).has_value());
  ASSERT_TRUE(cache->insert(b, std::string(1000, 'b')).has_value());
  ASSERT_TRUE(cache->find(a.id, 10).has_value());  // a is now more recent than b
  auto evicted = cache->insert(c, std::string(1000, 'c'));
  ASSERT_TRUE(evicted.has_value());
  ASSERT_EQ(evicted->size(), 1u);
  EXPECT_EQ(evicted->front().id, b.id);
  EXPECT_FALSE(fs::exists(cache->path(b.id)));
  EXPECT_EQ(cache->bytes(), 2000u);
  EXPECT_TRUE(cache->find(a.id, 11).has_value());
  EXPECT_TRUE(cache->find(c.id, 12).has_value());
}

TEST_F(MediaCacheTest, AnEntryLargerThanTheCacheStaysUntilTheNextInsert) {
  auto cache = open_cache(500);
  const media_entry a = make_entry("a", 1);
  auto evicted = cache->insert(a, std::string(1000, 'a'));
  ASSERT_TRUE(evicted.has_value());
  EXPECT_TRUE(evicted->empty());
  EXPECT_TRUE(fs::exists(cache->path(a.id)));
  auto next = cache->insert(make_entry("b", 2), std::string(100, 'b'));
  ASSERT_TRUE(next.has_value());
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ(next->front().id, a.id);
}

TEST_F(MediaCacheTest, SurvivesReopenWithLruOrder) {
  const media_entry a = make_entry("a", 1);
  const media_entry b = make_entry("b", 2);
  {
    auto cache = open_cache(1 << 20);
    ASSERT_TRUE(cache->insert(a, std::string(1000, 'a')).has_value());
    ASSERT_TRUE(cache->insert(b, std::string(1000, 'b')).has_value());
    ASSERT_TRUE(cache->find(a.id, 100'000).has_value());  // persisted access: a is the most recent
  }
  reopen_store();
  auto cache = open_cache(1 << 20);
  EXPECT_EQ(cache->entries(), 2u);
  EXPECT_EQ(cache->bytes(), 2000u);
  auto found = cache->find(b.id, 200'000);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->etag, b.etag);
  // Reopening smaller evicts the least recently used (a was touched at 100 s, b at 200 s).
  cache.reset();
  reopen_store();
  auto small = open_cache(1500);
  EXPECT_EQ(small->entries(), 1u);
  EXPECT_TRUE(small->find(b.id, 300'000).has_value());
  EXPECT_FALSE(fs::exists(small->path(a.id)));
}

TEST_F(MediaCacheTest, OpenDropsMissingFilesAndUnlinksOrphans) {
  const media_entry a = make_entry("a", 1);
  const media_entry b = make_entry("b", 2);
  {
    auto cache = open_cache(1 << 20);
    ASSERT_TRUE(cache->insert(a, std::string(1000, 'a')).has_value());
    ASSERT_TRUE(cache->insert(b, std::string(1000, 'b')).has_value());
  }
  reopen_store();
  fs::remove(_dir / (a.id + ".wav"));                   // indexed, file gone
  std::ofstream(_dir / (b.id + ".wav"), std::ios::app) << "x";  // indexed, wrong size
  const std::string orphan = make_entry("orphan", 3).id + ".wav";
  std::ofstream(_dir / orphan) << "orphan";              // file, not indexed
  std::ofstream(_dir / (a.id + ".wav.tmp")) << "partial";  // interrupted write
  std::ofstream(_dir / "unrelated.txt") << "kept";

  auto cache = open_cache(1 << 20);
  EXPECT_EQ(cache->entries(), 0u);
  EXPECT_EQ(cache->bytes(), 0u);
  EXPECT_FALSE(fs::exists(_dir / orphan));
  EXPECT_FALSE(fs::exists(_dir / (a.id + ".wav.tmp")));
  EXPECT_FALSE(fs::exists(_dir / (b.id + ".wav")));
  EXPECT_TRUE(fs::exists(_dir / "unrelated.txt"));
  EXPECT_TRUE(fs::exists(db_path()));
  EXPECT_TRUE(open_index()->list().value().empty());
}

}  // namespace
}  // namespace switchboard::media
