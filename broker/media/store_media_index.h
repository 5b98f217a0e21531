// The media cache's index in the broker's store: one record per cached file in the store's
// `media_index` kind (a RocksDB column family of that name; the in-memory store for --memory and
// tests), keyed by media id, the value a JSON object (rapidjson Writer, parsed with simdjson).
//
// Operation: put/erase are store config writes (synced before they return, like every config write),
// so an entry the cache reported survives a crash once resolve() has answered. A value that no longer
// parses (written by a future version, or damaged) is skipped by list() and get(): the cache then
// treats its file as an orphan and deletes it, which costs a refetch, never a wrong answer.
//
// Concurrency: thread-safe (the store is). Lifecycle: `st` must outlive the index.
#pragma once

#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "broker/media/error.h"
#include "broker/media/media_index.h"

namespace switchboard::store {
class store;
}

namespace switchboard::media {

// A media_index over `st` (see the file comment). Never fails to open: reads happen on use.
[[nodiscard]] std::unique_ptr<media_index> open_store_media_index(store::store& st);

// The stored form of an entry, and back (empty when `json` is not a complete entry). Exposed for tests.
[[nodiscard]] std::string entry_to_json(const media_entry& e);
[[nodiscard]] std::optional<media_entry> entry_from_json(std::string_view json);

}  // namespace switchboard::media
