// The media layer as the broker runs it (docs/MEDIA.md): the HTTP client for origins, the
// media_service with its files in <data_dir>/media and its index in the store's media_index column
// family, and the media_api endpoints. Built from the broker options by server::start.
//
// Lifecycle: start() opens the cache (reconciling files and index) and starts the client and the
// resolve threads. stop() stops the HTTP client (cutting running fetches short), then the resolve
// threads; idempotent, also run by the destructor. Stop it before the admin server; the store must
// outlive it. With options::memory the files live in a temporary directory removed by the destructor.
#pragma once

#include <expected>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "broker/admin/route_module.h"
#include "broker/media/media_service.h"
#include "broker/server/options.h"

namespace switchboard::http_client {
class client;
}
namespace switchboard::store {
class store;
}

namespace switchboard::server {

class media_api;

class media_layer {
 public:
  // A one-line message when the cache cannot be opened (e.g. "media: cannot create …").
  [[nodiscard]] static std::expected<std::unique_ptr<media_layer>, std::string> start(
      const options& opts, store::store& st, media::media_event_hook on_event);

  media_layer(const media_layer&) = delete;
  media_layer& operator=(const media_layer&) = delete;
  ~media_layer();

  // The admin route modules (/v1/media, /media); valid while this object lives.
  [[nodiscard]] std::vector<admin::route_module> modules();
  void stop();

 private:
  media_layer() = default;

  std::filesystem::path _temp_dir;  // --memory only: removed by the destructor
  std::unique_ptr<http_client::client> _http;
  std::unique_ptr<media::media_service> _service;
  std::unique_ptr<media_api> _api;
};

// The comma list of --media-volatile-params as a list (blanks around names dropped, empty names skipped).
[[nodiscard]] std::vector<std::string> split_param_list(std::string_view list);

}  // namespace switchboard::server
