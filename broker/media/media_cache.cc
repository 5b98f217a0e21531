#include "broker/media/media_cache.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "broker/media/media_id.h"

namespace switchboard::media {
namespace {

constexpr std::string_view file_suffix = ".wav";
constexpr std::string_view tmp_suffix = ".tmp";

error io_error(std::string_view what, const std::filesystem::path& path, int code) {
  return {errc::io, std::string(what) + " " + path.string() + ": " + std::strerror(code)};
}

std::expected<void, error> write_file(const std::filesystem::path& path, std::string_view data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return std::unexpected(io_error("cannot create", path, errno));
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int code = errno;
      ::close(fd);
      return std::unexpected(io_error("cannot write", path, code));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  if (::close(fd) != 0) return std::unexpected(io_error("cannot write", path, errno));
  return {};
}

}  // namespace

media_cache::media_cache(std::filesystem::path dir, std::uint64_t max_bytes, std::unique_ptr<media_index> index)
    : _dir(std::move(dir)), _max_bytes(max_bytes), _index(std::move(index)) {}

std::expected<std::unique_ptr<media_cache>, error> media_cache::open(const std::filesystem::path& dir,
                                                                     std::uint64_t max_bytes,
                                                                     std::unique_ptr<media_index> index) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return std::unexpected(error{errc::io, "cannot create " + dir.string() + ": " + ec.message()});
  std::unique_ptr<media_cache> cache(new media_cache(dir, max_bytes, std::move(index)));
  if (auto ok = cache->reconcile(); !ok) return std::unexpected(std::move(ok.error()));
  std::lock_guard lock(cache->_mutex);
  if (auto evicted = cache->evict(""); !evicted) return std::unexpected(std::move(evicted.error()));
  return cache;
}

std::expected<void, error> media_cache::reconcile() {
  auto listed = _index->list();
  if (!listed) return std::unexpected(std::move(listed.error()));
  std::vector<media_entry> valid;
  for (media_entry& e : *listed) {
    std::error_code ec;
    const bool ok = is_media_id(e.id) && std::filesystem::file_size(path(e.id), ec) == e.bytes && !ec;
    if (ok) {
      valid.push_back(std::move(e));
    } else if (auto erased = _index->erase(e.id); !erased) {
      return std::unexpected(std::move(erased.error()));
    }
  }
  std::ranges::sort(valid, [](const media_entry& a, const media_entry& b) { return a.last_access_ms > b.last_access_ms; });
  std::lock_guard lock(_mutex);
  for (media_entry& e : valid) {
    _lru.push_back(e.id);
    _bytes += e.bytes;
    std::string id = e.id;
    const std::int64_t access = e.last_access_ms;
    _slots.emplace(std::move(id), slot{std::move(e), std::prev(_lru.end()), access});
  }

  std::error_code ec;
  for (const auto& file : std::filesystem::directory_iterator(_dir, ec)) {
    const std::string name = file.path().filename().string();
    const bool tmp = name.ends_with(tmp_suffix);
    const bool orphan = name.ends_with(file_suffix) &&
                        !_slots.contains(name.substr(0, name.size() - file_suffix.size()));
    std::error_code ignored;  // an orphan that cannot be removed is retried on the next open
    if (tmp || orphan) std::filesystem::remove(file.path(), ignored);
  }
  if (ec) return std::unexpected(error{errc::io, "cannot list " + _dir.string() + ": " + ec.message()});
  return {};
}

std::optional<media_entry> media_cache::find(std::string_view id, std::int64_t now_ms, bool persist_access) {
  std::lock_guard lock(_mutex);
  const auto it = _slots.find(std::string(id));
  if (it == _slots.end()) return std::nullopt;
  slot& s = it->second;
  s.entry.last_access_ms = now_ms;
  _lru.splice(_lru.begin(), _lru, s.lru);
  // Persisting the access time only keeps the LRU order across restarts; a failure is not the caller's.
  if (persist_access && now_ms - s.persisted_access_ms >= access_persist_interval_ms) {
    if (_index->put(s.entry)) s.persisted_access_ms = now_ms;
  }
  return s.entry;
}

std::expected<std::vector<media_entry>, error> media_cache::insert(media_entry entry, std::string_view wav) {
  entry.bytes = wav.size();
  const std::filesystem::path final_path = path(entry.id);
  std::uint64_t serial = 0;
  {
    std::lock_guard lock(_mutex);
    serial = _next_tmp++;
  }
  const std::filesystem::path tmp = _dir / fmt::format("{}{}.{}{}", entry.id, file_suffix, serial, tmp_suffix);
  // Written without the lock: a large file must not stall find() (the HTTP io thread serves with it).
  if (auto written = write_file(tmp, wav); !written) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    return std::unexpected(std::move(written.error()));
  }

  std::lock_guard lock(_mutex);
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    const int code = errno;
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    return std::unexpected(io_error("cannot rename into", final_path, code));
  }
  if (auto put = _index->put(entry); !put) {
    (void)remove_locked(entry.id);
    std::error_code ec;
    std::filesystem::remove(final_path, ec);
    return std::unexpected(std::move(put.error()));
  }
  if (const auto it = _slots.find(entry.id); it != _slots.end()) {
    _bytes -= it->second.entry.bytes;
    _lru.splice(_lru.begin(), _lru, it->second.lru);
    it->second.entry = entry;
    it->second.persisted_access_ms = entry.last_access_ms;
  } else {
    _lru.push_front(entry.id);
    _slots.emplace(entry.id, slot{entry, _lru.begin(), entry.last_access_ms});
  }
  _bytes += entry.bytes;
  return evict(entry.id);
}

std::expected<bool, error> media_cache::update(const media_entry& entry) {
  std::lock_guard lock(_mutex);
  const auto it = _slots.find(entry.id);
  if (it == _slots.end()) return false;
  media_entry updated = entry;
  updated.bytes = it->second.entry.bytes;
  if (auto put = _index->put(updated); !put) return std::unexpected(std::move(put.error()));
  it->second.persisted_access_ms = updated.last_access_ms;
  it->second.entry = std::move(updated);
  return true;
}

std::expected<std::optional<media_entry>, error> media_cache::erase(std::string_view id) {
  std::lock_guard lock(_mutex);
  std::optional<media_entry> removed;
  if (const auto it = _slots.find(std::string(id)); it != _slots.end()) removed = it->second.entry;
  if (auto ok = remove_locked(id); !ok) return std::unexpected(std::move(ok.error()));
  return removed;
}

std::expected<void, error> media_cache::remove_locked(std::string_view id) {
  if (const auto it = _slots.find(std::string(id)); it != _slots.end()) {
    _bytes -= it->second.entry.bytes;
    _lru.erase(it->second.lru);
    _slots.erase(it);
  }
  std::error_code ec;
  std::filesystem::remove(path(id), ec);
  if (ec) return std::unexpected(error{errc::io, "cannot remove " + path(id).string() + ": " + ec.message()});
  return _index->erase(id);
}

std::expected<std::vector<media_entry>, error> media_cache::evict(std::string_view keep) {
  std::vector<media_entry> evicted;
  while (_bytes > _max_bytes) {
    const auto victim = std::find_if(_lru.rbegin(), _lru.rend(), [keep](const std::string& id) { return id != keep; });
    if (victim == _lru.rend()) break;
    media_entry e = _slots.at(*victim).entry;
    if (auto removed = remove_locked(e.id); !removed) return std::unexpected(std::move(removed.error()));
    evicted.push_back(std::move(e));
  }
  return evicted;
}

std::filesystem::path media_cache::path(std::string_view id) const {
  return _dir / (std::string(id) + std::string(file_suffix));
}

std::uint64_t media_cache::bytes() const {
  std::lock_guard lock(_mutex);
  return _bytes;
}

std::size_t media_cache::entries() const {
  std::lock_guard lock(_mutex);
  return _slots.size();
}

}  // namespace switchboard::media
