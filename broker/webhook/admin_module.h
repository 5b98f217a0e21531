// The webhook endpoints of the admin API (docs/WEBHOOKS.md, "Admin API"), as a route module that
// broker/server passes to admin_server::start:
//
//   GET    /v1/webhooks/sinks                          every sink seen since start, with its breaker
//   GET    /v1/webhooks/dead-letters[?channel=NAME]    the webhook dead letters (oldest first)
//   POST   /v1/webhooks/dead-letters/{id}/redrive      202: queued for delivery
//   DELETE /v1/webhooks/dead-letters/{id}              204
//
// Every route needs the admin scope (403 forbidden). Errors: 404 not_found, 405 method_not_allowed,
// 409 conflict, 503 unavailable, 500 store_failed, as {"error":{"code","message"}}.
//
// Thread-safety: the handler runs on admin request workers (it reads and writes the store), any
// number at once; the dispatcher's calls are thread-safe. The dispatcher must outlive the module.
#pragma once

#include "broker/admin/route_module.h"
#include "broker/webhook/dispatcher.h"

namespace switchboard::webhook {

[[nodiscard]] admin::route_module make_admin_module(dispatcher& d);

// The JSON of GET /v1/webhooks/sinks.
[[nodiscard]] std::string sinks_json(const std::vector<sink_status>& sinks);

}  // namespace switchboard::webhook
