// A local HTTP origin for tests (cpp-httplib): listens on 127.0.0.1 on a free port, serves configured
// routes and counts the requests per path.
//
// Each route has a status, body, extra headers and an optional delay. Conditional requests are
// answered like a real origin: If-None-Match equal to the route's ETag, or If-Modified-Since equal to
// its Last-Modified, gets 304 with no body. Unknown paths get 404. A route can stream its body chunked
// (no Content-Length), so a client cannot reject it from the headers alone.
//
// Ready on construction: the socket is bound and listening before the constructor returns, so no
// readiness probe is needed. Delays wait on a condition variable that the destructor releases, so a
// test never waits for them at shutdown. Link PkgConfig::HTTPLIB (pkg-config cpp-httplib).
#pragma once

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace switchboard::test {

struct origin_route {
  int status = 200;
  std::string body;
  std::string content_type = "application/octet-stream";
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. ETag, Cache-Control, Location
  std::chrono::milliseconds delay{0};                         // before the response starts
  bool chunked = false;                                       // stream without Content-Length

  // Chainable setters: test::reply("body").with_header("ETag", "\"1\"").with_delay(50ms).
  origin_route&& with_status(int s) && { status = s; return std::move(*this); }
  origin_route&& with_type(std::string t) && { content_type = std::move(t); return std::move(*this); }
  origin_route&& with_header(std::string n, std::string v) && {
    headers.emplace_back(std::move(n), std::move(v));
    return std::move(*this);
  }
  origin_route&& with_delay(std::chrono::milliseconds d) && { delay = d; return std::move(*this); }
  origin_route&& as_chunked() && { chunked = true; return std::move(*this); }
};

// A 200 response with `body`.
inline origin_route reply(std::string body) {
  origin_route r;
  r.body = std::move(body);
  return r;
}

class http_origin {
 public:
  http_origin() {
    _server.new_task_queue = [] { return new httplib::ThreadPool(64); };
    _server.set_keep_alive_timeout(2);
    _server.Get(".*", [this](const httplib::Request& req, httplib::Response& res) { serve(req, res); });
    _server.Post(".*", [this](const httplib::Request& req, httplib::Response& res) { serve(req, res); });
    _port = _server.bind_to_any_port("127.0.0.1");
    if (_port <= 0) throw std::runtime_error("http_origin: cannot bind 127.0.0.1");
    _thread = std::thread([this] { _server.listen_after_bind(); });
    // stop() only works once the accept loop runs; wait for it (a probe, not a sleep).
    while (!_server.is_running()) std::this_thread::yield();
  }

  ~http_origin() {
    {
      std::lock_guard lock(_mutex);
      _stopping = true;
    }
    _released.notify_all();
    _server.stop();
    _thread.join();
  }

  http_origin(const http_origin&) = delete;
  http_origin& operator=(const http_origin&) = delete;

  [[nodiscard]] int port() const noexcept { return _port; }
  [[nodiscard]] std::string url(std::string_view path_and_query) const {
    return "http://127.0.0.1:" + std::to_string(_port) + std::string(path_and_query);
  }

  // Serves `route` at `path` (the path only: queries are ignored when matching) from now on.
  void set(const std::string& path, origin_route route) {
    auto shared = std::make_shared<const origin_route>(std::move(route));
    std::lock_guard lock(_mutex);
    _routes[path] = std::move(shared);
  }

  // Requests received for `path` (any method, including those answered 304 or 404).
  [[nodiscard]] std::size_t requests(const std::string& path) const {
    std::lock_guard lock(_mutex);
    const auto it = _counts.find(path);
    return it == _counts.end() ? 0 : it->second;
  }
  // Requests for `path` answered 304 Not Modified.
  [[nodiscard]] std::size_t not_modified(const std::string& path) const {
    std::lock_guard lock(_mutex);
    const auto it = _not_modified.find(path);
    return it == _not_modified.end() ? 0 : it->second;
  }
  // Most requests that were being answered at the same time (a delayed route keeps one open).
  [[nodiscard]] std::size_t peak_concurrent() const {
    std::lock_guard lock(_mutex);
    return _peak_concurrent;
  }
  // Header `name` of the latest request for `path`, empty when absent.
  [[nodiscard]] std::optional<std::string> last_header(const std::string& path, const std::string& name) const {
    std::lock_guard lock(_mutex);
    const auto it = _last_headers.find(path);
    if (it == _last_headers.end()) return std::nullopt;
    const auto h = it->second.find(name);
    if (h == it->second.end()) return std::nullopt;
    return h->second;
  }

 private:
  void serve(const httplib::Request& req, httplib::Response& res) {
    respond(req, res);
    std::lock_guard lock(_mutex);
    --_concurrent;
  }

  void respond(const httplib::Request& req, httplib::Response& res) {
    std::shared_ptr<const origin_route> route;
    {
      std::unique_lock lock(_mutex);
      ++_counts[req.path];
      _last_headers[req.path] = req.headers;
      _peak_concurrent = std::max(_peak_concurrent, ++_concurrent);
      const auto it = _routes.find(req.path);
      if (it != _routes.end()) route = it->second;
      if (route && route->delay.count() > 0) {
        _released.wait_for(lock, route->delay, [this] { return _stopping; });
      }
    }
    if (!route) {
      res.status = 404;
      res.set_content("<html><body>not found</body></html>", "text/html");
      return;
    }
    for (const auto& [name, value] : route->headers) res.set_header(name, value);
    if (matches(req, *route, "If-None-Match", "ETag") || matches(req, *route, "If-Modified-Since", "Last-Modified")) {
      std::lock_guard lock(_mutex);
      ++_not_modified[req.path];
      res.status = 304;
      return;
    }
    res.status = route->status;
    if (route->chunked) {
      res.set_chunked_content_provider(route->content_type, [route](std::size_t offset, httplib::DataSink& sink) {
        if (offset >= route->body.size()) {
          sink.done();
          return true;
        }
        const std::size_t n = std::min<std::size_t>(64 * 1024, route->body.size() - offset);
        return sink.write(route->body.data() + offset, n);
      });
    } else {
      res.set_content(route->body, route->content_type);
    }
  }

  static bool matches(const httplib::Request& req, const origin_route& route, const char* request_header,
                      std::string_view validator) {
    if (!req.has_header(request_header)) return false;
    for (const auto& [name, value] : route.headers) {
      if (name == validator) return req.get_header_value(request_header) == value;
    }
    return false;
  }

  httplib::Server _server;
  int _port = 0;
  std::thread _thread;

  mutable std::mutex _mutex;  // protects everything below
  std::condition_variable _released;
  bool _stopping = false;
  std::map<std::string, std::shared_ptr<const origin_route>> _routes;
  std::map<std::string, std::size_t> _counts;
  std::map<std::string, std::size_t> _not_modified;
  std::map<std::string, httplib::Headers> _last_headers;
  std::size_t _concurrent = 0;
  std::size_t _peak_concurrent = 0;
};

}  // namespace switchboard::test
