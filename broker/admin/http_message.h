// The HTTP request and response as the admin API sees them: plain values, independent of the HTTP
// library (Boost.Beast stays inside http_server.cc), so the API's routing, authentication and
// validation (admin_api) can be called directly by tests and the fuzz entry.
//
// Concurrency: plain values; one thread at a time.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/admin/response_stream.h"

namespace switchboard::admin {

using http_fields = std::vector<std::pair<std::string, std::string>>;

struct http_request {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // path and query as sent (not percent-decoded)
  http_fields headers;
  std::string body;

  // The value of the first header named `name` (ASCII case-insensitive), or "" when absent.
  [[nodiscard]] std::string_view header(std::string_view name) const;
  // The target without its query string.
  [[nodiscard]] std::string_view path() const;
  // The percent-decoded value of the first query parameter `name` ('+' is a space), or nullopt when
  // the parameter is absent or its escape is malformed.
  [[nodiscard]] std::optional<std::string> query(std::string_view name) const;
};

struct http_response {
  int status = 200;
  std::string content_type;  // "" = none (204, and streams set their own)
  http_fields headers;       // extra headers (Allow, WWW-Authenticate, …)
  std::string body;
  // Set: a streamed response. The server writes the status, content type and headers with chunked
  // transfer encoding, then every chunk pushed to the stream until it ends; `body` is ignored.
  std::shared_ptr<response_stream> stream;
};

// (Defined in admin_api.cc, next to the API's other JSON writers.)
// `{"error":{"code":CODE,"message":MESSAGE}}` with `status` (forced into 400..599, else 500).
[[nodiscard]] http_response error_response(int status, std::string_view code, std::string_view message,
                                           std::string_view detail_json = {});
// A JSON body with `status`.
[[nodiscard]] http_response json_response(int status, std::string body);

}  // namespace switchboard::admin
