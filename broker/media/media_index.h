// The index of the media cache: one entry per cached file, keyed by media id.
//
// The broker keeps it in the store (DESIGN.md: RocksDB column family `media_index`), through
// `open_store_media_index()` (store_media_index.h); RocksDB itself stays under broker/store/.
#pragma once

#include <cstdint>
#include <expected>
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

}  // namespace switchboard::media
