#include "broker/media/media_service.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <utility>

#include "broker/media/speech.h"

namespace switchboard::media {
namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool starts_with_icase(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() &&
         std::ranges::equal(s.substr(0, prefix.size()), prefix,
                            [](char a, char b) { return ascii_lower(a) == ascii_lower(b); });
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// What the origin said about caching in one response.
struct cache_policy {
  bool present = false;  // a Cache-Control header was sent
  std::int64_t max_age_s = -1;
  bool no_store = false;  // no-store or no-cache: ask the origin again on every resolve
};

cache_policy parse_cache_control(const http_client::header_list& headers) {
  cache_policy p;
  const auto value = headers.find("Cache-Control");
  if (!value) return p;
  p.present = true;
  std::string_view rest = *value;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    std::string directive(trim(rest.substr(0, comma)));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    std::ranges::transform(directive, directive.begin(), ascii_lower);
    if (directive == "no-store" || directive == "no-cache") {
      p.no_store = true;
    } else if (directive.starts_with("max-age=")) {
      std::int64_t seconds = 0;
      const char* first = directive.data() + 8;
      const char* last = directive.data() + directive.size();
      if (first != last && *first == '"') ++first;  // max-age="60" is tolerated
      if (last != first && *(last - 1) == '"') --last;
      if (std::from_chars(first, last, seconds).ec == std::errc() && seconds >= 0) p.max_age_s = seconds;
    }
  }
  return p;
}

void write_string(json_writer& w, std::string_view key, std::string_view value) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

std::string entry_json(const media_entry& e, bool with_duration, std::string_view reason = {}) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  write_string(w, "id", e.id);
  write_string(w, "format", format_name(e.fmt));
  write_string(w, "source", e.source);
  w.Key("bytes");
  w.Uint64(e.bytes);
  if (with_duration) {
    w.Key("duration_ms");
    w.Uint64(e.duration_ms);
  }
  if (!reason.empty()) write_string(w, "reason", reason);
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

media_info info_of(const media_entry& e, bool cached) {
  return media_info{e.id, "/media/" + e.id, e.duration_ms, e.fmt, e.bytes, cached};
}

}  // namespace

std::expected<std::unique_ptr<media_service>, error> media_service::create(media_options options,
                                                                           http_client::client& http,
                                                                           std::unique_ptr<media_index> index) {
  if (options.data_dir.empty()) return std::unexpected(error{errc::invalid_request, "media: data_dir is required"});
  auto cache = media_cache::open(options.data_dir / "media", options.cache_bytes, std::move(index));
  if (!cache) return std::unexpected(std::move(cache.error()));
  return std::unique_ptr<media_service>(new media_service(std::move(options), http, std::move(*cache)));
}

media_service::media_service(media_options options, http_client::client& http, std::unique_ptr<media_cache> cache)
    : _options(std::move(options)), _http(http), _cache(std::move(cache)) {}

bool media_service::fresh(const media_entry& e, std::int64_t now_ms) const {
  if (e.id.starts_with("t-")) return true;  // speech depends only on its id's parameters
  if (e.no_store) return false;
  const std::int64_t max_age_s = e.max_age_s >= 0 ? e.max_age_s : _options.default_max_age.count();
  return now_ms < e.fetched_at_ms + max_age_s * 1000;
}

std::int64_t media_service::fresh_for_s(const media_entry& e) const {
  if (e.id.starts_with("t-")) return -1;
  if (e.no_store) return 0;
  const std::int64_t max_age_s = e.max_age_s >= 0 ? e.max_age_s : _options.default_max_age.count();
  const std::int64_t left_ms = e.fetched_at_ms + max_age_s * 1000 - unix_ms();
  return left_ms > 0 ? left_ms / 1000 : 0;
}

std::expected<media_info, error> media_service::resolve(const media_request& request) {
  const bool has_url = !request.url.empty();
  if (has_url == !request.text.empty()) {
    return fail("", "", {errc::invalid_request, "invalid request: give exactly one of url and text"});
  }
  if (has_url && !starts_with_icase(request.url, "http://") && !starts_with_icase(request.url, "https://")) {
    return fail("", request.url, {errc::invalid_request, "invalid request: url must start with http:// or https://"});
  }
  if (!has_url && request.text.size() > _options.max_text_bytes) {
    return fail("", "", {errc::invalid_request,
                         fmt::format("invalid request: text longer than {} bytes", _options.max_text_bytes)});
  }
  const std::string id = has_url ? url_media_id(request.url, request.fmt, _options.volatile_query_params)
                                 : speech_media_id(request.text, request.voice, request.rate, request.fmt);
  const std::int64_t now = unix_ms();
  if (auto hit = _cache->find(id, now); hit && fresh(*hit, now)) {
    _counters.hits.fetch_add(1, std::memory_order_relaxed);
    return info_of(*hit, true);
  }

  std::promise<result> promise;
  std::shared_future<result> flight;
  bool leader = false;
  {
    std::lock_guard lock(_flights_mutex);
    if (const auto it = _flights.find(id); it != _flights.end()) {
      flight = it->second;
    } else {
      flight = promise.get_future().share();
      _flights.emplace(id, flight);
      leader = true;
    }
  }
  if (!leader) {
    _counters.shared.fetch_add(1, std::memory_order_relaxed);
    return flight.get();
  }
  const auto land = [&] {
    std::lock_guard lock(_flights_mutex);
    _flights.erase(id);
  };
  try {
    result r = produce(request, id);
    promise.set_value(r);
    land();
    return r;
  } catch (...) {
    promise.set_exception(std::current_exception());
    land();
    throw;
  }
}

media_service::result media_service::produce(const media_request& request, const std::string& id) {
  // Another leader may have finished between our cache check and taking the flight.
  const std::int64_t now = unix_ms();
  if (auto hit = _cache->find(id, now); hit && fresh(*hit, now)) {
    _counters.hits.fetch_add(1, std::memory_order_relaxed);
    return info_of(*hit, true);
  }
  _counters.misses.fetch_add(1, std::memory_order_relaxed);
  return request.url.empty() ? produce_speech(request, id) : produce_url(request, id, true);
}

media_service::result media_service::produce_url(const media_request& request, const std::string& id,
                                                  bool conditional) {
  const std::string source = canonical_url(request.url, _options.volatile_query_params);
  std::optional<media_entry> stale;
  if (conditional) stale = _cache->find(id, unix_ms());

  http_client::request req;
  req.url = request.url;
  req.connect_timeout = _options.connect_timeout;
  req.total_timeout = _options.fetch_timeout;
  req.max_redirects = _options.max_redirects;
  req.max_response_bytes = _options.max_bytes;
  if (stale && !stale->etag.empty()) req.headers.add("If-None-Match", stale->etag);
  if (stale && !stale->last_modified.empty()) req.headers.add("If-Modified-Since", stale->last_modified);

  _counters.fetches.fetch_add(1, std::memory_order_relaxed);
  auto fetched = _http.fetch(std::move(req));
  const std::int64_t now = unix_ms();
  if (!fetched) {
    const http_client::error& e = fetched.error();
    switch (e.code) {
      case http_client::errc::timeout:
        return fail(id, source,
                    {errc::timeout, fmt::format("timeout: {} did not answer within {} ms (connect) / {} ms (total)",
                                                source, _options.connect_timeout.count(),
                                                _options.fetch_timeout.count())});
      case http_client::errc::too_large:
        return fail(id, source,
                    {errc::too_large, fmt::format("too large: {} is larger than {} bytes", source, _options.max_bytes)});
      default:
        return fail(id, source, {errc::fetch_failed, fmt::format("fetch failed: {}: {}: {}", source,
                                                                 http_client::errc_name(e.code), e.message)});
    }
  }
  const http_client::response& resp = *fetched;
  const cache_policy policy = parse_cache_control(resp.headers);

  if (resp.status == 304 && stale) {
    media_entry entry = *stale;
    entry.fetched_at_ms = now;
    if (policy.present) {
      entry.max_age_s = policy.max_age_s;
      entry.no_store = policy.no_store;
    }
    if (auto etag = resp.headers.find("ETag")) entry.etag = *etag;
    if (auto modified = resp.headers.find("Last-Modified")) entry.last_modified = *modified;
    auto updated = _cache->update(entry);
    if (!updated) return fail(id, source, std::move(updated.error()));
    if (!*updated) return produce_url(request, id, false);  // evicted since: fetch it whole
    _counters.revalidated.fetch_add(1, std::memory_order_relaxed);
    return info_of(entry, true);
  }
  if (resp.status == 404 || resp.status == 410) {
    if (stale) (void)_cache->erase(id);  // the origin says it is gone; an io error here only leaks a file
    return fail(id, source, {errc::not_found, fmt::format("not found: {} returned {}", source, resp.status)});
  }
  if (resp.status < 200 || resp.status > 299) {
    return fail(id, source, {errc::fetch_failed, fmt::format("fetch failed: {} returned {}", source, resp.status)});
  }

  auto converted = convert(resp.body, request.fmt, _options.conversion);
  if (!converted) return fail(id, source, std::move(converted.error()));
  _counters.conversions.fetch_add(1, std::memory_order_relaxed);

  media_entry entry;
  entry.id = id;
  entry.fmt = request.fmt;
  entry.duration_ms = converted->duration_ms;
  entry.source = source;
  entry.etag = std::string(resp.headers.find("ETag").value_or(""));
  entry.last_modified = std::string(resp.headers.find("Last-Modified").value_or(""));
  entry.fetched_at_ms = now;
  entry.max_age_s = policy.max_age_s;
  entry.no_store = policy.no_store;
  entry.last_access_ms = now;
  return store(std::move(entry), std::move(*converted));
}

media_service::result media_service::produce_speech(const media_request& request, const std::string& id) {
  auto spoken = synthesize(request.text, request.voice, request.rate, _options.conversion.max_seconds);
  if (!spoken) {
    error e = std::move(spoken.error());
    if (e.code == errc::invalid_request) e.message = "invalid request: " + e.message;
    return fail(id, request.text, std::move(e));
  }
  auto encoded = encode(spoken->samples, spoken->sample_rate, request.fmt, _options.conversion);
  if (!encoded) return fail(id, request.text, std::move(encoded.error()));
  _counters.syntheses.fetch_add(1, std::memory_order_relaxed);

  media_entry entry;
  entry.id = id;
  entry.fmt = request.fmt;
  entry.duration_ms = encoded->duration_ms;
  entry.source = request.text;
  entry.fetched_at_ms = unix_ms();
  entry.last_access_ms = entry.fetched_at_ms;
  return store(std::move(entry), std::move(*encoded));
}

media_service::result media_service::store(media_entry entry, converted_audio audio) {
  const std::string source = entry.source;
  auto evicted = _cache->insert(entry, audio.wav);
  if (!evicted) return fail(entry.id, source, std::move(evicted.error()));
  entry.bytes = audio.wav.size();
  _counters.evictions.fetch_add(evicted->size(), std::memory_order_relaxed);
  for (const media_entry& gone : *evicted) emit("media.evicted", entry_json(gone, false, "size"));
  emit("media.cached", entry_json(entry, true));
  return info_of(entry, false);
}

media_service::result media_service::fail(std::string_view id, std::string_view source, error e) {
  _counters.failures[static_cast<std::size_t>(e.code)].fetch_add(1, std::memory_order_relaxed);
  if (_options.on_event) {
    rapidjson::StringBuffer buffer;
    json_writer w(buffer);
    w.StartObject();
    write_string(w, "id", id);
    write_string(w, "source", source);
    write_string(w, "code", errc_name(e.code));
    write_string(w, "message", e.message);
    w.EndObject();
    emit("media.failed", std::string(buffer.GetString(), buffer.GetSize()));
  }
  return std::unexpected(std::move(e));
}

void media_service::emit(std::string_view type, std::string json) const {
  if (_options.on_event) _options.on_event(type, std::move(json));
}

std::expected<media_file, error> media_service::open(std::string_view id) {
  if (!is_media_id(id)) return std::unexpected(error{errc::invalid_request, "invalid request: not a media id"});
  auto entry = _cache->find(id, unix_ms(), false);
  if (!entry) return std::unexpected(error{errc::not_found, fmt::format("not found: no media {}", id)});
  return media_file{*entry, _cache->path(id)};
}

std::expected<bool, error> media_service::evict(std::string_view id) {
  if (!is_media_id(id)) return std::unexpected(error{errc::invalid_request, "invalid request: not a media id"});
  auto removed = _cache->erase(id);
  if (!removed) return std::unexpected(std::move(removed.error()));
  if (!*removed) return false;
  _counters.deletions.fetch_add(1, std::memory_order_relaxed);
  emit("media.evicted", entry_json(**removed, false, "deleted"));
  return true;
}

std::string media_service::prometheus_text() const {
  std::string out;
  const auto metric = [&out](std::string_view name, std::string_view type, std::string_view help, std::uint64_t v) {
    fmt::format_to(std::back_inserter(out), "# HELP switchboard_media_{0} {1}\n# TYPE switchboard_media_{0} {2}\n"
                   "switchboard_media_{0} {3}\n", name, help, type, v);
  };
  const auto load = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  metric("cache_hits_total", "counter", "Resolves answered from a fresh cache entry.", load(_counters.hits));
  metric("cache_misses_total", "counter", "Resolves that fetched or synthesised.", load(_counters.misses));
  metric("shared_total", "counter", "Resolves that waited for a concurrent identical resolve.",
         load(_counters.shared));
  metric("fetches_total", "counter", "Origin requests sent.", load(_counters.fetches));
  metric("revalidated_total", "counter", "304 answers that kept a cached conversion.", load(_counters.revalidated));
  metric("conversions_total", "counter", "Fetched audio converted.", load(_counters.conversions));
  metric("syntheses_total", "counter", "Texts spoken and encoded.", load(_counters.syntheses));
  metric("evictions_total", "counter", "Cached files evicted by size.", load(_counters.evictions));
  metric("deletions_total", "counter", "Cached files removed by DELETE /v1/media/<id>.", load(_counters.deletions));
  out += "# HELP switchboard_media_failures_total Failed resolves by error kind.\n"
         "# TYPE switchboard_media_failures_total counter\n";
  for (std::size_t i = 0; i < errc_count; ++i) {
    fmt::format_to(std::back_inserter(out), "switchboard_media_failures_total{{kind=\"{}\"}} {}\n",
                   errc_name(static_cast<errc>(i)), load(_counters.failures[i]));
  }
  metric("cache_bytes", "gauge", "Bytes of cached files.", _cache->bytes());
  metric("cache_entries", "gauge", "Cached files.", _cache->entries());
  return out;
}

}  // namespace switchboard::media
