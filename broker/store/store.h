// The broker's persistent state behind one small interface: configuration blobs (channels,
// durable subscriptions, dead letters, store metadata) and the per-channel event log of durable
// channels. The router, admin API and sinks talk to `store`; only broker/store/ knows RocksDB.
//
// Two implementations: `store::open_rocksdb()` (RocksDB, one column family per kind, group commit
// with one WAL fsync per group) and `store::open_memory()` (std::map, for `--memory` and tests).
// Both behave the same, including the thread appends complete on and the overload bound.
//
// Positions: every channel's history has an epoch (a random non-zero 64-bit id chosen when the
// history starts: a new data dir or a wiped channel) beside its per-channel seq, which the caller
// assigns (seq >= 1, increasing). A cluster engine can later supply its own positions; the store
// only records them.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::store {

enum class errc : std::uint8_t {
  invalid_argument,  // the request is malformed (wrong kind, seq 0, key too long, reserved key)
  overloaded,        // the append queue is full; retry later (nothing was queued)
  stopped,           // append before start() or after stop()
  full,              // the data disk is full (ENOSPC); writes resume by themselves when space returns
  io,                // the disk or filesystem failed otherwise (RocksDB IOError)
  corruption,        // the data on disk is damaged
  internal,          // anything else the backend reported
};

struct error {
  errc code = errc::internal;
  std::string message;  // readable, one line
};

// A readable name for `code` ("overloaded", "full", "io", …), stable for logs and tests.
[[nodiscard]] std::string_view errc_name(errc code) noexcept;

// Whether the store can do its job right now, for readiness probes and metrics.
//   ok       reads and writes work
//   full     the data disk is full: writes fail with errc::full, reads work; back to ok by itself
//            once space returns (RocksDB's background error recovery), nothing acknowledged is lost
//   corrupt  data on disk is damaged (an SST failed its checksums, a read met a bad block): reads
//            of the damaged range fail with errc::corruption; needs an operator
//   failed   writes stopped on another disk error (RocksDB read-only after a hard I/O error)
enum class health_state : std::uint8_t { ok, full, corrupt, failed };

struct health {
  health_state state = health_state::ok;
  std::string reason;  // empty when ok; else one readable line naming the file or the error
};

// "ok", "full", "corrupt", "failed": stable for /readyz, metrics and tests.
[[nodiscard]] std::string_view health_name(health_state state) noexcept;

// What the RocksDB store does when it opens a data dir whose write-ahead log is damaged in the
// middle (not just a torn last record, which a crash can leave and which is always tolerated).
enum class wal_recovery : std::uint8_t {
  // Refuse to open: open_rocksdb() fails with errc::corruption and a message naming the WAL file.
  // Nothing is changed on disk, so nothing acknowledged is thrown away without an operator.
  refuse,
  // Open anyway, keeping everything before the damage (RocksDB point-in-time recovery; when that
  // cannot give a consistent state, every record that still reads back), report per channel what
  // the log lost, and give every channel a new epoch so that no (epoch, seq) is bound to two events.
  recover,
};

// What a `wal_recovery::recover` open found and did, per channel that has a history.
struct channel_recovery {
  std::string name;
  std::uint64_t channel_id = 0;
  std::uint64_t old_epoch = 0;
  std::uint64_t new_epoch = 0;
  // Highest seq readable anywhere in the damaged log (salvage view) and after recovery; events in
  // (last_seq_after, last_seq_before] and any seq counted in lost_events are gone.
  std::uint64_t last_seq_before = 0;
  std::uint64_t last_seq_after = 0;
  std::uint64_t lost_events = 0;  // events readable in the salvage view but not after recovery
};

struct recovery_report {
  bool recovered = false;                  // false: the log was intact (or not asked to recover)
  std::vector<std::string> damaged_files;  // the WAL files RocksDB reported dropping bytes from
  std::string mode;                        // "point_in_time" or "skip_corrupted_records"
  std::vector<channel_recovery> channels;  // every channel with an epoch, by name
};

// What is stored. Each kind is one RocksDB column family named like the enumerator.
enum class kind : std::uint8_t {
  channels,       // key: channel name or pattern; value: config attributes (JSON)
  subscriptions,  // key: durable subscription name; value: pattern, filter, ack policy, cursor
  events,         // the event log (only through append/read/trim/wipe, never *_config)
  dead_letters,   // key: chosen by the dead-letter writer; value: the dead letter
  meta,           // broker metadata; keys starting with `reserved_meta_prefix` belong to the store
  media_index,    // key: media id; value: the media cache's entry (JSON, broker/media/store_media_index.h)
};
inline constexpr std::size_t kind_count = 6;

// Keys in kind::meta the store keeps for itself (channel ids, epochs, next channel id).
// put_config/delete_config refuse them; list_configs(kind::meta) leaves them out.
inline constexpr std::string_view reserved_meta_prefix = "store.";

// Longest idempotency key an event may carry (it is stored with a 16-bit length).
inline constexpr std::size_t max_event_key_bytes = 0xffff;

// One event to append. The caller assigns `seq` (>= 1, increasing per channel); appending a seq
// that is already stored replaces that event.
struct append_request {
  std::uint64_t channel_id = 0;
  std::uint64_t seq = 0;
  std::uint64_t time_ns = 0;  // publish time, ns since the Unix epoch (used by age retention)
  std::string key;            // idempotency key, may be empty
  std::string payload;
};

struct stored_event {
  std::uint64_t seq = 0;
  std::uint64_t time_ns = 0;
  std::string key;
  std::string payload;

  friend bool operator==(const stored_event&, const stored_event&) = default;
};

// Retention of one channel's log; 0 means "no limit" for each field. Bytes are the sum of
// key and payload sizes of the retained events.
struct retention {
  std::uint64_t max_age_ns = 0;
  std::uint64_t max_events = 0;
  std::uint64_t max_bytes = 0;
};

// Called once per append() batch, on the store thread, when the whole batch is durable (success)
// or has failed (error; then none or only some of it may be stored). Must not throw and should
// return quickly: the next group commit waits for it.
using append_completion = std::move_only_function<void(std::expected<void, error>)>;

// Every default with its trade-off.
struct store_options {
  // Upper bound on events waiting for the store thread (not counting the group being written).
  // append() fails with errc::overloaded instead of blocking when a batch does not fit, except
  // that a batch is always accepted into an empty queue. 65536 events of 128 bytes ≈ 12 MiB.
  std::size_t max_queued_events = 65536;
  // fsync the WAL once per group commit before completions run. false: a process crash loses
  // nothing, a machine crash or power loss can lose the last groups. Config writes, trim() and
  // wipe() are always synced. (RocksDB only.)
  bool sync = true;
  // RocksDB memtable budget for OptimizeLevelStyleCompaction(): larger absorbs bursts and writes
  // fewer, bigger L0 files at the cost of memory and recovery time. (RocksDB only.)
  std::size_t memtable_budget_bytes = 64u << 20;
  // RocksDB flush + compaction threads. 2 keeps compaction off the router's cores. (RocksDB only.)
  int max_background_jobs = 2;
  // Let RocksDB sync SST files incrementally every this many bytes, so a flush does not end in
  // one long fsync that stalls the WAL fsync of a group commit. 0 disables. (RocksDB only.)
  std::uint64_t bytes_per_sync = 1u << 20;
  // A write-ahead log damaged in the middle: refuse to open (default) or recover (--recover).
  // (RocksDB only.)
  wal_recovery on_damaged_wal = wal_recovery::refuse;
  // After start(), read every SST file once on a background thread and check its block checksums,
  // so a damaged file shows up in health() (and the log) at start, not at the first read that hits
  // it. Costs one sequential read of the data dir; stop() interrupts it between files. (RocksDB only.)
  bool verify_on_start = true;
};

// Operation: configuration blobs by (kind, key) with synchronous, synced writes; a per-channel
// event log keyed by (channel id, seq) written through an asynchronous group-commit append and
// read back by seq range; channel-name → id and channel-id → epoch maps created on first use.
//
// Concurrency: every member function may be called from any thread concurrently, except that
// start() and stop() must not race with destruction. append() only queues; one store thread
// writes each group and runs its completions. For one channel, the caller (the shard that owns it)
// must not run wipe() concurrently with append() or trim() on that channel.
//
// Limitations: seqs are assigned by the caller and not checked for gaps or order across batches.
// trim() reads the events it removes plus, for count/byte limits, the events it keeps (newest
// first), so it belongs on a background thread. Channel ids are never reused or deleted.
class store {
 public:
  virtual ~store() = default;
  store() = default;
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  // Opens the RocksDB database in `dir` with all column families, creating `dir` (and its parents)
  // and the database if missing.
  // Fails with errc::io / errc::corruption / errc::invalid_argument as RocksDB reports.
  // The store is not started: configs and reads work, append() needs start().
  [[nodiscard]] static std::expected<std::unique_ptr<store>, error> open_rocksdb(
      const std::string& dir, const store_options& options = {});
  // An empty in-memory store; the RocksDB-only options are ignored. Never fails today.
  [[nodiscard]] static std::expected<std::unique_ptr<store>, error> open_memory(
      const store_options& options = {});

  // Starts the store thread (and, RocksDB with verify_on_start, the checksum check of every SST
  // file). Idempotent; after stop() it does nothing.
  virtual void start() = 0;
  // Refuses new appends (errc::stopped), writes everything already queued, runs its completions,
  // then joins the store thread. Idempotent; also called by the destructor. Blocks for at most one
  // queue's worth of writes. Configs and reads keep working until destruction.
  virtual void stop() = 0;

  // --- configuration blobs (kinds channels, subscriptions, dead_letters, meta) ---
  // Each write is durable (WAL fsync) before it returns. errc::invalid_argument for kind::events
  // or a reserved meta key.
  [[nodiscard]] virtual std::expected<void, error> put_config(kind k, std::string_view key,
                                                              std::string_view value) = 0;
  // The value, or an empty optional when the key is absent.
  [[nodiscard]] virtual std::expected<std::optional<std::string>, error> get_config(kind k,
                                                                                    std::string_view key) = 0;
  // Deleting an absent key succeeds.
  [[nodiscard]] virtual std::expected<void, error> delete_config(kind k, std::string_view key) = 0;
  // Every (key, value) of the kind in key order (bytewise).
  [[nodiscard]] virtual std::expected<std::vector<std::pair<std::string, std::string>>, error> list_configs(
      kind k) = 0;

  // --- the event log ---
  // The id of channel `name`, allocating and persisting the next id (from 1) on first use.
  [[nodiscard]] virtual std::expected<std::uint64_t, error> channel_id(std::string_view name) = 0;
  // Every channel that has an id (allocated by channel_id(), now or in an earlier run of this
  // data dir) as (name, id), in name order (bytewise). Channel ids are never deleted, so a channel
  // whose log is empty or wiped is still listed.
  [[nodiscard]] virtual std::expected<std::vector<std::pair<std::string, std::uint64_t>>, error>
  list_channels() = 0;
  // One page of list_channels(): at most `limit` channels whose names sort after `after` (bytewise;
  // "" = from the start), so a background walk over millions of channels holds one page at a time.
  [[nodiscard]] virtual std::expected<std::vector<std::pair<std::string, std::uint64_t>>, error>
  list_channels_after(std::string_view after, std::size_t limit) = 0;
  // The epoch of the channel's history, creating and persisting a random non-zero one on first use.
  [[nodiscard]] virtual std::expected<std::uint64_t, error> epoch(std::uint64_t channel_id) = 0;

  // Queues `batch` for the next group commit and returns at once. On success the batch and
  // `done` are consumed and `done` runs exactly once, on the store thread. On failure nothing is
  // consumed (both are left intact so the caller can retry) and `done` never runs:
  // errc::overloaded (queue full), errc::stopped (not started or stopping), errc::invalid_argument
  // (seq 0, channel id 0, or key longer than max_event_key_bytes).
  [[nodiscard]] virtual std::expected<void, error> append(std::vector<append_request>&& batch,
                                                          append_completion&& done) = 0;

  // Events with seq >= from_seq in seq order: at most max_events, and stopping before the event
  // that would take the key+payload total past max_bytes (but always at least one event when any
  // exists, so a reader makes progress). Only durable (completed) appends are guaranteed visible.
  [[nodiscard]] virtual std::expected<std::vector<stored_event>, error> read(std::uint64_t channel_id,
                                                                             std::uint64_t from_seq,
                                                                             std::size_t max_events,
                                                                             std::size_t max_bytes) = 0;
  // first_seq(): lowest stored seq, 0 when the log is empty. last_seq(): the channel's high-water
  // seq within its epoch: the highest stored seq or, when trim() emptied the log, the highest seq it
  // removed (persisted with the trim), 0 for a log that never held an event or was wiped. It is
  // where a restarted broker continues numbering, so an (epoch, seq) is never bound to two events.
  [[nodiscard]] virtual std::expected<std::uint64_t, error> first_seq(std::uint64_t channel_id) = 0;
  [[nodiscard]] virtual std::expected<std::uint64_t, error> last_seq(std::uint64_t channel_id) = 0;
  // The highest seq trim() has removed from the channel's log in this epoch (0 = none). Seqs at or
  // below it that a reader did not see were taken by retention (a `gap`); a missing seq above it
  // never held an event (its append failed), which is not a gap.
  [[nodiscard]] virtual std::expected<std::uint64_t, error> trimmed_through(std::uint64_t channel_id) = 0;
  // The idempotency keys of the channel's newest events published at or after `since_ns`, at most
  // `max_keys` (the newest), in seq order, as (seq, time_ns, key); events without a key are
  // skipped. Reads the log backwards from its end: what a restarted broker needs to rebuild a
  // channel's dedupe window.
  struct keyed_event {
    std::uint64_t seq = 0;
    std::uint64_t time_ns = 0;
    std::string key;
  };
  [[nodiscard]] virtual std::expected<std::vector<keyed_event>, error> recent_keys(std::uint64_t channel_id,
                                                                                   std::uint64_t since_ns,
                                                                                   std::size_t max_keys) = 0;

  // Removes the oldest events that break `r` at time `now_ns` (an event is too old when
  // time_ns + max_age_ns < now_ns) and returns how many it removed. Removal is a prefix of the
  // log: everything below the first event that is kept. Durable before it returns.
  [[nodiscard]] virtual std::expected<std::uint64_t, error> trim(std::uint64_t channel_id, const retention& r,
                                                                 std::uint64_t now_ns) = 0;
  // Deletes the channel's whole log and starts a new history: returns the new epoch (different
  // from the old one). Durable before it returns.
  [[nodiscard]] virtual std::expected<std::uint64_t, error> wipe(std::uint64_t channel_id) = 0;

  // --- health ---
  // The store's current health (see health_state). Cheap (a mutex and a string copy); any thread.
  [[nodiscard]] virtual health current_health() const = 0;
  // Prometheus histograms of the group commits (events per group, seconds per durable write).
  [[nodiscard]] virtual std::string commit_metrics() const = 0;
  // What opening with wal_recovery::recover found; `recovered` is false when nothing was lost or
  // recovery was not asked for. Fixed after open.
  [[nodiscard]] virtual const recovery_report& recovery() const = 0;
};

}  // namespace switchboard::store
