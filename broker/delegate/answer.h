// What a delegate's HTTP answer means (docs/DELEGATES.md): the network-facing parser of the delegate
// stage, pure and separately tested (tests/delegate/answer_test.cc) and fuzzed
// (tests/fuzz/delegate_answer_fuzz.cc).
//
// Operation: interpret_answer() maps (status, body) to
//   200 / 201 with a JSON object body  → pass: the body without its top-level "_switchboard" member,
//                                        whose value is parsed into `metadata`
//   204                                → drop (the delegate asks for the event to go no further)
//   anything else                      → failure, with a reason that completes the sentence
//                                        `delegate "<uri>" <reason>`
// merge_objects() merges the pass payloads of a parallel list (shallow, in list order) and merge()
// the metadata (field by field, later over earlier) of either mode.
//
// Failure reasons (exact, asserted by the tests):
//   answered <status>
//   answered a body larger than <N> bytes
//   answered a body that is not a JSON object: <reason> at byte <N>     (not JSON)
//   answered a body that is not a JSON object: <simdjson's message>    (not JSON, no offset known)
//   answered a body that is not a JSON object: <type phrase>           (JSON: "an array", "a string", …)
//   answered invalid metadata: "_switchboard" must be an object
//   answered invalid metadata: "_switchboard" appears more than once
//   answered invalid metadata: unknown member "_switchboard.<key>"
//   answered invalid metadata: "_switchboard.<key>" appears more than once
//   answered invalid metadata: "_switchboard.route" must be a boolean           (publish_to_parent too)
//   answered invalid metadata: "_switchboard.webhook" must be false or an array of non-empty strings
// Keys are quoted like router::quote_name (printable ASCII), so a reason is safe in logs and JSON.
//
// Thread-safety: pure functions; each call uses its own parser (answers are small and one parse per
// delegate call is cheap next to the HTTP round trip).
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::delegate {

// Per-event switches a delegate may return in its answer's top-level "_switchboard" object. An unset
// field leaves the channel's attribute as configured.
struct metadata {
  std::optional<bool> route;              // false: skip the route stage for this event
  std::optional<bool> publish_to_parent;  // false: do not deliver on parent channels; true: do
  // Only the webhook sinks with these names run for this event ([] = none). JSON `false` means none.
  std::optional<std::vector<std::string>> webhook;

  [[nodiscard]] bool empty() const noexcept { return !route && !publish_to_parent && !webhook; }
  friend bool operator==(const metadata&, const metadata&) = default;
};

// `later`'s set fields replace `into`'s (a sequential chain in order, a parallel list in list order).
void merge(metadata& into, const metadata& later);

struct answer {
  enum class kind : std::uint8_t { pass, drop, failure } what = kind::failure;
  std::string payload;  // pass: the event, a JSON object without "_switchboard"
  metadata meta;        // pass: the parsed "_switchboard" member (empty when there was none)
  std::string reason;   // failure: see the file comment
};

// Interprets a delegate's answer. A body larger than `max_body_bytes` is a failure (the HTTP client
// normally stops it first). When the body has no "_switchboard" member the payload is the body as it
// was sent (whitespace kept); otherwise the object is re-written without it (minified).
[[nodiscard]] answer interpret_answer(int status, std::string_view body, std::size_t max_body_bytes);

// Shallow merge of JSON objects in order: members of later objects replace earlier members of the
// same key in place (the key keeps its first position, as JavaScript's Object.assign does); new keys
// are appended. Within one object a repeated key counts as a later member. Values are copied as
// minified JSON. Returns the merged object, or the index of the first input that is not a JSON object.
[[nodiscard]] std::expected<std::string, std::size_t> merge_objects(
    std::span<const std::string_view> objects);

}  // namespace switchboard::delegate
