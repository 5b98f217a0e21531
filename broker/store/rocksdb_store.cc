#include "broker/store/rocksdb_store.h"

#include "broker/store/checks.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <utility>

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_manager.h>
#include <rocksdb/sst_file_reader.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

namespace switchboard::store {
namespace {

constexpr std::array<const char*, kind_count> cf_names = {"channels", "subscriptions", "events",
                                                          "dead_letters", "meta", "media_index"};
constexpr std::string_view next_channel_id_key = "store.next_channel_id";
constexpr std::string_view channel_id_prefix = "store.channel_id.";
constexpr std::string_view epoch_prefix = "store.epoch.";
// Highest seq a trim removed: a log trimmed to empty still continues its numbering after a restart.
constexpr std::string_view high_water_prefix = "store.high_water.";
constexpr std::size_t event_header_bytes = 8 + 2;

errc code_of(const rocksdb::Status& s) {
  if (s.IsNoSpace()) return errc::full;  // IOError with subcode kNoSpace: test before IsIOError
  if (s.IsIOError()) return errc::io;
  if (s.IsCorruption()) return errc::corruption;
  if (s.IsInvalidArgument() || s.IsNotSupported()) return errc::invalid_argument;
  return errc::internal;
}

error to_error(const rocksdb::Status& s, std::string_view what) {
  const errc code = code_of(s);
  std::string message(what);
  message += code == errc::full ? ": the data disk is full: " : ": ";
  message += s.ToString();
  return error{code, std::move(message)};
}

// The store's health, written by store calls and RocksDB's listener threads, read by anyone.
class health_cell {
 public:
  [[nodiscard]] health get() const {
    std::lock_guard lock(_mutex);
    return _health;
  }
  // Corruption is sticky (only an operator clears it); full and failed replace each other.
  void set(health_state state, std::string reason) {
    std::lock_guard lock(_mutex);
    if (_health.state == health_state::corrupt || _health.state == state) return;
    _health = health{state, std::move(reason)};
    spdlog::error("store: {}: {}", health_name(_health.state), _health.reason);
  }
  // Writes work again: a full or failed store is ok (a corrupt one stays corrupt).
  void writes_work() {
    std::lock_guard lock(_mutex);
    if (_health.state != health_state::full && _health.state != health_state::failed) return;
    spdlog::warn("store: writes work again (was {}: {})", health_name(_health.state), _health.reason);
    _health = health{};
  }

 private:
  mutable std::mutex _mutex;  // guards _health
  health _health;
};

// RocksDB's info log, sent to spdlog (warnings and errors only) instead of a LOG file in the data
// dir: on a full disk RocksDB's own file logger hits an assertion after its first failed append.
// Also remembers the WAL files RocksDB reports dropping bytes from during recovery, which is the
// only place RocksDB names the damaged file. Thread-safe: RocksDB threads log concurrently.
class spdlog_logger final : public rocksdb::Logger {
 public:
  spdlog_logger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override { Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap); }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    std::array<char, 1024> buf{};
    const int n = std::vsnprintf(buf.data(), buf.size(), format, ap);
    if (n < 0) return;
    std::string_view line(buf.data(), std::min<std::size_t>(static_cast<std::size_t>(n), buf.size() - 1));
    if (line.starts_with('[')) {  // "[db/db_impl/db_impl_open.cc:982] " is noise for operators
      if (const auto end = line.find("] "); end != std::string_view::npos) line.remove_prefix(end + 2);
    }
    remember_damaged_wal(line);
    if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL) {
      spdlog::error("rocksdb: {}", line);
    } else {
      spdlog::warn("rocksdb: {}", line);
    }
  }
  [[nodiscard]] std::vector<std::string> damaged_wal_files() const {
    std::lock_guard lock(_mutex);
    return _damaged;
  }
  void forget_damaged_wal_files() {
    std::lock_guard lock(_mutex);
    _damaged.clear();
  }

 private:
  // "[(ignoring error) ]<path>.log: dropping N bytes; Corruption: …" (db_impl_open.cc LogReporter).
  void remember_damaged_wal(std::string_view line) {
    constexpr std::string_view ignoring = "(ignoring error) ";
    if (line.starts_with(ignoring)) line.remove_prefix(ignoring.size());
    const auto at = line.find(": dropping ");
    if (at == std::string_view::npos) return;
    const std::string_view file = line.substr(0, at);
    if (!file.ends_with(".log")) return;
    std::lock_guard lock(_mutex);
    if (std::find(_damaged.begin(), _damaged.end(), file) == _damaged.end()) _damaged.emplace_back(file);
  }

  mutable std::mutex _mutex;  // guards _damaged
  std::vector<std::string> _damaged;
};

// Keeps the health cell in step with RocksDB's background error handler. Called on RocksDB's
// threads, some with its DB mutex held: it only updates the cell.
class health_listener final : public rocksdb::EventListener {
 public:
  explicit health_listener(std::shared_ptr<health_cell> cell) : _cell(std::move(cell)) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* status) override {
    if (status == nullptr || status->ok()) return;
    if (status->IsNoSpace()) {
      // A compaction without space is a soft error (writes continue); a WAL write or a flush
      // without space stops writes until RocksDB's recovery finds space again.
      if (status->severity() >= rocksdb::Status::Severity::kHardError) {
        _cell->set(health_state::full, "the data disk is full: " + status->ToString());
      }
    } else if (status->IsCorruption()) {
      _cell->set(health_state::corrupt, status->ToString());
    } else if (status->severity() >= rocksdb::Status::Severity::kHardError) {
      _cell->set(health_state::failed, "writes stopped: " + status->ToString());
    }
  }
  void OnErrorRecoveryEnd(const rocksdb::BackgroundErrorRecoveryInfo& info) override {
    if (info.new_bg_error.ok()) _cell->writes_work();
  }

 private:
  std::shared_ptr<health_cell> _cell;
};

void put_be64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

std::uint64_t get_be64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string be64(std::uint64_t v) {
  std::string s;
  s.reserve(8);
  put_be64(s, v);
  return s;
}

std::string event_key(std::uint64_t channel_id, std::uint64_t seq) {
  std::string k;
  k.reserve(16);
  put_be64(k, channel_id);
  put_be64(k, seq);
  return k;
}

std::string epoch_key(std::uint64_t channel_id) { return std::string(epoch_prefix) + be64(channel_id); }
std::string high_water_key(std::uint64_t channel_id) { return std::string(high_water_prefix) + be64(channel_id); }

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }

// A decoded event value; views into the iterator's value, valid until it moves.
struct event_view {
  std::uint64_t time_ns = 0;
  std::string_view key;
  std::string_view payload;
};

std::expected<event_view, error> decode_event(rocksdb::Slice value) {
  if (value.size() < event_header_bytes) {
    return std::unexpected(error{errc::corruption, "event record shorter than its header"});
  }
  const std::uint64_t time_ns = get_be64(value.data());
  const std::size_t key_len = (static_cast<std::size_t>(static_cast<unsigned char>(value[8])) << 8) |
                              static_cast<unsigned char>(value[9]);
  if (value.size() < event_header_bytes + key_len) {
    return std::unexpected(error{errc::corruption, "event record shorter than its key length"});
  }
  const char* p = value.data() + event_header_bytes;
  return event_view{time_ns, {p, key_len}, {p + key_len, value.size() - event_header_bytes - key_len}};
}

void encode_event(std::string& out, const append_request& r) {
  out.clear();
  out.reserve(event_header_bytes + r.key.size() + r.payload.size());
  put_be64(out, r.time_ns);
  out.push_back(static_cast<char>(r.key.size() >> 8));
  out.push_back(static_cast<char>(r.key.size() & 0xff));
  out.append(r.key);
  out.append(r.payload);
}

}  // namespace

struct rocksdb_store::handles {
  std::unique_ptr<rocksdb::DB> db;
  std::array<rocksdb::ColumnFamilyHandle*, kind_count> cf{};
  rocksdb::ColumnFamilyHandle* default_cf = nullptr;
  rocksdb::Options options;  // what the DB was opened with (SstFileReader needs the same)
  std::shared_ptr<health_cell> health = std::make_shared<health_cell>();
  std::shared_ptr<spdlog_logger> logger = std::make_shared<spdlog_logger>();

  handles() = default;
  handles(const handles&) = delete;
  handles& operator=(const handles&) = delete;
  ~handles() {
    if (!db) return;
    for (auto* h : cf) {
      if (h != nullptr) (void)db->DestroyColumnFamilyHandle(h);
    }
    if (default_cf != nullptr) (void)db->DestroyColumnFamilyHandle(default_cf);
    (void)db->Close();
  }
  rocksdb::ColumnFamilyHandle* operator[](kind k) const { return cf[static_cast<std::size_t>(k)]; }
  rocksdb::Status open(const std::string& dir, bool read_only);
};

std::expected<std::unique_ptr<store>, error> store::open_rocksdb(const std::string& dir,
                                                                 const store_options& options) {
  auto s = rocksdb_store::open(dir, options);
  if (!s) return std::unexpected(std::move(s.error()));
  return std::unique_ptr<store>(std::move(*s));
}

// Opens the DB with `options`; on failure nothing is held.
rocksdb::Status rocksdb_store::handles::open(const std::string& dir, bool read_only) {
  rocksdb::ColumnFamilyOptions cf_options(options);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, cf_options);
  for (const char* name : cf_names) descriptors.emplace_back(name, cf_options);
  std::vector<rocksdb::ColumnFamilyHandle*> raw_handles;
  rocksdb::DB* raw_db = nullptr;
  const rocksdb::DBOptions db_options(options);
  const rocksdb::Status s =
      read_only ? rocksdb::DB::OpenForReadOnly(db_options, dir, descriptors, &raw_handles, &raw_db)
                : rocksdb::DB::Open(db_options, dir, descriptors, &raw_handles, &raw_db);
  if (!s.ok()) return s;
  db.reset(raw_db);
  default_cf = raw_handles[0];
  for (std::size_t i = 0; i < kind_count; ++i) cf[i] = raw_handles[i + 1];
  return s;
}

namespace {

// What a data dir holds, counted in one pass: per channel id the number of events and the highest
// seq, the name → id and id → epoch maps, and the highest channel id anything uses.
struct log_census {
  std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> events;  // id → (count, last seq)
  std::map<std::string, std::uint64_t> ids;                                 // name → id
  std::map<std::uint64_t, std::uint64_t> epochs;                            // id → epoch
  std::uint64_t max_id = 0;
  std::uint64_t next_id = 0;  // the stored next id, 0 when absent
};

std::expected<log_census, rocksdb::Status> take_census(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* events,
                                                       rocksdb::ColumnFamilyHandle* meta) {
  log_census c;
  {
    std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), events));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() != 16) continue;
      const std::uint64_t id = get_be64(it->key().data());
      auto& [count, last] = c.events[id];
      ++count;
      last = std::max(last, get_be64(it->key().data() + 8));
      c.max_id = std::max(c.max_id, id);
    }
    if (!it->status().ok()) return std::unexpected(it->status());
  }
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), meta));
  for (it->Seek(slice(reserved_meta_prefix)); it->Valid(); it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    if (!key.starts_with(reserved_meta_prefix)) break;
    if (it->value().size() != 8) continue;
    const std::uint64_t v = get_be64(it->value().data());
    if (key.starts_with(channel_id_prefix)) {
      c.ids.emplace(key.substr(channel_id_prefix.size()), v);
      c.max_id = std::max(c.max_id, v);
    } else if (key.starts_with(epoch_prefix) && key.size() == epoch_prefix.size() + 8) {
      c.epochs.emplace(get_be64(key.data() + epoch_prefix.size()), v);
    } else if (key == next_channel_id_key) {
      c.next_id = v;
    }
  }
  if (!it->status().ok()) return std::unexpected(it->status());
  return c;
}

std::string joined(const std::vector<std::string>& files) {
  std::string out;
  for (const auto& f : files) out += (out.empty() ? "" : ", ") + f;
  return out;
}

}  // namespace

// Options chosen for a write-heavy append log with small config families:
// - OptimizeLevelStyleCompaction(memtable budget): sized write buffers and level targets.
// - max_background_jobs (default 2): flush + compaction threads, kept off the router cores.
// - bytes_per_sync (default 1 MiB): incremental SST syncs, so flushes do not stall WAL fsyncs.
// - create_if_missing / create_missing_column_families: the first open creates every kind.
// - info_log to spdlog, an explicit SstFileManager and a listener: see the header (disk failures).
// - wal_recovery_mode kTolerateCorruptedTailRecords: a torn last record (crash mid-write) is
//   dropped, any other damage refuses the open instead of silently replaying up to it.
std::expected<std::unique_ptr<rocksdb_store>, error> rocksdb_store::open(const std::string& dir,
                                                                         const store_options& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return std::unexpected(error{errc::io, "open " + dir + ": " + ec.message()});

  auto h = std::make_unique<handles>();
  rocksdb::Options& db_options = h->options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = options.max_background_jobs;
  db_options.bytes_per_sync = options.bytes_per_sync;
  db_options.OptimizeLevelStyleCompaction(options.memtable_budget_bytes);
  db_options.info_log = h->logger;
  db_options.listeners.push_back(std::make_shared<health_listener>(h->health));
  db_options.sst_file_manager.reset(rocksdb::NewSstFileManager(rocksdb::Env::Default(), db_options.info_log));
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;

  rocksdb::Status s = h->open(dir, false);
  if (s.ok()) return std::unique_ptr<rocksdb_store>(new rocksdb_store(std::move(h), options));
  const auto damaged = h->logger->damaged_wal_files();
  if (!s.IsCorruption() || damaged.empty()) return std::unexpected(to_error(s, "open " + dir));
  if (options.on_damaged_wal == wal_recovery::refuse) {
    return std::unexpected(
        error{errc::corruption,
              "the write-ahead log " + joined(damaged) + " is damaged (" + s.ToString() +
                  "): replaying it only up to the damage would drop acknowledged events, so the store in " +
                  dir + " was not opened and nothing on disk was changed"});
  }

  // Recovery. First what the damaged log still holds when every readable record is replayed
  // (read-only: nothing is written), then the real open, then the difference per channel.
  recovery_report report;
  report.recovered = true;
  report.damaged_files = damaged;
  std::optional<log_census> before;
  {
    handles salvage;
    salvage.options = h->options;
    salvage.options.listeners.clear();
    salvage.options.sst_file_manager.reset();
    salvage.options.wal_recovery_mode = rocksdb::WALRecoveryMode::kSkipAnyCorruptedRecords;
    if (auto rs = salvage.open(dir, true); !rs.ok()) {
      spdlog::warn("store: cannot read the damaged log for the loss report: {}", rs.ToString());
    } else if (auto census = take_census(*salvage.db, salvage[kind::events], salvage[kind::meta]); census) {
      before = std::move(*census);
    }
  }
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  report.mode = "point_in_time";
  s = h->open(dir, false);
  if (s.IsCorruption()) {
    // Point in time is impossible when a column family was flushed past the damage; keep every
    // record that reads back instead.
    db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kSkipAnyCorruptedRecords;
    report.mode = "skip_corrupted_records";
    s = h->open(dir, false);
  }
  if (!s.ok()) return std::unexpected(to_error(s, "recover " + dir));
  auto after = take_census(*h->db, (*h)[kind::events], (*h)[kind::meta]);
  if (!after) return std::unexpected(to_error(after.error(), "recover " + dir));

  // Channel ids are never reused: the next id goes above every id still named or used by an event.
  if (after->next_id <= after->max_id) {
    rocksdb::WriteOptions w;
    w.sync = true;
    const auto ws = h->db->Put(w, (*h)[kind::meta], slice(next_channel_id_key), be64(after->max_id + 1));
    if (!ws.ok()) {
      return std::unexpected(to_error(ws, "recover " + dir));
    }
  }

  std::map<std::string, channel_recovery> by_name;
  const log_census empty;
  const log_census& b = before ? *before : empty;
  auto stats = [](const log_census& c, std::uint64_t id) {
    auto it = c.events.find(id);
    return it == c.events.end() ? std::pair<std::uint64_t, std::uint64_t>{0, 0} : it->second;
  };
  for (const auto& [name, id] : b.ids) {
    auto& r = by_name[name];
    r.name = name;
    r.channel_id = id;
    std::tie(std::ignore, r.last_seq_before) = stats(b, id);
  }
  for (const auto& [name, id] : after->ids) {
    auto& r = by_name[name];
    r.name = name;
    const auto before_id = r.channel_id;
    r.channel_id = id;
    const auto [count_after, last_after] = stats(*after, id);
    const auto [count_before, last_before] =
        before_id == id ? stats(b, id) : std::pair<std::uint64_t, std::uint64_t>{};
    r.last_seq_before = std::max(last_before, last_after);
    r.last_seq_after = last_after;
    r.lost_events = count_before > count_after ? count_before - count_after : 0;
    if (auto e = after->epochs.find(id); e != after->epochs.end()) r.old_epoch = e->second;
  }
  for (auto& [name, r] : by_name) {
    if (!after->ids.contains(name)) {  // the channel's id was lost with the log: so were its events
      const auto [count_before, last_before] = stats(b, r.channel_id);
      r.lost_events = count_before;
      r.last_seq_before = last_before;
      if (auto e = b.epochs.find(r.channel_id); e != b.epochs.end()) r.old_epoch = e->second;
      r.channel_id = 0;
    }
    report.channels.push_back(std::move(r));
  }

  auto st = std::unique_ptr<rocksdb_store>(new rocksdb_store(std::move(h), options));
  if (auto ok = st->finish_recovery(std::move(report)); !ok) return std::unexpected(std::move(ok.error()));
  return st;
}

std::expected<void, error> rocksdb_store::finish_recovery(recovery_report report) {
  std::lock_guard lock(_ids_mutex);
  for (auto& r : report.channels) {
    // Every channel that still has a history moves to a new epoch, not only those with a visible
    // loss: events inside the damaged bytes cannot be attributed to a channel, and a re-used
    // (epoch, seq) must be impossible.
    if (r.channel_id == 0) continue;
    if (r.old_epoch == 0 && r.last_seq_after == 0) continue;  // never had a log
    auto e = store_new_epoch(r.channel_id, r.old_epoch, false);
    if (!e) return std::unexpected(std::move(e.error()));
    r.new_epoch = *e;
  }
  _recovery = std::move(report);
  return {};
}

rocksdb_store::rocksdb_store(std::unique_ptr<handles> db, const store_options& options)
    : _db(std::move(db)),
      _sync(options.sync),
      _random(std::random_device{}()),
      _verify_on_start(options.verify_on_start),
      _commits(options.max_queued_events,
               [this](const std::vector<detail::pending_append>& group) { return write_group(group); }) {}

rocksdb_store::~rocksdb_store() { stop(); }

void rocksdb_store::start() {
  _commits.start();
  std::lock_guard lock(_lifecycle);
  if (_verify_on_start && !_verifier.joinable() && !_stopped) {
    _verifier = std::jthread([this](std::stop_token stop) { verify_files(stop); });
  }
}

void rocksdb_store::stop() {
  _commits.stop();
  std::jthread verifier;
  {
    std::lock_guard lock(_lifecycle);
    _stopped = true;
    verifier = std::move(_verifier);
  }
  if (verifier.joinable()) {
    verifier.request_stop();
    verifier.join();
  }
}

health rocksdb_store::current_health() const { return _db->health->get(); }

error rocksdb_store::fail(const rocksdb::Status& s, std::string_view what) const {
  error e = to_error(s, what);
  if (e.code == errc::full) {
    _db->health->set(health_state::full, e.message);
  } else if (e.code == errc::corruption) {
    _db->health->set(health_state::corrupt, e.message);
  }
  return e;
}

void rocksdb_store::verify_files(const std::stop_token& stop) {
  std::vector<rocksdb::LiveFileMetaData> files;
  _db->db->GetLiveFilesMetaData(&files);
  rocksdb::Options reader_options = _db->options;
  reader_options.info_log = std::make_shared<spdlog_logger>();  // its warnings are about the reader,
  reader_options.info_log->SetInfoLogLevel(rocksdb::InfoLogLevel::ERROR_LEVEL);  // not the data
  std::size_t checked = 0;
  for (const auto& f : files) {
    if (stop.stop_requested()) return;
    const std::string path = f.directory + "/" + f.relative_filename;
    rocksdb::SstFileReader reader(reader_options);
    auto s = reader.Open(path);
    if (s.ok()) s = reader.VerifyChecksum();
    if (s.ok()) {
      ++checked;
      continue;
    }
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) continue;  // compacted away meanwhile
    if (s.IsCorruption()) {
      _db->health->set(health_state::corrupt, "SST file " + path + " is damaged: " + s.ToString());
    } else {
      spdlog::warn("store: cannot check SST file {}: {}", path, s.ToString());
    }
  }
  spdlog::debug("store: checked the block checksums of {} SST file(s)", checked);
}

namespace {
rocksdb::WriteOptions synced() {
  rocksdb::WriteOptions w;
  w.sync = true;
  return w;
}
}  // namespace

std::expected<void, error> rocksdb_store::put_config(kind k, std::string_view key, std::string_view value) {
  if (auto ok = detail::check_config_key(k, key, true); !ok) return ok;
  const auto s = _db->db->Put(synced(), (*_db)[k], slice(key), slice(value));
  if (!s.ok()) return std::unexpected(fail(s, "put_config"));
  return {};
}

std::expected<std::optional<std::string>, error> rocksdb_store::get_config(kind k, std::string_view key) {
  if (auto ok = detail::check_config_key(k, key, false); !ok) return std::unexpected(ok.error());
  std::string value;
  const auto s = _db->db->Get(rocksdb::ReadOptions(), (*_db)[k], slice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return std::unexpected(fail(s, "get_config"));
  return std::optional<std::string>(std::move(value));
}

std::expected<void, error> rocksdb_store::delete_config(kind k, std::string_view key) {
  if (auto ok = detail::check_config_key(k, key, true); !ok) return ok;
  const auto s = _db->db->Delete(synced(), (*_db)[k], slice(key));
  if (!s.ok()) return std::unexpected(fail(s, "delete_config"));
  return {};
}

std::expected<std::vector<std::pair<std::string, std::string>>, error> rocksdb_store::list_configs(kind k) {
  if (auto ok = detail::check_config_key(k, {}, false); !ok) return std::unexpected(ok.error());
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(_db->db->NewIterator(rocksdb::ReadOptions(), (*_db)[k]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    if (!detail::is_reserved(k, key)) out.emplace_back(key, it->value().ToString());
  }
  if (!it->status().ok()) return std::unexpected(fail(it->status(), "list_configs"));
  return out;
}

std::expected<std::uint64_t, error> rocksdb_store::channel_id(std::string_view name) {
  std::lock_guard lock(_ids_mutex);
  if (auto it = _channel_ids.find(name); it != _channel_ids.end()) return it->second;
  const std::string name_key = std::string(channel_id_prefix) + std::string(name);

  auto* meta = (*_db)[kind::meta];
  std::string value;
  auto s = _db->db->Get(rocksdb::ReadOptions(), meta, name_key, &value);
  if (s.ok() && value.size() == 8) {
    const std::uint64_t id = get_be64(value.data());
    remember_id(name, id);
    return id;
  }
  if (!s.ok() && !s.IsNotFound()) return std::unexpected(fail(s, "channel_id"));
  if (s.ok()) return std::unexpected(error{errc::corruption, "channel_id: bad stored id"});

  std::uint64_t id = 1;
  s = _db->db->Get(rocksdb::ReadOptions(), meta, slice(next_channel_id_key), &value);
  if (s.ok() && value.size() == 8)
    id = get_be64(value.data());
  else if (!s.IsNotFound())
    return std::unexpected(fail(s, "channel_id: next id"));

  rocksdb::WriteBatch batch;
  batch.Put(meta, name_key, be64(id));
  batch.Put(meta, slice(next_channel_id_key), be64(id + 1));
  s = _db->db->Write(synced(), &batch);
  if (!s.ok()) return std::unexpected(fail(s, "channel_id"));
  remember_id(name, id);
  return id;
}

// The id and epoch maps are caches of the meta column family: bounded, so memory follows the
// channels in use rather than every channel ever used (the call engine makes one per call).
void rocksdb_store::remember_id(std::string_view name, std::uint64_t id) {
  if (_channel_ids.size() >= max_cached_channels) _channel_ids.clear();
  _channel_ids.emplace(name, id);
}

void rocksdb_store::remember_epoch(std::uint64_t channel_id, std::uint64_t epoch) {
  if (_epochs.size() >= max_cached_channels && !_epochs.contains(channel_id)) _epochs.clear();
  _epochs.insert_or_assign(channel_id, epoch);
}

std::expected<std::vector<std::pair<std::string, std::uint64_t>>, error> rocksdb_store::list_channels() {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  std::unique_ptr<rocksdb::Iterator> it(_db->db->NewIterator(rocksdb::ReadOptions(), (*_db)[kind::meta]));
  for (it->Seek(slice(channel_id_prefix)); it->Valid(); it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    if (!key.starts_with(channel_id_prefix)) break;
    if (it->value().size() != 8) return std::unexpected(error{errc::corruption, "list_channels: bad stored id"});
    out.emplace_back(key.substr(channel_id_prefix.size()), get_be64(it->value().data()));
  }
  if (!it->status().ok()) return std::unexpected(fail(it->status(), "list_channels"));
  return out;
}

std::expected<std::vector<std::pair<std::string, std::uint64_t>>, error> rocksdb_store::list_channels_after(
    std::string_view after, std::size_t limit) {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  std::unique_ptr<rocksdb::Iterator> it(_db->db->NewIterator(rocksdb::ReadOptions(), (*_db)[kind::meta]));
  const std::string start = std::string(channel_id_prefix) + std::string(after);
  for (it->Seek(start); it->Valid() && out.size() < limit; it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    if (!key.starts_with(channel_id_prefix)) break;
    const std::string_view name = key.substr(channel_id_prefix.size());
    if (!after.empty() && name == after) continue;
    if (it->value().size() != 8) return std::unexpected(error{errc::corruption, "list_channels: bad stored id"});
    out.emplace_back(name, get_be64(it->value().data()));
  }
  if (!it->status().ok()) return std::unexpected(fail(it->status(), "list_channels"));
  return out;
}

std::expected<std::optional<std::uint64_t>, error> rocksdb_store::load_epoch(std::uint64_t channel_id) {
  if (auto it = _epochs.find(channel_id); it != _epochs.end()) return it->second;
  std::string value;
  const auto s = _db->db->Get(rocksdb::ReadOptions(), (*_db)[kind::meta], epoch_key(channel_id), &value);
  if (s.IsNotFound()) return std::optional<std::uint64_t>();
  if (!s.ok()) return std::unexpected(fail(s, "epoch"));
  if (value.size() != 8) return std::unexpected(error{errc::corruption, "epoch: bad stored epoch"});
  const std::uint64_t e = get_be64(value.data());
  remember_epoch(channel_id, e);
  return e;
}

std::expected<std::uint64_t, error> rocksdb_store::store_new_epoch(std::uint64_t channel_id,
                                                                   std::uint64_t old_epoch, bool wipe_log) {
  std::uint64_t e = 0;
  while (e == 0 || e == old_epoch) e = _random();
  rocksdb::WriteBatch batch;
  if (wipe_log) {
    batch.DeleteRange((*_db)[kind::events], event_key(channel_id, 0), event_key(channel_id + 1, 0));
    batch.Delete((*_db)[kind::meta], high_water_key(channel_id));
  }
  batch.Put((*_db)[kind::meta], epoch_key(channel_id), be64(e));
  const auto s = _db->db->Write(synced(), &batch);
  if (!s.ok()) return std::unexpected(fail(s, wipe_log ? "wipe" : "epoch"));
  remember_epoch(channel_id, e);
  return e;
}

std::expected<std::uint64_t, error> rocksdb_store::epoch(std::uint64_t channel_id) {
  std::lock_guard lock(_ids_mutex);
  auto stored = load_epoch(channel_id);
  if (!stored) return std::unexpected(std::move(stored.error()));
  if (*stored) return **stored;
  return store_new_epoch(channel_id, 0, false);
}

std::expected<std::uint64_t, error> rocksdb_store::wipe(std::uint64_t channel_id) {
  std::lock_guard lock(_ids_mutex);
  auto stored = load_epoch(channel_id);
  if (!stored) return std::unexpected(std::move(stored.error()));
  return store_new_epoch(channel_id, stored->value_or(0), true);
}

std::expected<void, error> rocksdb_store::append(std::vector<append_request>&& batch,
                                                 append_completion&& done) {
  return _commits.submit(std::move(batch), std::move(done));
}

std::expected<void, error> rocksdb_store::write_group(const std::vector<detail::pending_append>& group) {
  rocksdb::WriteBatch batch;
  auto* events = (*_db)[kind::events];
  std::string value;
  for (const detail::pending_append& p : group) {
    for (const append_request& r : p.batch) {
      encode_event(value, r);
      const auto s = batch.Put(events, event_key(r.channel_id, r.seq), value);
      if (!s.ok()) return std::unexpected(fail(s, "append"));
    }
  }
  rocksdb::WriteOptions w;
  w.sync = _sync;
  const auto s = _db->db->Write(w, &batch);
  if (!s.ok()) return std::unexpected(fail(s, "append"));
  _db->health->writes_work();
  return {};
}

std::expected<std::vector<stored_event>, error> rocksdb_store::read(std::uint64_t channel_id,
                                                                    std::uint64_t from_seq,
                                                                    std::size_t max_events,
                                                                    std::size_t max_bytes) {
  std::vector<stored_event> out;
  if (max_events == 0) return out;
  const std::string upper = event_key(channel_id + 1, 0);
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(_db->db->NewIterator(ro, (*_db)[kind::events]));
  std::size_t bytes = 0;
  for (it->Seek(event_key(channel_id, from_seq)); it->Valid() && out.size() < max_events; it->Next()) {
    auto ev = decode_event(it->value());
    if (!ev) return std::unexpected(std::move(ev.error()));
    const std::size_t size = ev->key.size() + ev->payload.size();
    if (!out.empty() && bytes + size > max_bytes) break;
    bytes += size;
    out.push_back(stored_event{get_be64(it->key().data() + 8), ev->time_ns, std::string(ev->key),
                               std::string(ev->payload)});
  }
  if (!it->status().ok()) return std::unexpected(fail(it->status(), "read"));
  return out;
}

namespace {
// An iterator over exactly one channel's events.
struct channel_iterator {
  std::string lower;
  std::string upper;
  rocksdb::Slice lower_slice;
  rocksdb::Slice upper_slice;
  std::unique_ptr<rocksdb::Iterator> it;

  channel_iterator(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf, std::uint64_t channel_id)
      : lower(event_key(channel_id, 0)),
        upper(event_key(channel_id + 1, 0)),
        lower_slice(lower),
        upper_slice(upper) {
    rocksdb::ReadOptions ro;
    ro.iterate_lower_bound = &lower_slice;
    ro.iterate_upper_bound = &upper_slice;
    it.reset(db.NewIterator(ro, cf));
  }
  [[nodiscard]] std::uint64_t seq() const { return get_be64(it->key().data() + 8); }
};
}  // namespace

std::expected<std::uint64_t, error> rocksdb_store::first_seq(std::uint64_t channel_id) {
  channel_iterator c(*_db->db, (*_db)[kind::events], channel_id);
  c.it->SeekToFirst();
  if (!c.it->status().ok()) return std::unexpected(fail(c.it->status(), "first_seq"));
  return c.it->Valid() ? c.seq() : 0;
}

std::expected<std::uint64_t, error> rocksdb_store::last_seq(std::uint64_t channel_id) {
  channel_iterator c(*_db->db, (*_db)[kind::events], channel_id);
  c.it->SeekToLast();
  if (!c.it->status().ok()) return std::unexpected(fail(c.it->status(), "last_seq"));
  if (c.it->Valid()) return c.seq();  // trim removes a prefix: a stored event is above the mark
  return trimmed_through(channel_id);
}

std::expected<std::vector<store::keyed_event>, error> rocksdb_store::recent_keys(std::uint64_t channel_id,
                                                                                  std::uint64_t since_ns,
                                                                                  std::size_t max_keys) {
  std::vector<keyed_event> out;
  channel_iterator c(*_db->db, (*_db)[kind::events], channel_id);
  for (c.it->SeekToLast(); c.it->Valid() && out.size() < max_keys; c.it->Prev()) {
    auto ev = decode_event(c.it->value());
    if (!ev) return std::unexpected(std::move(ev.error()));
    if (ev->time_ns < since_ns) break;
    if (!ev->key.empty()) out.push_back(keyed_event{c.seq(), ev->time_ns, std::string(ev->key)});
  }
  if (!c.it->status().ok()) return std::unexpected(fail(c.it->status(), "recent_keys"));
  std::ranges::reverse(out);
  return out;
}

std::expected<std::uint64_t, error> rocksdb_store::trimmed_through(std::uint64_t channel_id) {
  std::string value;
  const auto s = _db->db->Get(rocksdb::ReadOptions(), (*_db)[kind::meta], high_water_key(channel_id), &value);
  if (s.IsNotFound()) return 0;
  if (!s.ok()) return std::unexpected(fail(s, "trimmed_through"));
  if (value.size() != 8) return std::unexpected(error{errc::corruption, "trimmed_through: bad stored seq"});
  return get_be64(value.data());
}

std::expected<std::uint64_t, error> rocksdb_store::trim(std::uint64_t channel_id, const retention& r,
                                                        std::uint64_t now_ns) {
  // One snapshot-consistent iterator: events appended meanwhile have higher seqs and are kept.
  channel_iterator c(*_db->db, (*_db)[kind::events], channel_id);
  auto& it = *c.it;
  it.SeekToFirst();
  if (!it.Valid()) {
    if (!it.status().ok()) return std::unexpected(fail(it.status(), "trim"));
    return 0;
  }
  const std::uint64_t first = c.seq();
  std::uint64_t cut = first;  // the first seq kept; [first, cut) is removed

  if (r.max_age_ns != 0) {
    for (; it.Valid(); it.Next()) {
      auto ev = decode_event(it.value());
      if (!ev) return std::unexpected(std::move(ev.error()));
      if (now_ns <= r.max_age_ns || ev->time_ns >= now_ns - r.max_age_ns) break;
      cut = c.seq() + 1;
    }
  }
  if (r.max_events != 0 || r.max_bytes != 0) {
    std::uint64_t kept = 0;
    std::uint64_t bytes = 0;
    for (it.SeekToLast(); it.Valid() && c.seq() >= cut; it.Prev()) {
      auto ev = decode_event(it.value());
      if (!ev) return std::unexpected(std::move(ev.error()));
      const std::uint64_t size = ev->key.size() + ev->payload.size();
      if ((r.max_events != 0 && kept + 1 > r.max_events) ||
          (r.max_bytes != 0 && bytes + size > r.max_bytes)) {
        cut = c.seq() + 1;
        break;
      }
      ++kept;
      bytes += size;
    }
  }
  if (!it.status().ok()) return std::unexpected(fail(it.status(), "trim"));
  if (cut == first) return 0;

  std::uint64_t removed = 0;
  for (it.SeekToFirst(); it.Valid() && c.seq() < cut; it.Next()) ++removed;
  if (!it.status().ok()) return std::unexpected(fail(it.status(), "trim"));

  rocksdb::WriteBatch batch;
  batch.DeleteRange((*_db)[kind::events], event_key(channel_id, 0), event_key(channel_id, cut));
  // In the same synced batch: the numbering survives a trim to empty and a restart.
  batch.Put((*_db)[kind::meta], high_water_key(channel_id), be64(cut - 1));
  const auto s = _db->db->Write(synced(), &batch);
  if (!s.ok()) return std::unexpected(fail(s, "trim"));
  return removed;
}

}  // namespace switchboard::store
