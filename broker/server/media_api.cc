#include "broker/server/media_api.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "broker/admin/file_response.h"
#include "broker/admin/json_check.h"
#include "broker/media/media_id.h"

namespace switchboard::server {
namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;
using admin::api_error;
using admin::http_response;

void write_string(json_writer& w, std::string_view key, std::string_view value) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

// HTTP status of a media error (docs/ADMIN_API.md, "Media"). The code is the errc's name.
int status_of(media::errc code) {
  switch (code) {
    case media::errc::invalid_request: return 400;
    case media::errc::media_invalid: return 422;
    case media::errc::too_large: return 422;
    case media::errc::not_found: return 502;  // the origin answered 404/410
    case media::errc::fetch_failed: return 502;
    case media::errc::timeout: return 504;
    case media::errc::io: return 500;
  }
  return 500;
}

api_error to_api(const media::error& e) {
  return {status_of(e.code), std::string(media::errc_name(e.code)), e.message};
}

std::string info_json(const media::media_info& i) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  write_string(w, "id", i.id);
  write_string(w, "address", i.address);
  w.Key("duration_ms");
  w.Uint64(i.duration_ms);
  write_string(w, "format", media::format_name(i.fmt));
  w.Key("bytes");
  w.Uint64(i.bytes);
  w.Key("cached");
  w.Bool(i.cached);
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

std::string entry_json(const media::media_entry& e) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  write_string(w, "id", e.id);
  write_string(w, "address", "/media/" + e.id);
  w.Key("duration_ms");
  w.Uint64(e.duration_ms);
  write_string(w, "format", media::format_name(e.fmt));
  w.Key("bytes");
  w.Uint64(e.bytes);
  write_string(w, "kind", e.id.starts_with("t-") ? "speech" : "url");
  write_string(w, "source", e.source);
  write_string(w, "etag", e.etag);
  write_string(w, "last_modified", e.last_modified);
  w.Key("fetched_at_ms");
  w.Int64(e.fetched_at_ms);
  w.Key("last_access_ms");
  w.Int64(e.last_access_ms);
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

// The body of POST /v1/media as a media_request; 400 invalid_json / 422 unknown_attribute /
// invalid_attribute for bodies that are not one.
std::expected<media::media_request, api_error> parse_request(std::string_view body) {
  if (auto ok = admin::check_json(body); !ok)
    return std::unexpected(api_error{400, "invalid_json", ok.error()});
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object doc;
  if (parser.parse(body.data(), body.size()).get_object().get(doc) != simdjson::SUCCESS) {
    return std::unexpected(api_error{400, "invalid_json", "the body must be a JSON object"});
  }
  media::media_request r;
  const auto invalid = [](std::string_view key, std::string_view what) {
    return std::unexpected(
        api_error{422, "invalid_attribute", fmt::format("attribute \"{}\" must be {}", key, what)});
  };
  for (const auto field : doc) {
    const std::string_view key = field.key;
    const simdjson::dom::element v = field.value;
    if (key == "url" || key == "text" || key == "voice" || key == "format") {
      std::string_view s;
      if (v.get_string().get(s) != simdjson::SUCCESS) return invalid(key, "a string");
      if (key == "url") r.url = s;
      if (key == "text") r.text = s;
      if (key == "voice") r.voice = s;
      if (key == "format") {
        const auto f = media::parse_format(s);
        if (!f) return invalid(key, "one of \"ulaw_8k\", \"pcm16_8k\", \"pcm16_16k\"");
        r.fmt = *f;
      }
    } else if (key == "rate") {
      std::int64_t rate = 0;
      if (v.get_int64().get(rate) != simdjson::SUCCESS || rate < 0 || rate > 100'000)
        return invalid(key, "an integer");
      r.rate = static_cast<int>(rate);
    } else {
      return std::unexpected(
          api_error{422, "unknown_attribute", fmt::format("unknown attribute \"{}\"", key)});
    }
  }
  return r;
}

std::expected<std::string, api_error> id_of(std::string_view rest) {
  if (rest.size() < 2 || rest.front() != '/' || !media::is_media_id(rest.substr(1))) {
    return std::unexpected(api_error{404, "not_found", "no such media"});
  }
  return std::string(rest.substr(1));
}

api_error forbidden(const auth::principal& who, std::string_view scope) {
  return {403, "forbidden", fmt::format("token {} lacks the {} scope", auth::quote(who.name), scope)};
}

}  // namespace

media_api::media_api(media::media_service& service, media_api_options options)
    : _service(service), _options(options) {
  for (unsigned i = 0; i < std::max(1u, _options.resolve_threads); ++i)
    _threads.emplace_back([this] { run(); });
}

media_api::~media_api() { stop(); }

void media_api::stop() {
  std::deque<job> abandoned;
  {
    std::lock_guard lock(_mutex);
    _stopping = true;
    abandoned.swap(_queue);
  }
  _wake.notify_all();
  for (job& j : abandoned)
    j.reply->complete(admin::error_response(503, "shutting_down", "the broker is stopping"));
  for (auto& t : _threads) {
    if (t.joinable()) t.join();
  }
}

void media_api::run() {
  while (true) {
    job j;
    {
      std::unique_lock lock(_mutex);
      _wake.wait(lock, [this] { return _stopping || !_queue.empty(); });
      if (_stopping) return;
      j = std::move(_queue.front());
      _queue.pop_front();
    }
    http_response response;
    try {
      auto info = _service.resolve(j.request);
      response = info ? admin::json_response(200, info_json(*info))
                      : admin::error_response(status_of(info.error().code),
                                              media::errc_name(info.error().code), info.error().message);
    } catch (const std::exception& e) {
      spdlog::error("media: resolve threw: {}", e.what());
      response = admin::error_response(500, "internal_error", "internal error");
    }
    j.reply->complete(std::move(response));
  }
}

std::vector<admin::route_module> media_api::modules() {
  admin::route_module api_module;
  api_module.prefix = "/v1/media";
  api_module.methods = {"GET", "POST", "DELETE"};
  api_module.handle = [this](const admin::module_request& r) { return api(r); };
  api_module.metrics = [this] { return metrics(); };

  admin::route_module files;
  files.prefix = "/media";
  files.methods = {"GET"};
  files.is_public = true;
  files.on_io_thread = true;
  files.handle = [this](const admin::module_request& r) { return serve(r); };
  return {std::move(api_module), std::move(files)};
}

std::expected<http_response, api_error> media_api::api(const admin::module_request& r) {
  const std::string& method = r.request.method;
  if (r.rest.empty()) {
    if (method != "POST") {
      return std::unexpected(
          api_error{405, "method_not_allowed", fmt::format("{} is not allowed here; allowed: POST", method)});
    }
    return resolve(r);
  }
  auto id = id_of(r.rest);
  if (!id) return std::unexpected(id.error());
  if (method == "POST") {
    return std::unexpected(
        api_error{405, "method_not_allowed", "POST is not allowed here; allowed: GET, DELETE"});
  }
  if (method == "DELETE") {
    _requests[delete_route].fetch_add(1, std::memory_order_relaxed);
    if (!r.who.admin) return std::unexpected(forbidden(r.who, "admin"));
    auto evicted = _service.evict(*id);
    if (!evicted) return std::unexpected(to_api(evicted.error()));
    if (!*evicted)
      return std::unexpected(api_error{404, "not_found", fmt::format("not found: no media {}", *id)});
    spdlog::info("media: {} evicted by {}", *id, auth::quote(r.who.name));
    http_response gone;
    gone.status = 204;
    return gone;
  }
  _requests[metadata_route].fetch_add(1, std::memory_order_relaxed);
  auto file = _service.open(*id);
  if (!file && file.error().code == media::errc::not_found) {
    return std::unexpected(api_error{404, "not_found", file.error().message});
  }
  if (!file) return std::unexpected(to_api(file.error()));
  return admin::json_response(200, entry_json(file->entry));
}

std::expected<http_response, api_error> media_api::resolve(const admin::module_request& r) {
  _requests[resolve_route].fetch_add(1, std::memory_order_relaxed);
  if (!r.who.publish && !r.who.admin) return std::unexpected(forbidden(r.who, "publish"));
  auto request = parse_request(r.request.body);
  if (!request) return std::unexpected(std::move(request.error()));
  auto reply = std::make_shared<admin::deferred_response>();
  {
    std::lock_guard lock(_mutex);
    if (_stopping) return std::unexpected(api_error{503, "shutting_down", "the broker is stopping"});
    if (_queue.size() >= _options.max_queued) {
      _rejected.fetch_add(1, std::memory_order_relaxed);
      return std::unexpected(
          api_error{503, "busy", fmt::format("{} media requests are waiting; retry later", _queue.size())});
    }
    _queue.push_back(job{std::move(*request), reply});
  }
  _wake.notify_one();
  http_response later;
  later.deferred = std::move(reply);
  return later;
}

std::expected<http_response, api_error> media_api::serve(const admin::module_request& r) {
  _requests[file_route].fetch_add(1, std::memory_order_relaxed);
  auto id = id_of(r.rest);
  if (!id) return std::unexpected(id.error());
  auto file = _service.open(*id);
  if (!file) return std::unexpected(api_error{404, "not_found", fmt::format("not found: no media {}", *id)});
  const int fd = ::open(file->path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {  // evicted or replaced between the lookup and the open
    if (errno == ENOENT)
      return std::unexpected(api_error{404, "not_found", fmt::format("not found: no media {}", *id)});
    spdlog::error("media: cannot open {} for {}: {}", file->path.string(), *id, std::strerror(errno));
    return std::unexpected(api_error{500, "io", "cannot open the media file"});
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return std::unexpected(api_error{500, "io", "cannot stat the media file"});
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const auto mtime_ns = static_cast<std::uint64_t>(st.st_mtim.tv_sec) * 1'000'000'000u +
                        static_cast<std::uint64_t>(st.st_mtim.tv_nsec);
  admin::file_representation rep;
  rep.content_type = "audio/wav";
  // Changes whenever the file under this id is replaced (a new conversion after the origin changed).
  rep.etag = fmt::format("\"{}-{:x}-{:x}\"", *id, mtime_ns, size);
  const std::int64_t fresh = _service.fresh_for_s(file->entry);
  rep.cache_control = fresh < 0    ? "public, max-age=31536000, immutable"
                      : fresh == 0 ? "no-cache"
                                   : fmt::format("public, max-age={}", fresh);
  http_response response = admin::file_response(r.request, fd, size, rep);
  if (response.status == 304) _not_modified.fetch_add(1, std::memory_order_relaxed);
  if (response.status == 206) _partial.fetch_add(1, std::memory_order_relaxed);
  if (response.file && r.request.method == "GET") {
    _served_bytes.fetch_add(response.file->length(), std::memory_order_relaxed);
  }
  return response;
}

std::string media_api::metrics() const {
  std::string out = _service.prometheus_text();
  const auto load = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  out += fmt::format(
      "# HELP switchboard_media_requests_total Media API requests by route.\n"
      "# TYPE switchboard_media_requests_total counter\n"
      "switchboard_media_requests_total{{route=\"resolve\"}} {}\n"
      "switchboard_media_requests_total{{route=\"metadata\"}} {}\n"
      "switchboard_media_requests_total{{route=\"delete\"}} {}\n"
      "switchboard_media_requests_total{{route=\"file\"}} {}\n"
      "# HELP switchboard_media_served_bytes_total Body bytes of /media/<id> responses (200 and 206).\n"
      "# TYPE switchboard_media_served_bytes_total counter\n"
      "switchboard_media_served_bytes_total {}\n"
      "# HELP switchboard_media_not_modified_total /media/<id> requests answered 304.\n"
      "# TYPE switchboard_media_not_modified_total counter\n"
      "switchboard_media_not_modified_total {}\n"
      "# HELP switchboard_media_partial_total /media/<id> requests answered 206 (Range).\n"
      "# TYPE switchboard_media_partial_total counter\n"
      "switchboard_media_partial_total {}\n"
      "# HELP switchboard_media_rejected_total POST /v1/media answered 503 busy (resolve queue full).\n"
      "# TYPE switchboard_media_rejected_total counter\n"
      "switchboard_media_rejected_total {}\n",
      load(_requests[resolve_route]), load(_requests[metadata_route]), load(_requests[delete_route]),
      load(_requests[file_route]), load(_served_bytes), load(_not_modified), load(_partial), load(_rejected));
  return out;
}

}  // namespace switchboard::server
