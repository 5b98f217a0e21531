#include "broker/media/store_media_index.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>

#include <utility>
#include <vector>

#include "broker/store/store.h"

namespace switchboard::media {
namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write_string(json_writer& w, std::string_view key, std::string_view value) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

error store_error(std::string_view what, const store::error& e) {
  return {errc::io, "media index " + std::string(what) + ": " + e.message};
}

// Operation: see the header. Concurrency: stateless beyond the store reference.
class store_media_index final : public media_index {
 public:
  explicit store_media_index(store::store& st) : _store(st) {}

  std::expected<void, error> put(const media_entry& entry) override {
    if (auto r = _store.put_config(store::kind::media_index, entry.id, entry_to_json(entry)); !r) {
      return std::unexpected(store_error("put", r.error()));
    }
    return {};
  }

  std::expected<std::optional<media_entry>, error> get(std::string_view id) override {
    auto r = _store.get_config(store::kind::media_index, id);
    if (!r) return std::unexpected(store_error("get", r.error()));
    if (!*r) return std::optional<media_entry>();
    auto e = entry_from_json(**r);
    if (e && e->id != id) return std::optional<media_entry>();
    return e;
  }

  std::expected<void, error> erase(std::string_view id) override {
    if (auto r = _store.delete_config(store::kind::media_index, id); !r) {
      return std::unexpected(store_error("erase", r.error()));
    }
    return {};
  }

  std::expected<std::vector<media_entry>, error> list() override {
    auto all = _store.list_configs(store::kind::media_index);
    if (!all) return std::unexpected(store_error("list", all.error()));
    std::vector<media_entry> out;
    out.reserve(all->size());
    for (const auto& [key, value] : *all) {
      if (auto e = entry_from_json(value); e && e->id == key) out.push_back(std::move(*e));
    }
    return out;
  }

 private:
  store::store& _store;
};

}  // namespace

std::unique_ptr<media_index> open_store_media_index(store::store& st) {
  return std::make_unique<store_media_index>(st);
}

std::string entry_to_json(const media_entry& e) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
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
  return {buffer.GetString(), buffer.GetSize()};
}

std::optional<media_entry> entry_from_json(std::string_view json) {
  thread_local simdjson::ondemand::parser parser;
  const simdjson::padded_string padded(json);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS) return std::nullopt;
  simdjson::ondemand::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) return std::nullopt;
  media_entry e;
  std::string_view id, fmt, source, etag, last_modified;
  bool no_store = false;
  // Every field is required; find_field_unordered tolerates any order.
  if (obj.find_field_unordered("id").get_string().get(id) != simdjson::SUCCESS) return std::nullopt;
  e.id = std::string(id);
  if (obj.find_field_unordered("format").get_string().get(fmt) != simdjson::SUCCESS) return std::nullopt;
  const auto parsed_fmt = parse_format(fmt);
  if (!parsed_fmt) return std::nullopt;
  e.fmt = *parsed_fmt;
  if (obj.find_field_unordered("bytes").get_uint64().get(e.bytes) != simdjson::SUCCESS) return std::nullopt;
  if (obj.find_field_unordered("duration_ms").get_uint64().get(e.duration_ms) != simdjson::SUCCESS)
    return std::nullopt;
  if (obj.find_field_unordered("source").get_string().get(source) != simdjson::SUCCESS) return std::nullopt;
  e.source = std::string(source);
  if (obj.find_field_unordered("etag").get_string().get(etag) != simdjson::SUCCESS) return std::nullopt;
  e.etag = std::string(etag);
  if (obj.find_field_unordered("last_modified").get_string().get(last_modified) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  e.last_modified = std::string(last_modified);
  if (obj.find_field_unordered("fetched_at_ms").get_int64().get(e.fetched_at_ms) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  if (obj.find_field_unordered("max_age_s").get_int64().get(e.max_age_s) != simdjson::SUCCESS)
    return std::nullopt;
  if (obj.find_field_unordered("no_store").get_bool().get(no_store) != simdjson::SUCCESS) return std::nullopt;
  e.no_store = no_store;
  if (obj.find_field_unordered("last_access_ms").get_int64().get(e.last_access_ms) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  return e;
}

}  // namespace switchboard::media
