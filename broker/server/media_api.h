// The media layer's HTTP endpoints (docs/MEDIA.md, docs/ADMIN_API.md "Media"), as admin route
// modules the server passes to admin_server::start:
//   POST   /v1/media        resolve a URL or a text: scope publish or admin
//   GET    /v1/media/<id>   metadata of a cached id: any valid token
//   DELETE /v1/media/<id>   evict it: scope admin
//   GET/HEAD /media/<id>    the audio bytes: public (the id is the capability), Range, ETag, 304
//
// Operation: POST answers with a deferred response: the resolve (fetch, conversion, synthesis: up to
// the fetch timeout plus a conversion) runs on this object's own resolve threads, never on an HTTP
// worker or the io thread. /media/<id> runs on the HTTP io thread (an in-memory lookup and open(2)),
// and the body is sent with sendfile(2), so neither a large file nor a slow player holds a thread.
//
// Concurrency: the handlers run concurrently on the HTTP threads; the resolve queue is guarded by
// _mutex; counters are relaxed atomics. Lifecycle: the constructor starts the resolve threads; stop()
// answers queued resolves 503 shutting_down, lets running ones finish (the caller stops the HTTP
// client first to cut fetches short), joins; idempotent. Stop it before the admin server, and keep
// the media_service alive until then.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "broker/admin/route_module.h"
#include "broker/media/media_service.h"

namespace switchboard::server {

struct media_api_options {
  // Resolves running at once. Each holds a thread for a fetch + conversion; single flight makes
  // identical requests share one. More threads overlap more slow origins.
  unsigned resolve_threads = 8;
  // Resolves waiting for a thread; beyond it POST /v1/media answers 503 busy.
  std::size_t max_queued = 1024;
};

class media_api {
 public:
  media_api(media::media_service& service, media_api_options options = {});
  media_api(const media_api&) = delete;
  media_api& operator=(const media_api&) = delete;
  ~media_api();

  // The two modules ("/v1/media" on the workers, "/media" on the io thread). They refer to this
  // object, which must outlive the admin server's use of them.
  [[nodiscard]] std::vector<admin::route_module> modules();
  // Prometheus text: the service's counters and this API's (requests by route, bytes served, 304s,
  // 206s, the resolve queue).
  [[nodiscard]] std::string metrics() const;
  void stop();

 private:
  struct job {
    media::media_request request;
    std::shared_ptr<admin::deferred_response> reply;
  };

  std::expected<admin::http_response, admin::api_error> api(const admin::module_request& r);
  std::expected<admin::http_response, admin::api_error> resolve(const admin::module_request& r);
  std::expected<admin::http_response, admin::api_error> serve(const admin::module_request& r);
  void run();

  media::media_service& _service;
  const media_api_options _options;

  enum route : std::size_t { resolve_route, metadata_route, delete_route, file_route, route_count };
  std::array<std::atomic<std::uint64_t>, route_count> _requests{};
  std::atomic<std::uint64_t> _served_bytes{0};
  std::atomic<std::uint64_t> _not_modified{0};
  std::atomic<std::uint64_t> _partial{0};
  std::atomic<std::uint64_t> _rejected{0};

  std::mutex _mutex;  // guards _queue and _stopping
  std::condition_variable _wake;
  std::deque<job> _queue;
  bool _stopping = false;
  std::vector<std::thread> _threads;  // last: started once everything above exists
};

}  // namespace switchboard::server
