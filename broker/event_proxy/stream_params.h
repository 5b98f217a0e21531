// What a `GET /v1/stream` request asks for, read and checked from its query and headers before
// anything is subscribed (docs/STREAMING.md, "Parameters"), and the CORS answer for its Origin.
// Everything here comes from the network: parse_stream_params is a fuzz target
// (tests/fuzz/stream_params_fuzz.cc).
//
// Thread-safety: pure functions (simdjson parsers are per thread).
#pragma once

#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/admin/control.h"
#include "broker/admin/http_message.h"
#include "client/cloudevent/cloudevent.h"

namespace switchboard::event_proxy {

struct stream_params {
  std::string pattern;  // valid (router::validate_pattern)
  // The `filter` parameter re-serialised (minified) by a JSON parser, so that it is exactly one
  // JSON value and can be spliced into the SUB options as "filter":<it>; "" = no filter. Its
  // meaning (pipeline/filter.h syntax) is checked by the broker.
  std::string filter_json;
  // From the Last-Event-ID header or else the `lastEventId` query parameter; its channel is a
  // valid channel name matching `pattern`.
  std::optional<cloudevent::position> resume_from;
  std::string ticket;  // the `ticket` parameter, "" when absent
};

// The parameters of `req`, or the error answered (exact messages, asserted by the tests):
//   400 missing_parameter  "pattern is required"
//   400 invalid_pattern    router::validate_pattern's message
//   400 invalid_filter     "filter is not valid JSON: <simdjson's message>"
//   400 invalid_last_event_id "Last-Event-ID must be <channel>@<16 hex digits>:<seq>, as sent in id:"
//   400 invalid_last_event_id "Last-Event-ID names channel \"C\", which pattern \"P\" does not match"
//   400 invalid_parameter  "malformed percent-escape in parameter <name>"
[[nodiscard]] std::expected<stream_params, admin::api_error> parse_stream_params(
    const admin::http_request& req);

// The Access-Control-Allow-Origin value for a request with `origin` (its Origin header, "" when
// absent): `origin` itself when it is listed (or "*" is listed), else nullopt (no CORS headers).
[[nodiscard]] std::optional<std::string> allowed_origin(std::string_view origin,
                                                        const std::vector<std::string>& allowed);

}  // namespace switchboard::event_proxy
