// The media layer's entry point: turns a `Play` URL or `Say` text into a cached telephony file with a
// persistent address `/media/<id>` (see docs/MEDIA.md).
//
// resolve() answers from the cache when it can (no fetch, no conversion); otherwise it fetches the URL
// through the broker's HTTP client (timeouts, size limit, limited redirects; Cache-Control max-age /
// no-store / no-cache and ETag / Last-Modified revalidation) or synthesises the text (espeak-ng),
// converts to the requested format and stores the result. Concurrent resolves of one id share one
// fetch and one conversion (single flight). Failures are returned, counted and reported, never cached.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/http_client/http_client.h"
#include "broker/media/convert.h"
#include "broker/media/error.h"
#include "broker/media/format.h"
#include "broker/media/media_cache.h"
#include "broker/media/media_id.h"
#include "broker/media/media_index.h"
#include "broker/media/speech.h"

namespace switchboard::media {

struct media_request {
  std::string url;              // Play: the audio to fetch (http:// or https://) — or …
  std::string text;             // … Say: the text to speak (exactly one of url and text)
  std::string voice = "en";     // Say only: espeak-ng voice name or language
  int rate = default_speech_rate;  // Say only: words per minute, 80..450
  format fmt = format::ulaw_8k;
};

struct media_info {
  std::string id;
  std::string address;  // "/media/<id>": where the broker's HTTP server will serve the file
  std::uint64_t duration_ms = 0;
  format fmt = format::ulaw_8k;
  std::uint64_t bytes = 0;
  bool cached = false;  // answered from the cache (fresh, or confirmed by a 304) without converting
};

struct media_file {
  media_entry entry;
  std::filesystem::path path;  // the WAV file; may be unlinked by eviction after open() returns, but an
                               // already opened descriptor stays readable
};

// Called with type "media.cached", "media.evicted" or "media.failed" and a JSON object:
//   media.cached  {"id","format","source","bytes","duration_ms"}
//   media.evicted {"id","format","source","bytes","reason"}  (reason "size" or "deleted")
//   media.failed  {"id","source","code","message"}   (id is "" when the request was invalid)
// Runs on the thread that called resolve(), with no lock of the service held. Must not throw.
using media_event_hook = std::function<void(std::string_view type, std::string json)>;

// Every default with its trade-off.
struct media_options {
  // The cache lives in <data_dir>/media/ (files <id>.wav; the index is given to create()). Required.
  std::filesystem::path data_dir;
  // Total size of cached files; least recently used files are evicted beyond it. 1 GiB holds about
  // 37 hours of 8 kHz μ-law.
  std::uint64_t cache_bytes = 1ull << 30;
  // Largest origin response accepted (the transfer is aborted beyond it): errc::too_large.
  std::size_t max_bytes = 20u << 20;
  // Conversion limits (max_seconds, default 600) and resampler quality; also bounds speech.
  convert_options conversion;
  // Longest Say text, in bytes of UTF-8.
  std::size_t max_text_bytes = 4096;
  // Origin fetch limits. A slow origin ties up the resolving thread for at most fetch_timeout.
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds fetch_timeout{30000};
  int max_redirects = 5;
  // Freshness when the origin sends no Cache-Control max-age: the entry is served without asking the
  // origin for this long after the last fetch, then revalidated (conditionally when it has validators).
  std::chrono::seconds default_max_age{3600};
  // Query parameters ignored by ids (signatures, expiries): see media_id.h.
  std::vector<std::string> volatile_query_params = default_volatile_query_params();
  // Optional: media.cached / media.evicted / media.failed (the broker publishes them on system.media).
  media_event_hook on_event;
};

// Operation: see the file comment. A stale URL entry is revalidated with If-None-Match /
// If-Modified-Since: 304 keeps the cached conversion (cached=true); 200 converts anew and replaces the
// file under the same id; 404/410 removes the entry. When a revalidation fails otherwise (origin
// down, invalid new body) the error is returned and the stale entry is kept for the next attempt.
// Speech entries never go stale.
//
// Concurrency: resolve(), open() and prometheus_text() may be called from any thread concurrently.
// resolve() blocks its caller for the fetch, conversion or synthesis, so call it from a worker thread,
// never from the router or the HTTP client's completion. Single flight: a map of in-flight ids to
// shared futures under _flights_mutex; followers wait for the leader's result. Speech synthesis is
// serialised process-wide (speech.h). Counters are relaxed atomics.
//
// Lifecycle: create() opens the cache; the http client must be started and must outlive the service.
// Destroy the service only when no resolve() is running.
class media_service {
 public:
  // Opens (creating) the cache in <data_dir>/media/ with `index` (the broker passes
  // open_store_media_index(), the store's `media_index` kind), reconciling files and index.
  // errc::invalid_request when data_dir is empty, errc::io when the cache cannot be opened.
  [[nodiscard]] static std::expected<std::unique_ptr<media_service>, error> create(
      media_options options, http_client::client& http, std::unique_ptr<media_index> index);

  media_service(const media_service&) = delete;
  media_service& operator=(const media_service&) = delete;

  // The media for `request`, from the cache or made now (see the class comment). Errors:
  //   errc::invalid_request "invalid request: give exactly one of url and text"
  //                         "invalid request: url must start with http:// or https://"
  //                         "invalid request: text longer than <n> bytes"
  //                         "invalid request: <speech error>" (empty text, rate, unknown voice)
  //   errc::timeout         "timeout: <url> did not answer within <connect> ms (connect) / <total> ms (total)"
  //   errc::too_large       "too large: <url> is larger than <max_bytes> bytes", or a conversion "too long: …"
  //   errc::not_found       "not found: <url> returned <status>"
  //   errc::fetch_failed    "fetch failed: <url> returned <status>" / "fetch failed: <url>: <errc>: <detail>"
  //   errc::media_invalid   the conversion's message ("not audio: …", "truncated: …", see convert.h)
  //   errc::io              cache or espeak-ng failures
  // URLs in messages are canonical (signatures removed). Blocks; see the class comment.
  [[nodiscard]] std::expected<media_info, error> resolve(const media_request& request);

  // The cached file of `id` (marks it recently used in memory; the access time reaches the index
  // only with the next resolve() hit). errc::not_found "not found: no media <id>" when it is not
  // cached; errc::invalid_request "invalid request: not a media id" for a malformed id. Does not
  // fetch, revalidate or write: it only takes the cache's mutex, so the HTTP io thread may call it.
  [[nodiscard]] std::expected<media_file, error> open(std::string_view id);

  // Removes `id` from the cache (DELETE /v1/media/<id>): its file and index entry; emits
  // media.evicted with "reason":"deleted". True when it was cached, false when it was not.
  // errc::invalid_request for a malformed id, errc::io when the file or index cannot be changed.
  // A reader that already opened the file keeps reading it. Blocks on the index write.
  [[nodiscard]] std::expected<bool, error> evict(std::string_view id);

  // How many more seconds `entry` stays fresh from now (0 when stale or no-store), or -1 when it never
  // goes stale (speech). For the Cache-Control max-age of /media/<id>.
  [[nodiscard]] std::int64_t fresh_for_s(const media_entry& entry) const;

  // Counters and gauges in the Prometheus text exposition format, every name prefixed
  // switchboard_media_. Cheap; any thread.
  [[nodiscard]] std::string prometheus_text() const;

  struct counters {
    std::atomic<std::uint64_t> hits{0};           // resolves answered from a fresh cache entry
    std::atomic<std::uint64_t> misses{0};         // resolves that had to fetch or synthesise (leaders only)
    std::atomic<std::uint64_t> shared{0};         // resolves that waited for another's fetch (single flight)
    std::atomic<std::uint64_t> fetches{0};        // origin requests sent
    std::atomic<std::uint64_t> revalidated{0};    // 304 answers that kept a cached conversion
    std::atomic<std::uint64_t> conversions{0};    // fetched bodies converted successfully
    std::atomic<std::uint64_t> syntheses{0};      // texts spoken and encoded successfully
    std::atomic<std::uint64_t> evictions{0};      // evicted by the size bound
    std::atomic<std::uint64_t> deletions{0};      // removed by evict() (DELETE /v1/media/<id>)
    std::atomic<std::uint64_t> failures[errc_count]{};  // by errc
  };
  [[nodiscard]] const counters& stats() const noexcept { return _counters; }
  [[nodiscard]] std::uint64_t cache_bytes() const { return _cache->bytes(); }
  [[nodiscard]] std::size_t cache_entries() const { return _cache->entries(); }

 private:
  media_service(media_options options, http_client::client& http, std::unique_ptr<media_cache> cache);

  using result = std::expected<media_info, error>;
  result produce(const media_request& request, const std::string& id);
  // `conditional`: revalidate a cached entry with its validators (false after it vanished meanwhile).
  result produce_url(const media_request& request, const std::string& id, bool conditional);
  result produce_speech(const media_request& request, const std::string& id);
  result store(media_entry entry, converted_audio audio);
  result fail(std::string_view id, std::string_view source, error e);
  void emit(std::string_view type, std::string json) const;
  [[nodiscard]] bool fresh(const media_entry& entry, std::int64_t now_ms) const;

  const media_options _options;
  http_client::client& _http;
  const std::unique_ptr<media_cache> _cache;
  counters _counters;

  std::mutex _flights_mutex;  // protects _flights
  std::unordered_map<std::string, std::shared_future<result>> _flights;
};

}  // namespace switchboard::media
