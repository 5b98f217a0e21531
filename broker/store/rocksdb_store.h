// The RocksDB store: one column family per kind, the event log keyed by
// (8-byte big-endian channel id, 8-byte big-endian seq), appends through one group-commit thread
// that writes each group as ONE WriteBatch with a WAL fsync.
//
// On-disk layout (stable; changing it needs a migration):
//   events  key   = be64(channel id) be64(seq)
//           value = be64(time_ns) be16(key length) key payload
//   meta    "store.channel_id." + name  → be64(channel id)
//           "store.next_channel_id"     → be64(next id to hand out)
//           "store.epoch." + be64(id)   → be64(epoch)
//   channels / subscriptions / dead_letters: the caller's key → the caller's value
//
// Failures of the disk (see store.h, health_state):
// - RocksDB's own info log goes to spdlog, never to a file in the data dir: on a full disk that
//   file's failed append is what aborted RocksDB (an assertion in its WritableFileWriter).
// - No space: writes fail with errc::full and health() says `full`; RocksDB's background error
//   handler, driven by the SstFileManager set here, polls for free space and resumes writes by
//   itself (it needs one write buffer, 16 MiB with the default memtable budget, free). Nothing
//   acknowledged is lost: a failed group was never acknowledged, and what was synced stays synced.
// - A WAL damaged before its last record refuses the open (wal_recovery::refuse) naming the file;
//   a torn last record (a crash mid-write) is tolerated as before.
// - start() checks the block checksums of every SST file on a background thread.
#pragma once

#include "broker/store/group_commit.h"
#include "broker/store/store.h"

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_map>

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Status;
}  // namespace rocksdb

namespace switchboard::store {

// Operation: configs are read and written directly (writes synced); appends are queued and
// written by the store thread, one synced WriteBatch per group; trim() and wipe() are a synced
// DeleteRange over the channel's key range.
//
// Concurrency: RocksDB itself is thread-safe. `_ids_mutex` guards the channel-id and epoch caches
// and makes get-or-create of ids and epochs atomic. The store thread is the only writer of events
// except trim()/wipe(), which delete ranges below what the store thread writes (see store).
// Health is a small mutex-guarded cell shared with RocksDB's listener threads (handles::health).
//
// Limitations: trim() leaves range tombstones that compaction clears later; a channel trimmed very
// often by tiny amounts accumulates them until then. Channel id 2^64-1 is not usable.
class rocksdb_store final : public store {
 public:
  [[nodiscard]] static std::expected<std::unique_ptr<rocksdb_store>, error> open(
      const std::string& dir, const store_options& options);
  ~rocksdb_store() override;

  void start() override;
  void stop() override;

  [[nodiscard]] std::expected<void, error> put_config(kind k, std::string_view key,
                                                      std::string_view value) override;
  [[nodiscard]] std::expected<std::optional<std::string>, error> get_config(kind k,
                                                                            std::string_view key) override;
  [[nodiscard]] std::expected<void, error> delete_config(kind k, std::string_view key) override;
  [[nodiscard]] std::expected<std::vector<std::pair<std::string, std::string>>, error> list_configs(
      kind k) override;

  [[nodiscard]] std::expected<std::uint64_t, error> channel_id(std::string_view name) override;
  [[nodiscard]] std::expected<std::vector<std::pair<std::string, std::uint64_t>>, error> list_channels()
      override;
  [[nodiscard]] std::expected<std::vector<std::pair<std::string, std::uint64_t>>, error> list_channels_after(
      std::string_view after, std::size_t limit) override;
  [[nodiscard]] std::expected<std::uint64_t, error> epoch(std::uint64_t channel_id) override;
  [[nodiscard]] std::expected<void, error> append(std::vector<append_request>&& batch,
                                                  append_completion&& done) override;
  [[nodiscard]] std::expected<std::vector<stored_event>, error> read(std::uint64_t channel_id,
                                                                     std::uint64_t from_seq,
                                                                     std::size_t max_events,
                                                                     std::size_t max_bytes) override;
  [[nodiscard]] std::expected<std::uint64_t, error> first_seq(std::uint64_t channel_id) override;
  [[nodiscard]] std::expected<std::uint64_t, error> last_seq(std::uint64_t channel_id) override;
  [[nodiscard]] std::expected<std::uint64_t, error> trimmed_through(std::uint64_t channel_id) override;
  [[nodiscard]] std::expected<std::vector<keyed_event>, error> recent_keys(std::uint64_t channel_id,
                                                                           std::uint64_t since_ns,
                                                                           std::size_t max_keys) override;
  [[nodiscard]] std::expected<std::uint64_t, error> trim(std::uint64_t channel_id, const retention& r,
                                                         std::uint64_t now_ns) override;
  [[nodiscard]] std::expected<std::uint64_t, error> wipe(std::uint64_t channel_id) override;
  [[nodiscard]] health current_health() const override;
  [[nodiscard]] std::string commit_metrics() const override { return _commits.metrics(); }
  [[nodiscard]] const recovery_report& recovery() const override { return _recovery; }

 private:
  struct handles;  // the DB and its column families, closed in the right order

  rocksdb_store(std::unique_ptr<handles> db, const store_options& options);
  std::expected<void, error> write_group(const std::vector<detail::pending_append>& group);
  // Gives every channel with a stored epoch a new one and fills _recovery (recover open only).
  std::expected<void, error> finish_recovery(recovery_report report);
  // Reads every live SST file once and checks its checksums; stops between files on `stop`.
  void verify_files(const std::stop_token& stop);
  // The error for a failed RocksDB call; no space and corruption also update the health.
  error fail(const rocksdb::Status& s, std::string_view what) const;
  // The stored epoch, or nullopt. Requires _ids_mutex.
  std::expected<std::optional<std::uint64_t>, error> load_epoch(std::uint64_t channel_id);
  // Writes a fresh epoch different from `old_epoch` (with an optional DeleteRange of the log in
  // the same synced batch) and caches it. Requires _ids_mutex.
  std::expected<std::uint64_t, error> store_new_epoch(std::uint64_t channel_id, std::uint64_t old_epoch,
                                                      bool wipe_log);

  const std::unique_ptr<handles> _db;
  const bool _sync;

  // Caches (of kind::meta) hold at most this many channels each; beyond it they start over.
  static constexpr std::size_t max_cached_channels = 1 << 16;
  void remember_id(std::string_view name, std::uint64_t id);        // requires _ids_mutex
  void remember_epoch(std::uint64_t channel_id, std::uint64_t epoch);  // requires _ids_mutex
  std::mutex _ids_mutex;  // guards the three members below
  std::map<std::string, std::uint64_t, std::less<>> _channel_ids;
  std::unordered_map<std::uint64_t, std::uint64_t> _epochs;
  std::mt19937_64 _random;

  const bool _verify_on_start;
  recovery_report _recovery;  // set once by open(), read-only afterwards

  detail::group_commit _commits;  // its thread must stop before the DB closes

  std::mutex _lifecycle;     // guards the two members below
  bool _stopped = false;     // stop() ran: start() starts nothing any more
  std::jthread _verifier;    // stopped and joined by stop(), before the DB closes
};

}  // namespace switchboard::store
