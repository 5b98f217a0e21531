// A channel's `delegate` attribute (DESIGN.md "Channel configuration attributes", docs/DELEGATES.md):
// the typed value and its JSON form.
//
//   {"uris": ["https://enrich.example/v1", …],   required, non-empty; each an http:// or https:// URL
//    "mode": "sequential" | "parallel",          default "sequential"
//    "timeout_ms": 1..60000,                     default 2000; per delegate call
//    "on_failure": "pass" | "drop" | "dead_letter",  default "pass"
//    "secret": string}                           default "" = requests are not signed
//
// Errors (`error`: code, message; exact, asserted by tests/delegate/config_test.cc). The wording is
// channel_config.h's; paths start with `delegate.`:
//   invalid_json       invalid JSON at byte <N>: <reason>
//                      invalid JSON: <simdjson's message>           (no offset known)
//   invalid_attribute  attribute "delegate" must be an object
//   unknown_attribute  unknown attribute "delegate.<key>"
//   invalid_attribute  attribute "delegate.<key>" appears more than once
//                      attribute "delegate.uris" is required
//                      attribute "delegate.uris" must be an array
//                      attribute "delegate.uris" must not be empty
//                      attribute "delegate.uris[<i>]" must be an http:// or https:// URL
//                      attribute "delegate.mode" must be one of sequential, parallel
//                      attribute "delegate.timeout_ms" must be a non-negative integer
//                      attribute "delegate.timeout_ms" must be between 1 and 60000
//                      attribute "delegate.on_failure" must be one of pass, drop, dead_letter
//                      attribute "delegate.secret" must be a string
// The first error found scanning the document in order is reported. The admin API answers
// invalid_json with 400 and the others with 422, as for channel_config's errors.
//
// Thread-safety: pure functions (each parse uses its own parser); `config` is a plain value, shared
// between threads as std::shared_ptr<const config>.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::delegate {

// Sequential: each delegate receives the previous one's output, in list order. Parallel: every
// delegate receives the same input at once; their answers are merged in list order.
enum class mode : std::uint8_t { sequential, parallel };

// What happens to an event when a delegate fails (timeout, connect failure, a status other than
// 200/201/204, a body that is not a JSON object, invalid metadata):
//   pass         continue with the event as it was before that delegate (sequential: the next
//                delegate gets it); the failure is still reported and counted
//   drop         the event goes no further
//   dead_letter  the event goes no further and is stored as a dead letter
enum class failure_policy : std::uint8_t { pass, drop, dead_letter };

inline constexpr std::chrono::milliseconds min_timeout{1};
inline constexpr std::chrono::milliseconds max_timeout{60000};

struct config {
  std::vector<std::string> uris;  // called in this order (parallel: merged in this order)
  mode how = mode::sequential;
  // Per delegate call, from submit to the last byte of the answer. A sequential list of N delegates
  // may take N times this; a parallel one about this once.
  std::chrono::milliseconds timeout{2000};
  failure_policy on_failure = failure_policy::pass;
  std::string secret;  // HMAC-SHA256 key for Switchboard-Signature; empty: requests are unsigned
  // Largest answer body accepted (and largest merged answer in parallel mode); larger is a failure.
  // Not part of the JSON form: the router passes the channel's max_payload_bytes.
  std::size_t max_response_bytes = 1 << 20;

  friend bool operator==(const config&, const config&) = default;
};

struct error {
  std::string code;     // "invalid_json", "invalid_attribute" or "unknown_attribute"
  std::string message;  // one line of printable ASCII (names quoted like router::quote_name)

  friend bool operator==(const error&, const error&) = default;
};

// JSON names: "sequential", "dead_letter", …
[[nodiscard]] std::string_view to_string(mode m) noexcept;
[[nodiscard]] std::string_view to_string(failure_policy p) noexcept;

// Parses and validates the attribute's JSON (see the file comment). Returns the config (with the
// default max_response_bytes) or the first error. Allocates; does not block.
[[nodiscard]] std::expected<config, error> parse_config(std::string_view json);

// The attribute's JSON: uris, mode, timeout_ms and on_failure always, secret when non-empty (the
// caller redacts it where needed). parse_config(to_json(c)) gives back `c` (but max_response_bytes).
[[nodiscard]] std::string to_json(const config& c);

// True for an absolute http:// or https:// URL (scheme in any case) with a non-empty host and no
// whitespace or control characters: what parse_config accepts in `uris`.
[[nodiscard]] bool is_http_url(std::string_view uri) noexcept;

}  // namespace switchboard::delegate
