// The definition of a durable subscription: its name, the channel pattern it consumes, a filter on
// the event payload, its ack policy and where it starts. This is what a client sends to create one
// (admin API body, or SUB options with create_if_missing) and what the consumer_manager persists.
//
// JSON form (every member but `name` and `pattern` optional):
//   {"name": "billing",                       1..128 characters of A-Z a-z 0-9 _ -
//    "pattern": "acme.calls.>",                a subscription pattern (router/topic.h)
//    "filter": {"call_sid": "CA1",             top-level payload field equals a string, integer
//               "from": {"prefix": "+44"}},    or boolean; or a string field starts with a prefix
//    "ack": {"policy": "at_least_once",        "none" (default) | "at_least_once"
//            "ack_wait_ms": 500,               >= 1, default 30000
//            "max_deliveries": 3,              >= 1, default 5
//            "max_ack_pending": 1000},         >= 1, default 1000
//    "start": "all"}                           "new" (default) | "all" | "seq:<N>" (N >= 1)
//                                              | "time:<RFC3339>", e.g. "time:2024-05-01T12:00:00Z"
//                                              | {"epoch": "<hex>", "seq": N}: resume after N of that
//                                                history (a position; the pattern must be a channel)
// A filter matches an event when every condition matches (an empty filter matches everything). An
// event whose payload is not a JSON object, or lacks the field, or holds it with another type, does
// not match.
//
// Errors (spec_error: http_status, code, message; exact text, asserted by
// tests/durable/subscription_spec_test.cc). Names in messages are quoted like router/topic.h does
// (printable ASCII only). Exactly one error is reported, the first found scanning the document in
// order; the required members are checked after the whole document.
//   400 invalid_json        invalid JSON: <simdjson's message>
//   400 invalid_json        subscription must be a JSON object
//   422 unknown_attribute   unknown attribute "<path>"                   (e.g. "ack.retries")
//   422 invalid_attribute   attribute "<path>" appears more than once
//                           attribute "name" is required
//                           attribute "pattern" is required
//                           attribute "name" must be 1 to 128 characters of A-Z, a-z, 0-9, _ and -
//                           attribute "pattern" must be a string
//                           attribute "filter" must be an object
//                           attribute "filter.<field>" must be a string, an integer, a boolean or {"prefix":
//                           string} attribute "ack" must be an object attribute "ack.policy" must be one of
//                           none, at_least_once attribute "ack.<field>" must be a positive integer    (max
//                           2^32-1) attribute "start" must be one of new, all, seq:<N>, time:<RFC3339>,
//                           or a position {"epoch": "<hex>", "seq": N}
//                           attribute "start" is a position, which names one channel's history: the
//                           pattern must be a channel name
//   422 invalid_pattern     <router::validate_pattern's message>
//
// Thread-safety: pure functions (each parse uses its own parser); subscription_spec is a value.
#pragma once

#include "broker/router/topic.h"

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace switchboard::durable {

// Why a request about durable subscriptions failed. `http_status` is what the admin API answers;
// `code` is the stable error code (JSON error bodies and protocol ERR records); `message` is one
// line of printable ASCII.
struct spec_error {
  int http_status = 0;
  std::string code;
  std::string message;

  friend bool operator==(const spec_error&, const spec_error&) = default;
};

// Longest subscription name, in characters.
inline constexpr std::size_t max_subscription_name = 128;

// Subscription names are scoped per tenant: the name NAME used by a token of tenant T is stored as
// "T/NAME" (a token of tenant "*" uses names as they are, and so can address any tenant's). So one
// tenant can neither squat a name another needs nor learn another's subscription by guessing it.
// `name` must not itself contain '/' when tenant is not "*".
[[nodiscard]] inline std::string tenant_scoped_name(std::string_view tenant, std::string_view name) {
  if (tenant == "*") return std::string(name);
  std::string out;
  out.reserve(tenant.size() + 1 + name.size());
  out.append(tenant).append("/").append(name);
  return out;
}

// One filter condition on a top-level payload field.
struct field_condition {
  enum class match : std::uint8_t { equals, prefix };
  std::string field;
  match how = match::equals;
  // equals: the field's value (string, integer or boolean); prefix: always a string.
  std::variant<std::string, std::int64_t, bool> value;

  friend bool operator==(const field_condition&, const field_condition&) = default;
};

// The conditions of a filter, sorted by field name (each field at most once); empty = everything.
using event_filter = std::vector<field_condition>;

enum class ack_policy : std::uint8_t {
  none,           // the cursor advances when an event is handed to the transport (at most once)
  at_least_once,  // the cursor advances over acknowledged events; others are redelivered
};

struct ack_options {
  ack_policy policy = ack_policy::none;
  // How long an unacked event waits before it is sent again. Short values redeliver events a slow
  // consumer is still processing; long values delay recovery from a lost event.
  std::uint32_t ack_wait_ms = 30000;
  // Deliveries (the first included) before an unacked event goes to the dead-letter store.
  std::uint32_t max_deliveries = 5;
  // Unacked events in flight per subscription (all channels together); delivery pauses at the
  // limit. Bounds memory and redelivery storms; too small limits throughput to one round trip per
  // window.
  std::uint32_t max_ack_pending = 1000;

  friend bool operator==(const ack_options&, const ack_options&) = default;
};

struct start_position {
  enum class from : std::uint8_t { new_events, all, seq, time, position };
  from kind = from::new_events;
  std::uint64_t seq = 0;      // from::seq: the first seq to deliver (>= 1); from::position: the last seen
  std::uint64_t epoch = 0;    // from::position: the history `seq` belongs to (another one: `epoch` notice)
  std::uint64_t time_ns = 0;  // from::time: deliver events published at or after this (Unix ns)
  std::string text = "new";   // the JSON form ("new", "seq:5", "time:2024-05-01T12:00:00Z", …); "" for a position

  friend bool operator==(const start_position&, const start_position&) = default;
};

struct subscription_spec {
  std::string name;
  std::string pattern;
  event_filter filter;
  ack_options ack;
  start_position start;

  friend bool operator==(const subscription_spec&, const subscription_spec&) = default;
};

// Parses and validates the JSON form above. Errors as listed in the file comment.
[[nodiscard]] std::expected<subscription_spec, spec_error> parse_spec(std::string_view json);

// The canonical JSON form: every member written (defaults included), filter fields in name order.
// parse_spec(spec_to_json(s)) == s for every spec parse_spec returned.
[[nodiscard]] std::string spec_to_json(const subscription_spec& spec);

// Parses a start position ("new", "all", "seq:N", "time:RFC3339"); false-y result on bad input.
[[nodiscard]] std::expected<start_position, spec_error> parse_start(std::string_view text);

// Names in messages are quoted by router::quote_name.
using router::quote_name;

}  // namespace switchboard::durable
