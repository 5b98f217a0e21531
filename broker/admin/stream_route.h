// A streaming endpoint of the admin API, registered by another broker component through
// admin_server::start (the event proxy's `GET /v1/stream` Server-Sent Events endpoint,
// broker/event_proxy, is the user). The admin API matches the path, authenticates the caller (the
// bearer header; for `browser_auth` routes also a `token` query parameter, or not at all, see
// below), then calls `open` on a request worker thread; `open` checks scopes and the tenant rule
// itself and answers with either a streamed response (http_response::stream set, e.g. content type
// "text/event-stream") or a plain one. An open stream holds no thread: chunks pushed from any
// thread are written by the io thread.
#pragma once

#include <expected>
#include <functional>
#include <string>

#include "broker/admin/control.h"
#include "broker/admin/http_message.h"
#include "broker/auth/auth.h"

namespace switchboard::admin {

struct stream_request {
  const http_request& request;  // method (GET, HEAD, or OPTIONS for browser_auth), target, headers
  // The authenticated caller (anonymous when authentication is off). When `authenticated` is
  // false: a principal named "unauthenticated" with no scope and tenant "", never to be trusted.
  const auth::principal& who;
  // False only for browser_auth routes, when the request carried neither an Authorization header
  // nor a `token` query parameter (or is an OPTIONS preflight): `open` must authenticate it itself
  // (e.g. a signed ticket) or answer 401.
  bool authenticated = true;
};

// Runs on an admin worker thread (admin_server::current_worker() is set; it may call `control` and
// block briefly, like any request). An error is answered as {"error":…} with its status.
using stream_handler = std::function<std::expected<http_response, api_error>(const stream_request&)>;

struct stream_route {
  std::string path;  // exact, not percent-decoded, e.g. "/v1/stream"; GET and HEAD only (else 405)
  stream_handler open;
  // For browsers, whose EventSource can send no header. false (the default): the bearer header is
  // required, as on every API route. true:
  //  - a request with an Authorization header is authenticated from it, as usual;
  //  - else a `token` query parameter is authenticated like a bearer token (401 invalid token when
  //    wrong). Trade-off: a token in a URL ends up in access logs and browser history; prefer a
  //    short-lived signed ticket, which `open` checks itself;
  //  - else `open` is called with stream_request::authenticated false;
  //  - OPTIONS (a CORS preflight, which never carries credentials) is allowed too and passed to
  //    `open` with authenticated false, so the route can answer its CORS headers.
  bool browser_auth = false;
};

}  // namespace switchboard::admin
