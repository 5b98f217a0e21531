// The admin HTTP API (docs/ADMIN_API.md): admin_api's routing, authentication and validation served
// by an event-driven HTTP server (http_server: Boost.Beast on Asio). Everything beyond HTTP goes
// through `control` (implemented by broker/server).
//
// Operation: one io thread owns every socket (accept, reads under header/body/idle timeouts, writes,
// streamed responses, file bodies by sendfile); a slow, idle or streaming client costs a socket, not
// a thread. GET /healthz and io-thread route modules (route_module::on_io_thread, e.g. /media/<id>)
// are answered by the io thread itself. Every other request, once read whole, runs on one of exactly
// `worker_threads` request workers (so the broker can register one router producer per worker), and
// the response goes back to the io thread to be written. Limits (admin_options): max_connections,
// max_header_bytes, max_body_bytes (413 payload_too_large before authentication), and the timeouts.
// Every error is `{"error":{"code":…,"message":…}}`.
//
// Lifecycle: start() binds (exclusively: a port in use is an error) and returns once the listener
// accepts connections; stop() stops accepting, closes idle connections and streams, lets in-flight
// requests finish, joins; idempotent. The destructor calls stop().
// Thread-safety: all members may be called from any thread. `control` and the stream routes'
// handlers are called concurrently from the worker threads and must outlive the server.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/admin/admin_options.h"
#include "broker/admin/control.h"
#include "broker/admin/route_module.h"
#include "broker/admin/stream_route.h"
#include "broker/auth/auth.h"

namespace switchboard::admin {

class admin_server {
 public:
  // Request worker threads (fixed). The broker registers one router producer per worker.
  static constexpr unsigned worker_threads = 4;

  // On an admin worker thread (i.e. inside a `control` call made by this API): its index in
  // [0, worker_threads), unique among the workers of one admin_server and stable for the thread's
  // life. nullopt on any other thread (the io thread included). Use it to pick the worker's own
  // router producer.
  [[nodiscard]] static std::optional<unsigned> current_worker() noexcept;

  // Binds `opts.bind:opts.port` and starts serving. `tokens` is copied; `ctl` is borrowed and must
  // outlive the server. `streams` are extra streaming endpoints (see stream_route.h), matched before
  // the built-in routes; `modules` other components' endpoints by path prefix (route_module.h),
  // matched first (their handlers must outlive the server). Returns the running server, or a
  // one-line message naming the address when it cannot listen (e.g. "admin API cannot listen on
  // 127.0.0.1:7401: Address already in use (bind)").
  [[nodiscard]] static std::expected<std::unique_ptr<admin_server>, std::string> start(
      admin_options opts, const auth::token_table& tokens, control& ctl, std::vector<stream_route> streams = {},
      std::vector<route_module> modules = {});

  admin_server(const admin_server&) = delete;
  admin_server& operator=(const admin_server&) = delete;
  ~admin_server();

  // The port actually bound (the chosen one when admin_options::port was 0).
  [[nodiscard]] std::uint16_t port() const noexcept;
  // "http://HOST:PORT" for clients on this machine: 127.0.0.1 (or [::1]) when bound to every address.
  [[nodiscard]] std::string url() const;
  // Prometheus text (with HELP/TYPE lines) for the API's own counters: responses by status class,
  // open connections and streams, connections rejected by the limit, timeouts by phase. The
  // /metrics handler already appends it after control::metrics().
  [[nodiscard]] std::string metrics_text() const;
  // Stops accepting, finishes in-flight requests, joins the threads. Idempotent.
  void stop();

  struct impl;

 private:
  explicit admin_server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> _impl;
};

}  // namespace switchboard::admin
