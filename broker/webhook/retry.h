// What a webhook sink's answer means for the delivery (docs/WEBHOOKS.md, "Retries"): delivered,
// retry later (after how long), or give up at once. Pure functions, so the rules are tested and
// fuzzed without a network.
//
//   2xx                      delivered
//   408, 429, 5xx            retryable; 429/503 with Retry-After wait at least that long
//   timeout, connect failure,
//   reset, …                 retryable
//   1xx, 3xx, other 4xx      permanent: dead letter at once (redirects are not followed: a signed
//                            POST is not re-sent to another address; a receiver that answered
//                            "bad request" will answer the same to the same bytes)
//
// Thread-safety: pure functions; backoff() takes the caller's random engine.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>

namespace switchboard::webhook {

enum class outcome : std::uint8_t { delivered, retry, permanent };

// The outcome of an HTTP status (a completed transfer).
[[nodiscard]] outcome classify_status(int status) noexcept;

// The wait a Retry-After value asks for, relative to `now` (RFC 9110 §10.2.3): delta-seconds
// ("120") or an HTTP-date ("Fri, 31 Dec 1999 23:59:59 GMT", also the obsolete RFC 850 and asctime
// forms). A date in the past gives zero. Empty for anything else (then normal backoff applies).
// Values are capped at one day, so a hostile header cannot overflow the arithmetic.
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

// The wait before retry number `retry` (1 = the first retry): initial * 2^(retry-1), capped at
// `max`, then lowered by a random fraction of at most `jitter` (1.0 = "full jitter": uniform in
// [0, cap]; 0 = no randomness). Never negative, never above `max`.
[[nodiscard]] std::chrono::milliseconds backoff(std::uint32_t retry, std::chrono::milliseconds initial,
                                                std::chrono::milliseconds max, double jitter,
                                                std::mt19937_64& random);

}  // namespace switchboard::webhook
