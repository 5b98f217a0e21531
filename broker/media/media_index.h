// The index of the media cache: one entry per cached file, keyed by media id.
//
// DESIGN.md puts this index in the store's RocksDB (`media_index` column family). RocksDB may only be
// included under broker/store/, so the media layer depends on this small interface instead; today it
// is implemented by `open_file_media_index()` (a JSON-lines file beside the cached files). Moving it
// into the store means implementing `media_index` over store::put_config/get_config/list_configs with
// a new store kind; nothing else in media/ changes.
#pragma once

#include <cstdint>
#include <expected>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/media/error.h"
#include "broker/media/format.h"

namespace switchboard::media {

struct media_entry {
  std::string id;
  format fmt = format::ulaw_8k;
  std::uint64_t bytes = 0;         // size of the cached WAV file
  std::uint64_t duration_ms = 0;
  std::string source;              // canonical URL (signatures removed), or the spoken text
  std::string etag;                // validators of the origin's last 200/304, empty when it sent none
  std::string last_modified;
  std::int64_t fetched_at_ms = 0;  // Unix ms when the origin last confirmed this content (200 or 304)
  std::int64_t max_age_s = -1;     // Cache-Control max-age of that answer; -1 when it sent none
  bool no_store = false;           // Cache-Control no-store/no-cache: revalidate on every request
  std::int64_t last_access_ms = 0; // Unix ms of the latest resolve()/open() that used it (LRU order)

  friend bool operator==(const media_entry&, const media_entry&) = default;
};

// Operation: a durable map id → media_entry. put() replaces an existing entry.
// Concurrency: implementations are thread-safe (each call is atomic with respect to the others).
class media_index {
 public:
  virtual ~media_index() = default;
  media_index() = default;
  media_index(const media_index&) = delete;
  media_index& operator=(const media_index&) = delete;

  [[nodiscard]] virtual std::expected<void, error> put(const media_entry& entry) = 0;
  // The entry, or an empty optional when there is none.
  [[nodiscard]] virtual std::expected<std::optional<media_entry>, error> get(std::string_view id) = 0;
  // Erasing an absent id succeeds.
  [[nodiscard]] virtual std::expected<void, error> erase(std::string_view id) = 0;
  // Every entry, in no particular order.
  [[nodiscard]] virtual std::expected<std::vector<media_entry>, error> list() = 0;
};

// A media_index in the file `path`: one JSON object per line, {"op":"put",…entry…} or
// {"op":"erase","id":…}, appended with one write(2) each and replayed on open. An unparsable line
// (a write torn by a crash) is skipped, so at worst that entry is forgotten and its file is treated as
// an orphan. When the file holds more than twice as many lines as live entries (plus 64), it is
// rewritten compactly to `path`.tmp and renamed over `path`. Writes are not fsynced: this is a cache,
// and the cache drops entries whose file is missing on open.
// Fails with errc::io when the file cannot be opened, created or read.
[[nodiscard]] std::expected<std::unique_ptr<media_index>, error> open_file_media_index(
    const std::filesystem::path& path);

}  // namespace switchboard::media
