// The admin API's event-driven HTTP/1.1 server (Boost.Beast on Boost.Asio). A slow, idle or
// streaming client costs a socket and a few KiB, never a thread.
//
// Operation: one io thread does all socket I/O asynchronously: accept, read a request's header and
// body under admin_options' timeouts, write responses and stream chunks. A request is handed whole
// (body limited to max_body_bytes) to `on_io` first; if that answers (GET /healthz), the io thread
// writes the answer at once. Otherwise the request is queued to a fixed pool of exactly `workers`
// threads that run `on_worker` (which may block, e.g. on the broker) and post the response back to
// the connection's strand. A connection has at most one request in progress (no pipelining in
// parallel), so the worker queue holds at most max_connections requests.
// Limits: max_connections (503 and close beyond it), max_header_bytes (431), max_body_bytes (413,
// before `on_io`/`on_worker`, so before authentication), the four timeouts.
//
// Concurrency: start/port/snapshot/stop may be called from any thread. `on_io` runs on the io
// thread and must not block; `on_worker` runs on the worker threads, concurrently.
// Lifecycle: start() binds and listens exclusively (SO_REUSEADDR for quick restarts, never
// SO_REUSEPORT), starts the threads and returns. stop() stops accepting, closes idle and reading
// connections and streams, lets the workers finish what they hold (their responses are written, up
// to 2 s), then joins every thread; idempotent, also run by the destructor.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "broker/admin/admin_options.h"
#include "broker/admin/http_message.h"

namespace switchboard::admin {

class http_server {
 public:
  using worker_handler = std::function<http_response(const http_request&)>;
  using io_handler = std::function<std::optional<http_response>(const http_request&)>;

  struct stats {
    std::array<std::uint64_t, 5> responses_by_class{};  // 1xx..5xx, every response written
    std::uint64_t connections_open = 0;
    std::uint64_t connections_rejected = 0;  // over max_connections
    std::uint64_t streams_open = 0;
    std::uint64_t header_timeouts = 0;  // counts a connection closed by header_timeout
    std::uint64_t body_timeouts = 0;
    std::uint64_t idle_timeouts = 0;
    std::uint64_t write_timeouts = 0;
  };

  // Binds opts.bind:opts.port and starts serving. Returns the server, or a one-line message naming
  // the address when it cannot listen (e.g. "admin API cannot listen on 127.0.0.1:7401: Address
  // already in use").
  [[nodiscard]] static std::expected<std::unique_ptr<http_server>, std::string> start(const admin_options& opts,
                                                                                      unsigned workers,
                                                                                      worker_handler on_worker,
                                                                                      io_handler on_io);

  // On a worker thread of some http_server: its index in [0, workers), stable for the thread's life.
  // nullopt on any other thread.
  [[nodiscard]] static std::optional<unsigned> current_worker() noexcept;

  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;
  ~http_server();

  [[nodiscard]] std::uint16_t port() const noexcept;
  [[nodiscard]] stats snapshot() const noexcept;
  void stop();

  struct core;

 private:
  explicit http_server(std::unique_ptr<core> c);
  std::unique_ptr<core> _core;
};

}  // namespace switchboard::admin
