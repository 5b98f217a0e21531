#include "broker/store/rocksdb_store.h"

#include "broker/store/checks.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

namespace switchboard::store {
namespace {

constexpr std::array<const char*, kind_count> cf_names = {"channels", "subscriptions", "events",
                                                          "dead_letters", "meta"};
constexpr std::string_view next_channel_id_key = "store.next_channel_id";
constexpr std::string_view channel_id_prefix = "store.channel_id.";
constexpr std::string_view epoch_prefix = "store.epoch.";
constexpr std::size_t event_header_bytes = 8 + 2;

error to_error(const rocksdb::Status& s, std::string_view what) {
  errc code = errc::internal;
  if (s.IsIOError() || s.IsNoSpace())
    code = errc::io;
  else if (s.IsCorruption())
    code = errc::corruption;
  else if (s.IsInvalidArgument() || s.IsNotSupported())
    code = errc::invalid_argument;
  return error{code, std::string(what) + ": " + s.ToString()};
}

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
};

std::expected<std::unique_ptr<store>, error> store::open_rocksdb(const std::string& dir,
                                                                 const store_options& options) {
  auto s = rocksdb_store::open(dir, options);
  if (!s) return std::unexpected(std::move(s.error()));
  return std::unique_ptr<store>(std::move(*s));
}

// Options chosen for a write-heavy append log with small config families:
// - OptimizeLevelStyleCompaction(memtable budget): sized write buffers and level targets.
// - max_background_jobs (default 2): flush + compaction threads, kept off the router cores.
// - bytes_per_sync (default 1 MiB): incremental SST syncs, so flushes do not stall WAL fsyncs.
// - create_if_missing / create_missing_column_families: the first open creates every kind.
std::expected<std::unique_ptr<rocksdb_store>, error> rocksdb_store::open(const std::string& dir,
                                                                         const store_options& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return std::unexpected(error{errc::io, "open " + dir + ": " + ec.message()});

  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = options.max_background_jobs;
  db_options.bytes_per_sync = options.bytes_per_sync;
  db_options.OptimizeLevelStyleCompaction(options.memtable_budget_bytes);

  rocksdb::ColumnFamilyOptions cf_options(db_options);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, cf_options);
  for (const char* name : cf_names) descriptors.emplace_back(name, cf_options);

  std::vector<rocksdb::ColumnFamilyHandle*> raw_handles;
  rocksdb::DB* raw_db = nullptr;
  const rocksdb::Status s =
      rocksdb::DB::Open(rocksdb::DBOptions(db_options), dir, descriptors, &raw_handles, &raw_db);
  if (!s.ok()) return std::unexpected(to_error(s, "open " + dir));

  auto h = std::make_unique<handles>();
  h->db.reset(raw_db);
  h->default_cf = raw_handles[0];
  for (std::size_t i = 0; i < kind_count; ++i) h->cf[i] = raw_handles[i + 1];
  return std::unique_ptr<rocksdb_store>(new rocksdb_store(std::move(h), options));
}

rocksdb_store::rocksdb_store(std::unique_ptr<handles> db, const store_options& options)
    : _db(std::move(db)),
      _sync(options.sync),
      _random(std::random_device{}()),
      _commits(options.max_queued_events,
               [this](const std::vector<detail::pending_append>& group) { return write_group(group); }) {}

rocksdb_store::~rocksdb_store() { stop(); }

void rocksdb_store::start() { _commits.start(); }
void rocksdb_store::stop() { _commits.stop(); }

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
  if (!s.ok()) return std::unexpected(to_error(s, "put_config"));
  return {};
}

std::expected<std::optional<std::string>, error> rocksdb_store::get_config(kind k, std::string_view key) {
  if (auto ok = detail::check_config_key(k, key, false); !ok) return std::unexpected(ok.error());
  std::string value;
  const auto s = _db->db->Get(rocksdb::ReadOptions(), (*_db)[k], slice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return std::unexpected(to_error(s, "get_config"));
  return std::optional<std::string>(std::move(value));
}

std::expected<void, error> rocksdb_store::delete_config(kind k, std::string_view key) {
  if (auto ok = detail::check_config_key(k, key, true); !ok) return ok;
  const auto s = _db->db->Delete(synced(), (*_db)[k], slice(key));
  if (!s.ok()) return std::unexpected(to_error(s, "delete_config"));
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
  if (!it->status().ok()) return std::unexpected(to_error(it->status(), "list_configs"));
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
    _channel_ids.emplace(name, id);
    return id;
  }
  if (!s.ok() && !s.IsNotFound()) return std::unexpected(to_error(s, "channel_id"));
  if (s.ok()) return std::unexpected(error{errc::corruption, "channel_id: bad stored id"});

  std::uint64_t id = 1;
  s = _db->db->Get(rocksdb::ReadOptions(), meta, slice(next_channel_id_key), &value);
  if (s.ok() && value.size() == 8)
    id = get_be64(value.data());
  else if (!s.IsNotFound())
    return std::unexpected(to_error(s, "channel_id: next id"));

  rocksdb::WriteBatch batch;
  batch.Put(meta, name_key, be64(id));
  batch.Put(meta, slice(next_channel_id_key), be64(id + 1));
  s = _db->db->Write(synced(), &batch);
  if (!s.ok()) return std::unexpected(to_error(s, "channel_id"));
  _channel_ids.emplace(name, id);
  return id;
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
  if (!it->status().ok()) return std::unexpected(to_error(it->status(), "list_channels"));
  return out;
}

std::expected<std::optional<std::uint64_t>, error> rocksdb_store::load_epoch(std::uint64_t channel_id) {
  if (auto it = _epochs.find(channel_id); it != _epochs.end()) return it->second;
  std::string value;
  const auto s = _db->db->Get(rocksdb::ReadOptions(), (*_db)[kind::meta], epoch_key(channel_id), &value);
  if (s.IsNotFound()) return std::optional<std::uint64_t>();
  if (!s.ok()) return std::unexpected(to_error(s, "epoch"));
  if (value.size() != 8) return std::unexpected(error{errc::corruption, "epoch: bad stored epoch"});
  const std::uint64_t e = get_be64(value.data());
  _epochs.emplace(channel_id, e);
  return e;
}

std::expected<std::uint64_t, error> rocksdb_store::store_new_epoch(std::uint64_t channel_id,
                                                                   std::uint64_t old_epoch, bool wipe_log) {
  std::uint64_t e = 0;
  while (e == 0 || e == old_epoch) e = _random();
  rocksdb::WriteBatch batch;
  if (wipe_log) {
    batch.DeleteRange((*_db)[kind::events], event_key(channel_id, 0), event_key(channel_id + 1, 0));
  }
  batch.Put((*_db)[kind::meta], epoch_key(channel_id), be64(e));
  const auto s = _db->db->Write(synced(), &batch);
  if (!s.ok()) return std::unexpected(to_error(s, wipe_log ? "wipe" : "epoch"));
  _epochs.insert_or_assign(channel_id, e);
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
      if (!s.ok()) return std::unexpected(to_error(s, "append"));
    }
  }
  rocksdb::WriteOptions w;
  w.sync = _sync;
  const auto s = _db->db->Write(w, &batch);
  if (!s.ok()) return std::unexpected(to_error(s, "append"));
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
  if (!it->status().ok()) return std::unexpected(to_error(it->status(), "read"));
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
  if (!c.it->status().ok()) return std::unexpected(to_error(c.it->status(), "first_seq"));
  return c.it->Valid() ? c.seq() : 0;
}

std::expected<std::uint64_t, error> rocksdb_store::last_seq(std::uint64_t channel_id) {
  channel_iterator c(*_db->db, (*_db)[kind::events], channel_id);
  c.it->SeekToLast();
  if (!c.it->status().ok()) return std::unexpected(to_error(c.it->status(), "last_seq"));
  return c.it->Valid() ? c.seq() : 0;
}

std::expected<std::uint64_t, error> rocksdb_store::trim(std::uint64_t channel_id, const retention& r,
                                                        std::uint64_t now_ns) {
  // One snapshot-consistent iterator: events appended meanwhile have higher seqs and are kept.
  channel_iterator c(*_db->db, (*_db)[kind::events], channel_id);
  auto& it = *c.it;
  it.SeekToFirst();
  if (!it.Valid()) {
    if (!it.status().ok()) return std::unexpected(to_error(it.status(), "trim"));
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
  if (!it.status().ok()) return std::unexpected(to_error(it.status(), "trim"));
  if (cut == first) return 0;

  std::uint64_t removed = 0;
  for (it.SeekToFirst(); it.Valid() && c.seq() < cut; it.Next()) ++removed;
  if (!it.status().ok()) return std::unexpected(to_error(it.status(), "trim"));

  rocksdb::WriteBatch batch;
  batch.DeleteRange((*_db)[kind::events], event_key(channel_id, 0), event_key(channel_id, cut));
  const auto s = _db->db->Write(synced(), &batch);
  if (!s.ok()) return std::unexpected(to_error(s, "trim"));
  return removed;
}

}  // namespace switchboard::store
