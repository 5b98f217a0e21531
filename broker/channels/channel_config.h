// The configuration attributes of one channel or pattern (DESIGN.md, "Channel configuration
// attributes"): the typed value, its JSON form, and PATCH semantics.
//
// Every attribute is optional; an unset attribute is inherited (from the most specific matching
// pattern, else from the built-in default; see config_registry.h). The JSON form is an object
// whose keys are the attribute names below; `to_json` writes only the attributes that are set.
//
//   durable            bool
//   retention          {"max_age": duration, "max_events": uint, "max_bytes": uint}; each field
//                      optional, absent = no limit of that kind. The object is one attribute: a
//                      channel that sets `retention` replaces the inherited object as a whole.
//   slow_consumer      "disconnect" | "drop_oldest" | "conflate" | "spill"
//   conflate_key       non-empty string; required in the same config when slow_consumer is
//                      "conflate" (so the effective key always exists when conflation applies)
//   dedupe_window      duration; 0 disables de-duplication
//   max_payload_bytes  uint
//   permissions        {"publish": [name…], "subscribe": [name…]}; a name is a tenant or token
//                      name, "*" means anyone. A list that is absent means ["*"]; an empty list
//                      means nobody. The object is one attribute (replaced as a whole).
// Processing attributes (the channel's pipeline, docs/PIPELINE.md; the router runs them):
//   validate           broker/pipeline/validate.h's spec, e.g. {"required": {"sid": "string"}};
//                      `schema` is accepted as its older name (giving both is an error)
//   translate          broker/pipeline/translate.h's spec (compiled when parsed: its errors are
//                      422 with that header's messages)
//   delegate           {"uris": [http(s) url…] (required, non-empty), "mode": "sequential" (default)
//                      | "parallel", "timeout_ms": 1..60000, "on_failure": "pass" (default) | "drop"
//                      | "dead_letter", "secret": string}
//   route              [channel…]; each passes router::validate_channel
//   webhook            [{"name", "url" (http/https), "secret"?, "headers"? {name: value},
//                      "max_in_flight"? 1..1024, "timeout_ms"? 1..300000}…]; names unique. The older
//                      form {"uris": […], "secret"} is read as sinks named "0", "1", …
//   publish_to_parent  bool
//   order              [stage…], stages from validate, translate, delegate, route, webhook,
//                      publish_to_parent, each at most once
//
// uint: a JSON integer in [0, 2^64). duration: a non-negative JSON integer of seconds, or a string
// `<digits><unit>` with unit ms, s, m, h or d ("500ms", "90s", "30m", "24h", "7d"); stored in
// milliseconds, at most 2^63-1 ms. `to_json` writes a duration as a string in the largest unit that
// represents it exactly, so "24h" is written back as "1d" (the same number of milliseconds).
// Arrays of names or URIs hold non-empty strings. A key may appear only once per object.
//
// Errors (config_error: http_status, code, message; messages are exact and asserted by
// tests/channels/channel_config_test.cc). <path> is the attribute path, e.g. `retention.max_age`,
// `order[2]` (0-based index):
//   400 invalid_json       invalid JSON at byte <N>: <reason>        (N: 0-based byte offset)
//                          invalid JSON: <simdjson's message>        (when no offset is known, e.g.
//                                                                     a number out of range)
//   400 invalid_json       config must be a JSON object
//   422 unknown_attribute  unknown attribute "<path>"
//   422 invalid_attribute  attribute "<path>" must be a boolean
//                          attribute "<path>" must be a non-negative integer
//                          attribute "<path>" must be a duration (non-negative integer seconds or
//                            a string such as "500ms", "90s", "30m", "24h")
//                          attribute "<path>" is out of range
//                          attribute "<path>" must be an object
//                          attribute "<path>" must be a non-empty string
//                          attribute "<path>" must be a string
//                          attribute "<path>" must be an array of non-empty strings
//                          attribute "slow_consumer" must be one of disconnect, drop_oldest, conflate, spill
//                          attribute "delegate.mode" must be one of sequential, parallel
//                          attribute "order" must be an array
//                          attribute "order[<i>]" must be one of validate, translate, delegate, route, webhook, publish_to_parent
//                          attribute "order[<i>]" repeats stage "<stage>"
//                          attribute "route" must be an array
//                          attribute "route[<i>]" must be a channel name                (not a string)
//                          attribute "route[<i>]" must be a channel name: <router::validate_channel message>
//                          attribute "<path>" is required
//                          attribute "<path>" appears more than once
//                          attribute "conflate_key" is required when slow_consumer is "conflate"
//                          attribute "<path>" is null; null unsets an attribute only in a patch
// Exactly one error is reported: the first found scanning the document in order; the conflate
// rule is checked after the whole document. Names in messages are quoted like topic.h does
// (printable ASCII only), so a message is always safe to put in a JSON error body.
//
// Thread-safety: all functions are pure (each parse uses its own parser) and may be called from any
// thread. channel_config is a plain value type.
#pragma once

#include <bitset>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::channels {

// Why a config (or a channel name given with one) was rejected. `http_status` is what the admin
// API answers (400 or 422); `code` is the stable error code of the JSON error body; `message` is
// one line of printable ASCII.
struct config_error {
  int http_status = 0;
  std::string code;
  std::string message;

  friend bool operator==(const config_error&, const config_error&) = default;
};

// The top-level attributes, in canonical (to_json) order.
enum class attribute : std::uint8_t {
  durable,
  retention,
  slow_consumer,
  conflate_key,
  dedupe_window,
  max_payload_bytes,
  permissions,
  validate,
  translate,
  delegate,
  route,
  webhook,
  publish_to_parent,
  order,
};
inline constexpr std::size_t attribute_count = 14;

// The JSON name of `a` ("slow_consumer", …).
[[nodiscard]] std::string_view attribute_name(attribute a) noexcept;
// The attribute called `name`, or nullopt.
[[nodiscard]] std::optional<attribute> attribute_from_name(std::string_view name) noexcept;

enum class slow_consumer_policy : std::uint8_t { disconnect, drop_oldest, conflate, spill };
enum class delegate_mode : std::uint8_t { sequential, parallel };
enum class stage : std::uint8_t { validate, translate, delegate, route, webhook, publish_to_parent };

// JSON names: "drop_oldest", "parallel", "publish_to_parent", …
[[nodiscard]] std::string_view to_string(slow_consumer_policy p) noexcept;
[[nodiscard]] std::string_view to_string(delegate_mode m) noexcept;
[[nodiscard]] std::string_view to_string(stage s) noexcept;

// Retention limits of a durable channel's log; an unset field means no limit of that kind.
struct retention_policy {
  std::optional<std::chrono::milliseconds> max_age;
  std::optional<std::uint64_t> max_events;
  std::optional<std::uint64_t> max_bytes;

  friend bool operator==(const retention_policy&, const retention_policy&) = default;
};

// Who may publish / subscribe: tenant or token names; "*" is anyone, an empty list is nobody.
struct permission_lists {
  std::vector<std::string> publish{"*"};
  std::vector<std::string> subscribe{"*"};

  // True when `principal` (a tenant or token name) is listed, or the list holds "*".
  [[nodiscard]] bool may_publish(std::string_view principal) const noexcept;
  [[nodiscard]] bool may_subscribe(std::string_view principal) const noexcept;

  friend bool operator==(const permission_lists&, const permission_lists&) = default;
};

// The validate stage's spec (broker/pipeline/validate.h), minified; it compiled when parsed.
struct validate_spec {
  std::string json;

  friend bool operator==(const validate_spec&, const validate_spec&) = default;
};

// The translate stage's spec (broker/pipeline/translate.h), minified; it compiled when parsed.
struct translate_spec {
  std::string json;

  friend bool operator==(const translate_spec&, const translate_spec&) = default;
};

enum class failure_policy : std::uint8_t { pass, drop, dead_letter };

struct delegate_spec {
  std::vector<std::string> uris;  // http:// or https://
  delegate_mode mode = delegate_mode::sequential;
  std::optional<std::uint64_t> timeout_ms;  // per delegate call, 1..60000; unset = 2000
  failure_policy on_failure = failure_policy::pass;
  std::optional<std::string> secret;  // signs the requests; to_json writes it (redaction is the caller's job)

  friend bool operator==(const delegate_spec&, const delegate_spec&) = default;
};

struct webhook_sink {
  std::string name;  // unique within the attribute
  std::string url;   // http:// or https://
  std::optional<std::string> secret;  // HMAC key; to_json writes it (redaction is the caller's job)
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::uint64_t> max_in_flight;  // 1..1024; unset = the dispatcher's default
  std::optional<std::uint64_t> timeout_ms;     // 1..300000; unset = the dispatcher's default

  friend bool operator==(const webhook_sink&, const webhook_sink&) = default;
};

struct webhook_spec {
  std::vector<webhook_sink> sinks;

  friend bool operator==(const webhook_spec&, const webhook_spec&) = default;
};

// The order stages run in when a config does not say (the order of the enum).
[[nodiscard]] std::vector<stage> default_stage_order();

using attribute_set = std::bitset<attribute_count>;

// The config of one channel or pattern. Unset = inherit.
struct channel_config {
  std::optional<bool> durable;
  std::optional<retention_policy> retention;
  std::optional<slow_consumer_policy> slow_consumer;
  std::optional<std::string> conflate_key;
  std::optional<std::chrono::milliseconds> dedupe_window;
  std::optional<std::uint64_t> max_payload_bytes;
  std::optional<permission_lists> permissions;
  std::optional<validate_spec> validate;
  std::optional<translate_spec> translate;
  std::optional<delegate_spec> delegate;
  std::optional<std::vector<std::string>> route;
  std::optional<webhook_spec> webhook;
  std::optional<bool> publish_to_parent;
  std::optional<std::vector<stage>> order;

  // Patch only: attributes given as JSON null, which merge_patch unsets. Always empty in a config
  // parsed with parse_mode::full, in a merge_patch result and in a registry.
  attribute_set cleared;

  // True when attribute `a` holds a value (cleared is not consulted).
  [[nodiscard]] bool has(attribute a) const noexcept;
  // Unsets attribute `a` (and removes it from `cleared`).
  void reset(attribute a) noexcept;
  // Sets attribute `a` to `from`'s value of it (unset if `from` has none).
  void assign(attribute a, const channel_config& from);
  // True when no attribute is set and none is cleared.
  [[nodiscard]] bool empty() const noexcept;

  friend bool operator==(const channel_config&, const channel_config&) = default;
};

enum class parse_mode : std::uint8_t {
  full,   // a whole config (PUT): null is an error
  patch,  // a PATCH body: null marks the attribute in `cleared`; the conflate rule is not checked
          // (merge_patch checks it on the result)
};

// Parses and validates a config. Returns the config, or the first error (see the table above).
// Allocates; does not block.
[[nodiscard]] std::expected<channel_config, config_error> parse_config(std::string_view json,
                                                                       parse_mode mode = parse_mode::full);

// Checks the rules a typed config must satisfy to be stored (used by parse_config in full mode,
// merge_patch and config_registry::put, so configs built in code are held to the same rules):
// no attribute cleared, the conflate rule, non-empty conflate_key/names/URIs, valid route channel
// names, order without repeats. Returns nothing or the first 422 invalid_attribute error.
[[nodiscard]] std::expected<void, config_error> validate_config(const channel_config& config);

// The JSON object of `config`: set attributes in canonical order, cleared ones as null (so a patch
// round-trips through parse_config(…, parse_mode::patch)). Never fails.
[[nodiscard]] std::string to_json(const channel_config& config);

// PATCH semantics: starts from `base`; each attribute set in `patch` replaces base's; each
// attribute in patch.cleared is unset; the others are kept. Returns the result (cleared empty) or,
// if it breaks validate_config (e.g. slow_consumer "conflate" left without conflate_key), that error.
[[nodiscard]] std::expected<channel_config, config_error> merge_patch(const channel_config& base,
                                                                      const channel_config& patch);

// Duration helpers, exposed for tests and the admin API. parse_duration accepts the string forms
// above ("500ms", "90s", "30m", "24h", "7d"); nullopt on bad syntax or overflow.
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) noexcept;
// The largest exact unit: 1500 ms -> "1500ms", 90000 ms -> "90s", 86400000 ms -> "1d", 0 -> "0s".
[[nodiscard]] std::string format_duration(std::chrono::milliseconds d);

}  // namespace switchboard::channels
