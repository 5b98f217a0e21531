// The admin HTTP API (docs/ADMIN_API.md): cpp-httplib on its own listener thread plus a fixed pool of
// `worker_threads` request workers. It parses requests, authenticates bearer tokens against an
// auth::token_table, checks scopes and the tenant rule, validates channel names, and maps results and
// errors to HTTP; everything else goes through `control` (implemented by broker/server).
//
// Operation: one listener thread accepts connections and hands each to the worker pool (httplib's
// ThreadPool with exactly `worker_threads` threads, so the broker can register one router producer
// per worker). A keep-alive connection holds its worker until it goes idle (keep-alive timeout 2 s),
// so at most `worker_threads` connections are served at once; further ones queue.
// Every error is `{"error":{"code":…,"message":…}}`; every JSON response is written with RapidJSON's
// Writer. Bodies above admin_options::max_body_bytes get 413 payload_too_large before any handler
// (and so before authentication) runs.
//
// Lifecycle: start() binds, starts the threads and returns once the listener accepts connections;
// stop() stops accepting, lets in-flight requests finish, joins; idempotent. The destructor calls stop().
// Thread-safety: all members may be called from any thread. `control` is called concurrently from the
// worker threads and must outlive the server.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>

#include "broker/admin/control.h"
#include "broker/auth/auth.h"

namespace switchboard::admin {

struct admin_options {
  // Address to listen on. 127.0.0.1 keeps the API off the network; "0.0.0.0" (or "::") exposes it,
  // which then relies entirely on the bearer tokens (no TLS here: put a proxy in front).
  std::string bind = "127.0.0.1";
  // TCP port; 0 picks a free one (tests), see admin_server::port().
  std::uint16_t port = 7401;
  // Largest request body accepted; larger ones get 413 payload_too_large. The broker sets it to
  // max_payload_bytes + 64 KiB so that any publishable payload fits; larger = more memory per request.
  std::size_t max_body_bytes = (std::size_t{1} << 20) + 64 * 1024;
};

class admin_server {
 public:
  // Request worker threads (fixed). The broker registers one router producer per worker.
  static constexpr unsigned worker_threads = 4;

  // On an admin worker thread (i.e. inside a `control` call made by this API): its index in
  // [0, worker_threads), unique among the workers of one admin_server and stable for the thread's
  // life. nullopt on any other thread. Use it to pick the worker's own router producer.
  [[nodiscard]] static std::optional<unsigned> current_worker() noexcept;

  // Binds `opts.bind:opts.port` and starts serving. `tokens` is copied; `ctl` is borrowed and must
  // outlive the server. Returns the running server, or a one-line message when binding fails.
  [[nodiscard]] static std::expected<std::unique_ptr<admin_server>, std::string> start(admin_options opts,
                                                                                       const auth::token_table& tokens,
                                                                                       control& ctl);

  admin_server(const admin_server&) = delete;
  admin_server& operator=(const admin_server&) = delete;
  ~admin_server();

  // The port actually bound (the chosen one when admin_options::port was 0).
  [[nodiscard]] std::uint16_t port() const noexcept;
  // "http://HOST:PORT" for clients on this machine: 127.0.0.1 (or [::1]) when bound to every address.
  [[nodiscard]] std::string url() const;
  // Prometheus text for the API's own counters (switchboard_admin_requests_total by status class).
  // The /metrics handler already appends it after control::metrics().
  [[nodiscard]] std::string metrics_text() const;
  // Stops accepting, finishes in-flight requests, joins the threads. Idempotent.
  void stop();

  struct impl;

 private:
  explicit admin_server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> _impl;
};

}  // namespace switchboard::admin
