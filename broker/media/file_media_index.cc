// media_index over a JSON-lines file (rapidjson Writer / Document), see media_index.h.
#include <fcntl.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>

#include "broker/media/media_index.h"

namespace switchboard::media {
namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write_string(json_writer& w, std::string_view key, std::string_view value) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

std::string put_line(const media_entry& e) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  write_string(w, "op", "put");
  write_string(w, "id", e.id);
  write_string(w, "format", format_name(e.fmt));
  w.Key("bytes");
  w.Uint64(e.bytes);
  w.Key("duration_ms");
  w.Uint64(e.duration_ms);
  write_string(w, "source", e.source);
  write_string(w, "etag", e.etag);
  write_string(w, "last_modified", e.last_modified);
  w.Key("fetched_at_ms");
  w.Int64(e.fetched_at_ms);
  w.Key("max_age_s");
  w.Int64(e.max_age_s);
  w.Key("no_store");
  w.Bool(e.no_store);
  w.Key("last_access_ms");
  w.Int64(e.last_access_ms);
  w.EndObject();
  std::string line(buffer.GetString(), buffer.GetSize());
  line += '\n';
  return line;
}

std::string erase_line(std::string_view id) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  write_string(w, "op", "erase");
  write_string(w, "id", id);
  w.EndObject();
  std::string line(buffer.GetString(), buffer.GetSize());
  line += '\n';
  return line;
}

std::optional<std::string> string_member(const rapidjson::Value& v, const char* name) {
  const auto it = v.FindMember(name);
  if (it == v.MemberEnd() || !it->value.IsString()) return std::nullopt;
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

template <typename T>
bool number_member(const rapidjson::Value& v, const char* name, T& out) {
  const auto it = v.FindMember(name);
  if (it == v.MemberEnd()) return false;
  if constexpr (std::is_unsigned_v<T>) {
    if (!it->value.IsUint64()) return false;
    out = it->value.GetUint64();
  } else {
    if (!it->value.IsInt64()) return false;
    out = it->value.GetInt64();
  }
  return true;
}

std::optional<media_entry> parse_entry(const rapidjson::Value& v) {
  media_entry e;
  auto id = string_member(v, "id");
  auto fmt_name = string_member(v, "format");
  auto source = string_member(v, "source");
  auto etag = string_member(v, "etag");
  auto last_modified = string_member(v, "last_modified");
  if (!id || !fmt_name || !source || !etag || !last_modified) return std::nullopt;
  const auto fmt = parse_format(*fmt_name);
  const auto no_store = v.FindMember("no_store");
  if (!fmt || no_store == v.MemberEnd() || !no_store->value.IsBool()) return std::nullopt;
  if (!number_member(v, "bytes", e.bytes) || !number_member(v, "duration_ms", e.duration_ms) ||
      !number_member(v, "fetched_at_ms", e.fetched_at_ms) || !number_member(v, "max_age_s", e.max_age_s) ||
      !number_member(v, "last_access_ms", e.last_access_ms)) {
    return std::nullopt;
  }
  e.id = std::move(*id);
  e.fmt = *fmt;
  e.source = std::move(*source);
  e.etag = std::move(*etag);
  e.last_modified = std::move(*last_modified);
  e.no_store = no_store->value.GetBool();
  return e;
}

error io_error(std::string_view what, const std::filesystem::path& path) {
  return {errc::io, std::string(what) + " " + path.string() + ": " + std::strerror(errno)};
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Operation: see open_file_media_index(). Concurrency: every member takes _mutex.
class file_media_index final : public media_index {
 public:
  explicit file_media_index(std::filesystem::path path) : _path(std::move(path)) {}
  ~file_media_index() override {
    if (_fd >= 0) ::close(_fd);
  }

  std::expected<void, error> load() {
    std::ifstream in(_path);
    if (in) {
      std::string line;
      while (std::getline(in, line)) {
        ++_lines;
        rapidjson::Document doc;
        doc.Parse(line.data(), line.size());
        if (doc.HasParseError() || !doc.IsObject()) continue;
        const auto op = string_member(doc, "op");
        if (op == "put") {
          if (auto e = parse_entry(doc)) _entries[e->id] = std::move(*e);
        } else if (op == "erase") {
          if (auto id = string_member(doc, "id")) _entries.erase(*id);
        }
      }
      if (in.bad()) return std::unexpected(io_error("cannot read", _path));
    }
    _fd = ::open(_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (_fd < 0) return std::unexpected(io_error("cannot open", _path));
    return {};
  }

  std::expected<void, error> put(const media_entry& entry) override {
    std::lock_guard lock(_mutex);
    _entries[entry.id] = entry;
    return append(put_line(entry));
  }

  std::expected<std::optional<media_entry>, error> get(std::string_view id) override {
    std::lock_guard lock(_mutex);
    const auto it = _entries.find(id);
    if (it == _entries.end()) return std::optional<media_entry>();
    return std::optional<media_entry>(it->second);
  }

  std::expected<void, error> erase(std::string_view id) override {
    std::lock_guard lock(_mutex);
    if (_entries.erase(std::string(id)) == 0) return {};
    return append(erase_line(id));
  }

  std::expected<std::vector<media_entry>, error> list() override {
    std::lock_guard lock(_mutex);
    std::vector<media_entry> out;
    out.reserve(_entries.size());
    for (const auto& [id, e] : _entries) out.push_back(e);
    return out;
  }

 private:
  // Called with _mutex held.
  std::expected<void, error> append(const std::string& line) {
    if (!write_all(_fd, line)) return std::unexpected(io_error("cannot write", _path));
    ++_lines;
    if (_lines > 2 * _entries.size() + 64) return compact();
    return {};
  }

  // Called with _mutex held.
  std::expected<void, error> compact() {
    std::filesystem::path tmp = _path;
    tmp += ".tmp";
    std::string all;
    for (const auto& [id, e] : _entries) all += put_line(e);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return std::unexpected(io_error("cannot create", tmp));
    const bool ok = write_all(fd, all) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), _path.c_str()) != 0) return std::unexpected(io_error("cannot rewrite", _path));
    const int fresh = ::open(_path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fresh < 0) return std::unexpected(io_error("cannot reopen", _path));
    ::close(_fd);
    _fd = fresh;
    _lines = _entries.size();
    return {};
  }

  const std::filesystem::path _path;
  std::mutex _mutex;  // protects the members below
  std::map<std::string, media_entry, std::less<>> _entries;
  std::size_t _lines = 0;  // lines in the file, live or superseded
  int _fd = -1;
};

}  // namespace

std::expected<std::unique_ptr<media_index>, error> open_file_media_index(const std::filesystem::path& path) {
  auto index = std::make_unique<file_media_index>(path);
  if (auto loaded = index->load(); !loaded) return std::unexpected(std::move(loaded.error()));
  return index;
}

}  // namespace switchboard::media
