// A streaming endpoint of the admin API, registered by another broker component through
// admin_server::start (the pipeline's `GET /v1/stream` Server-Sent Events endpoint is the intended
// user). The admin API matches the path, authenticates the bearer token, then calls `open` on a
// request worker thread; `open` checks scopes and the tenant rule itself and answers with either a
// streamed response (http_response::stream set, e.g. content type "text/event-stream") or a plain
// one. An open stream holds no thread: chunks pushed from any thread are written by the io thread.
#pragma once

#include <expected>
#include <functional>
#include <string>

#include "broker/admin/control.h"
#include "broker/admin/http_message.h"
#include "broker/auth/auth.h"

namespace switchboard::admin {

struct stream_request {
  const http_request& request;  // method (GET or HEAD), target and headers; the body is empty
  const auth::principal& who;   // the authenticated caller (anonymous when authentication is off)
};

// Runs on an admin worker thread (admin_server::current_worker() is set; it may call `control` and
// block briefly, like any request). An error is answered as {"error":…} with its status.
using stream_handler = std::function<std::expected<http_response, api_error>(const stream_request&)>;

struct stream_route {
  std::string path;  // exact, not percent-decoded, e.g. "/v1/stream"; GET and HEAD only (else 405)
  stream_handler open;
};

}  // namespace switchboard::admin
