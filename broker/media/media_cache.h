// The media cache: converted files stored content-addressed as `<dir>/<id>.wav`, described by a
// media_index, bounded in total size with least-recently-used eviction.
//
// Survives restarts: open() reloads the index, drops entries whose file is missing or has another
// size, and unlinks files the index does not know (orphans left by a crash between writing a file and
// indexing it) and leftover `*.tmp` files. A file is written to `<id>.wav.tmp` and renamed into place,
// so a reader never sees a partial file; replacing or evicting an entry renames over or unlinks the
// path, so a reader that already opened the old file keeps reading it intact.
#pragma once

#include <cstdint>
#include <expected>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/media/error.h"
#include "broker/media/media_index.h"

namespace switchboard::media {

// Operation: find() / insert() / update() / erase() by id; insert() evicts the least recently used
// entries until the total size is at most max_bytes again.
//
// Concurrency: thread-safe; one mutex protects the LRU list and totals and is held across the index
// write and file rename/unlink of each call (small files, local disk).
//
// Limitations: the entry just inserted is never evicted by its own insert(), so one entry larger than
// max_bytes stays until the next insert(). Sizes count the WAV files only, not the index.
class media_cache {
 public:
  // Opens (creating) `dir` with `index` as its index, reconciles both (see the file comment) and evicts
  // down to `max_bytes`. Fails with errc::io when the directory cannot be created or listed or the
  // index fails.
  [[nodiscard]] static std::expected<std::unique_ptr<media_cache>, error> open(const std::filesystem::path& dir,
                                                                               std::uint64_t max_bytes,
                                                                               std::unique_ptr<media_index> index);

  media_cache(const media_cache&) = delete;
  media_cache& operator=(const media_cache&) = delete;

  // The entry for `id` (empty when absent), marked as most recently used at `now_ms`. With
  // `persist_access` the access time is also written to the index, at most once per
  // access_persist_interval per entry (it only keeps the LRU order across restarts, so a minute of
  // drift is fine and a hot entry does not cost a synced store write per hit). Without it nothing is
  // written: the call never waits for the disk beyond the mutex (the HTTP io thread serves with it).
  [[nodiscard]] std::optional<media_entry> find(std::string_view id, std::int64_t now_ms,
                                                bool persist_access = true);
  static constexpr std::int64_t access_persist_interval_ms = 60'000;

  // Stores `wav` as the file of `entry` (entry.bytes is set from wav.size()), replacing any entry
  // with that id, then evicts. Returns the evicted entries (for metrics and events). The file is
  // written to a temporary name before the mutex is taken; only the rename and the index write
  // happen under it.
  [[nodiscard]] std::expected<std::vector<media_entry>, error> insert(media_entry entry, std::string_view wav);

  // Replaces the metadata of an existing entry (after a revalidation); the file is unchanged.
  // Returns false (and does nothing) when the id is absent, e.g. evicted meanwhile.
  [[nodiscard]] std::expected<bool, error> update(const media_entry& entry);

  // Removes the entry and its file; absent ids succeed. Returns the removed entry (empty when absent).
  [[nodiscard]] std::expected<std::optional<media_entry>, error> erase(std::string_view id);

  // Where the file of `id` is (whether or not it exists).
  [[nodiscard]] std::filesystem::path path(std::string_view id) const;

  [[nodiscard]] std::uint64_t bytes() const;
  [[nodiscard]] std::size_t entries() const;

 private:
  media_cache(std::filesystem::path dir, std::uint64_t max_bytes, std::unique_ptr<media_index> index);

  struct slot {
    media_entry entry;
    std::list<std::string>::iterator lru;  // position in _lru
    std::int64_t persisted_access_ms = 0;  // entry.last_access_ms as the index last stored it
  };

  std::expected<void, error> reconcile();
  // Called with _mutex held. Unlinks and unindexes entries from the LRU end until the total fits,
  // sparing `keep`.
  std::expected<std::vector<media_entry>, error> evict(std::string_view keep);
  std::expected<void, error> remove_locked(std::string_view id);

  const std::filesystem::path _dir;
  const std::uint64_t _max_bytes;
  const std::unique_ptr<media_index> _index;

  mutable std::mutex _mutex;  // protects the members below
  std::list<std::string> _lru;  // ids, most recently used first
  std::unordered_map<std::string, slot> _slots;
  std::uint64_t _bytes = 0;
  std::uint64_t _next_tmp = 0;  // makes temporary file names unique
};

}  // namespace switchboard::media
