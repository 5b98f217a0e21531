// The HTTP request and response as the admin API sees them: plain values, independent of the HTTP
// library (Boost.Beast stays inside http_server.cc), so the API's routing, authentication and
// validation (admin_api) can be called directly by tests and the fuzz entry.
//
// Concurrency: plain values; one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/admin/response_stream.h"

namespace switchboard::admin {

using http_fields = std::vector<std::pair<std::string, std::string>>;

// A response body sent from an open file: `length` bytes from `offset`, written by the io thread
// with sendfile(2) (no copy, no thread held however large the file). Owns the descriptor and closes
// it on destruction; the file may be unlinked or replaced meanwhile (an open descriptor stays
// readable). If the file turns out shorter than `length`, the connection is closed after what it
// holds (the Content-Length already sent cannot be honoured).
class file_body {
 public:
  file_body(int fd, std::uint64_t offset, std::uint64_t length) noexcept
      : _fd(fd), _offset(offset), _length(length) {}
  file_body(const file_body&) = delete;
  file_body& operator=(const file_body&) = delete;
  ~file_body();

  [[nodiscard]] int fd() const noexcept { return _fd; }
  [[nodiscard]] std::uint64_t offset() const noexcept { return _offset; }
  [[nodiscard]] std::uint64_t length() const noexcept { return _length; }

 private:
  const int _fd;
  const std::uint64_t _offset;
  const std::uint64_t _length;
};

struct http_request {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // path and query as sent (not percent-decoded)
  http_fields headers;
  std::string body;
  // The client's address, "IP:PORT" ("[IPv6]:PORT"), for logs; "" when unknown (direct calls).
  std::string peer;

  // The value of the first header named `name` (ASCII case-insensitive), or "" when absent.
  [[nodiscard]] std::string_view header(std::string_view name) const;
  // The target without its query string.
  [[nodiscard]] std::string_view path() const;
  // The percent-decoded value of the first query parameter `name` ('+' is a space), or nullopt when
  // the parameter is absent or its escape is malformed.
  [[nodiscard]] std::optional<std::string> query(std::string_view name) const;
};

struct http_response;

// A response that another thread completes later, so that a request waiting for slow work (an
// origin fetch, a conversion) holds neither a request worker nor the io thread: the handler hands
// the work to its own threads, returns http_response{.deferred = d} at once, and the work calls
// d->complete(response) when done. The connection keeps the request open meanwhile (no timeout
// applies: the work bounds itself); if the client leaves first, the late response is dropped.
//
// Concurrency: complete() may be called from any thread, once (later calls are ignored).
class deferred_response {
 public:
  deferred_response() = default;
  deferred_response(const deferred_response&) = delete;
  deferred_response& operator=(const deferred_response&) = delete;

  void complete(http_response r);

  // The server's side (http_server.cc): `sink` receives the response exactly once, now if it is
  // already complete, else from complete(). A complete response with no sink yet waits for it.
  void on_complete(std::function<void(http_response)> sink);

 private:
  std::mutex _mutex;
  std::unique_ptr<http_response> _result;               // guarded by _mutex
  std::function<void(http_response)> _sink;             // guarded by _mutex
  bool _done = false;                                   // complete() called; guarded by _mutex
};

struct http_response {
  int status = 200;
  std::string content_type;  // "" = none (204, and streams set their own)
  http_fields headers;       // extra headers (Allow, WWW-Authenticate, …)
  std::string body;
  // Set: a streamed response. The server writes the status, content type and headers with chunked
  // transfer encoding, then every chunk pushed to the stream until it ends; `body` is ignored.
  std::shared_ptr<response_stream> stream;
  // Set (and no stream): the body is this file range, sent with Content-Length = its length; `body`
  // is ignored. A HEAD request gets the same head and no body.
  std::shared_ptr<const file_body> file;
  // Set: the real response comes later through it (see deferred_response); the rest is ignored.
  std::shared_ptr<deferred_response> deferred;
};

// (Defined in admin_api.cc, next to the API's other JSON writers.)
// `{"error":{"code":CODE,"message":MESSAGE}}` with `status` (forced into 400..599, else 500).
[[nodiscard]] http_response error_response(int status, std::string_view code, std::string_view message,
                                           std::string_view detail_json = {});
// A JSON body with `status`.
[[nodiscard]] http_response json_response(int status, std::string body);

}  // namespace switchboard::admin
