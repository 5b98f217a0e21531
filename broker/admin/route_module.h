// A group of endpoints that another broker component adds to the admin API under one path prefix
// (the media layer's `/v1/media` and `/media` are the first users), without the admin layer knowing
// that component: broker/server builds the modules and passes them to admin_server::start.
//
// The admin API matches a module by path prefix (before its built-in routes), answers 405 with
// `Allow` for a method the module does not list, authenticates the bearer token unless the module
// is public, then calls `handle`. The handler checks scopes itself and returns a plain response, a
// streamed one (http_response::stream) or a file (http_response::file, sent by the io thread with
// sendfile: a large body holds no thread). Its errors are answered as {"error":…} with their status.
#pragma once

#include <expected>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/admin/control.h"
#include "broker/admin/http_message.h"
#include "broker/auth/auth.h"

namespace switchboard::admin {

struct module_request {
  const http_request& request;
  // The authenticated caller (anonymous, every scope, when authentication is off). For a public
  // module: a principal named "public" with no scope and no tenant.
  const auth::principal& who;
  // The path after the module's prefix, not percent-decoded: "" or "/…" (e.g. "/u-1f0c…").
  std::string_view rest;
};

using module_handler = std::function<std::expected<http_response, api_error>(const module_request&)>;

struct route_module {
  // Matches a path equal to it or continuing with '/', e.g. "/v1/media" matches "/v1/media" and
  // "/v1/media/u-1f0c…" but not "/v1/mediax". Not percent-decoded.
  std::string prefix;
  // Methods the module answers, upper case. HEAD is allowed wherever GET is.
  std::vector<std::string> methods;
  // No bearer token needed (and none checked): for resources whose address is their secret, such
  // as unguessable content ids fetched by telephony providers.
  bool is_public = false;
  // `handle` never blocks (no disk writes, no waiting on other threads; a mutex held briefly and a
  // file open(2) are fine): it runs on the HTTP io thread itself, saving two thread hand-offs per
  // request. Otherwise it runs on a request worker, like the built-in routes.
  bool on_io_thread = false;
  module_handler handle;
  // Optional: Prometheus text (HELP/TYPE lines included) appended to GET /metrics.
  std::function<std::string()> metrics;
};

}  // namespace switchboard::admin
