// A webhook delivery that was given up (docs/WEBHOOKS.md, "Dead letters"): the record stored in
// store::kind::dead_letters under key "webhook/<id>", written with RapidJSON's Writer and read back
// with simdjson.
//
//   {"id","source":"webhook","channel","sink","url","event_id","epoch":"<16 hex>","seq","attempts",
//    "last_status","last_error","reason","failed_at","body"}
//
// `last_status`/`last_error` describe the last attempt; `reason` says why the delivery was given up
// ("permanent failure", "12 attempts failed", "retry budget exhausted", "sink queue full (…)",
// "broker stopping", …).
// `body` is the event payload as a JSON string; a payload that is not valid UTF-8 is stored as
// "body_base64" instead. `last_status` is 0 when no HTTP answer came (then `last_error` says why).
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace switchboard::webhook {

// Keys of webhook dead letters start with this; other writers of kind::dead_letters skip them.
inline constexpr std::string_view dead_letter_prefix = "webhook/";

struct dead_letter {
  std::string id;  // URL-safe: [0-9a-z-], at most 64 characters
  std::string channel;
  std::string sink;  // the sink's name within its channel
  std::string url;
  std::string event_id;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  std::uint32_t attempts = 0;
  int last_status = 0;
  std::string last_error;  // empty when no attempt was made
  std::string reason;
  std::string failed_at;  // RFC 3339 UTC with milliseconds, "2025-01-31T12:00:00.123Z"
  std::string body;

  friend bool operator==(const dead_letter&, const dead_letter&) = default;
};

// A new id: 16 hex digits of the time in ns, '-', 8 hex digits of `salt` (unique per process run
// when the caller counts).
[[nodiscard]] std::string new_dead_letter_id(std::chrono::system_clock::time_point now, std::uint64_t salt);

// True for a string new_dead_letter_id() could have made (or any [0-9A-Za-z_-]{1,64}): what the
// admin API accepts in a path before looking it up.
[[nodiscard]] bool is_dead_letter_id(std::string_view id) noexcept;

[[nodiscard]] std::string format_failed_at(std::chrono::system_clock::time_point at);

// The stored JSON of `d`.
[[nodiscard]] std::string to_json(const dead_letter& d);

// Reads a stored record back. Fails with one line naming the first missing or mistyped field.
[[nodiscard]] std::expected<dead_letter, std::string> parse_dead_letter(std::string_view json);

}  // namespace switchboard::webhook
