#include "broker/server/media_layer.h"

#include <spdlog/spdlog.h>
#include <stdlib.h>

#include "broker/http_client/http_client.h"
#include "broker/media/store_media_index.h"
#include "broker/server/media_api.h"
#include "broker/store/store.h"

namespace switchboard::server {

std::vector<std::string> split_param_list(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    std::string_view name = list.substr(0, comma);
    while (!name.empty() && (name.front() == ' ' || name.front() == '\t')) name.remove_prefix(1);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    if (!name.empty()) out.emplace_back(name);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

std::expected<std::unique_ptr<media_layer>, std::string> media_layer::start(
    const options& opts, store::store& st, media::media_event_hook on_event) {
  std::unique_ptr<media_layer> m(new media_layer());
  media::media_options mo;
  if (opts.memory) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "switchboard-media-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      return std::unexpected("media: cannot create a temporary directory");
    m->_temp_dir = tmpl;
    mo.data_dir = m->_temp_dir;
  } else {
    mo.data_dir = opts.data_dir;
  }
  mo.cache_bytes = opts.media_cache_bytes;
  mo.max_bytes = opts.media_max_bytes;
  mo.conversion.max_seconds = static_cast<double>(opts.media_max_seconds);
  mo.fetch_timeout = std::chrono::milliseconds(opts.media_fetch_timeout_ms);
  mo.connect_timeout = std::min(mo.connect_timeout, mo.fetch_timeout);
  mo.volatile_query_params = split_param_list(opts.media_volatile_params);
  mo.on_event = std::move(on_event);

  auto http = http_client::client::create();
  if (!http) return std::unexpected("media: cannot start the HTTP client: " + http.error().message);
  m->_http = std::move(*http);
  auto service = media::media_service::create(std::move(mo), *m->_http, media::open_store_media_index(st));
  if (!service) return std::unexpected("media: " + service.error().message);
  m->_service = std::move(*service);
  m->_http->start();
  m->_api = std::make_unique<media_api>(*m->_service);
  spdlog::info(
      "media: cache in {} ({} file(s), {} bytes of {})",
      (m->_temp_dir.empty() ? std::filesystem::path(opts.data_dir) : m->_temp_dir).string() + "/media",
      m->_service->cache_entries(), m->_service->cache_bytes(), opts.media_cache_bytes);
  return m;
}

media_layer::~media_layer() {
  stop();
  _api.reset();
  _service.reset();
  _http.reset();
  if (!_temp_dir.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(_temp_dir, ignored);
  }
}

std::vector<admin::route_module> media_layer::modules() { return _api->modules(); }

void media_layer::stop() {
  if (_http) _http->stop();
  if (_api) _api->stop();
}

}  // namespace switchboard::server
