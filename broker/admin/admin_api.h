// The admin API's request handling (docs/ADMIN_API.md), independent of the network: routing, bearer
// authentication against an auth::token_table, scopes and the tenant rule, channel-name and body
// validation, and the mapping of `control` results and errors to HTTP responses. admin_server runs
// it behind the event-driven HTTP server; tests and the fuzz entry call handle() directly.
//
// Concurrency: handle() may be called from several threads at once (the tokens are an immutable
// copy; `control` is thread-safe by contract). It blocks while `control` does.
// Lifecycle: `ctl` and the routes' handlers must outlive the admin_api.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "broker/admin/control.h"
#include "broker/admin/http_message.h"
#include "broker/admin/route_module.h"
#include "broker/admin/stream_route.h"
#include "broker/auth/auth.h"

namespace switchboard::admin {

class admin_api {
 public:
  // `server_metrics` returns the HTTP server's own Prometheus lines, appended to GET /metrics.
  // `modules` are other components' endpoints (route_module.h), matched before the built-in routes.
  admin_api(const auth::token_table& tokens, control& ctl, std::vector<stream_route> streams,
            std::function<std::string()> server_metrics, std::vector<route_module> modules = {});

  // The response to `req` (the body already limited by the server). Never throws: an exception from
  // `control` or a stream handler becomes 500 internal_error. Blocks while `control` does.
  [[nodiscard]] http_response handle(const http_request& req) const;

  // GET/HEAD /healthz: answered by the io thread itself, never queued behind busy workers.
  [[nodiscard]] static bool is_health_probe(const http_request& req);
  [[nodiscard]] static http_response health();

  // For the HTTP io thread: the response when `req` is a health probe or belongs to a module that
  // runs on the io thread (route_module::on_io_thread); empty when a worker must handle it. Never
  // blocks beyond what such a module's handler does. Never throws.
  [[nodiscard]] std::optional<http_response> handle_on_io(const http_request& req) const;

 private:
  http_response dispatch(const http_request& req) const;
  // The module whose prefix matches the path of `req`, or null.
  const route_module* find_module(const http_request& req) const;
  http_response run_module(const http_request& req, const route_module& m) const;
  // A stream_route with browser_auth: authenticates from the header, a `token` query parameter, or
  // not at all (see stream_route.h), then opens it.
  http_response open_browser_stream(const http_request& req, const stream_route& route) const;

  const auth::token_table _tokens;  // immutable copy
  control& _ctl;
  const std::vector<stream_route> _streams;
  const std::function<std::string()> _server_metrics;
  const std::vector<route_module> _modules;
};

}  // namespace switchboard::admin
