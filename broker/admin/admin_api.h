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
#include <string>
#include <vector>

#include "broker/admin/control.h"
#include "broker/admin/http_message.h"
#include "broker/admin/stream_route.h"
#include "broker/auth/auth.h"

namespace switchboard::admin {

class admin_api {
 public:
  // `server_metrics` returns the HTTP server's own Prometheus lines, appended to GET /metrics.
  admin_api(const auth::token_table& tokens, control& ctl, std::vector<stream_route> streams,
            std::function<std::string()> server_metrics);

  // The response to `req` (the body already limited by the server). Never throws: an exception from
  // `control` or a stream handler becomes 500 internal_error. Blocks while `control` does.
  [[nodiscard]] http_response handle(const http_request& req) const;

  // GET/HEAD /healthz: answered by the io thread itself, never queued behind busy workers.
  [[nodiscard]] static bool is_health_probe(const http_request& req);
  [[nodiscard]] static http_response health();

 private:
  http_response dispatch(const http_request& req) const;

  const auth::token_table _tokens;  // immutable copy
  control& _ctl;
  const std::vector<stream_route> _streams;
  const std::function<std::string()> _server_metrics;
};

}  // namespace switchboard::admin
