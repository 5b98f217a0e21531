// Request signing for everything the broker sends to applications (webhooks, delegates, telephony
// instruction fetches and status callbacks, usage triggers): DESIGN.md "Sinks".
//
//   Switchboard-Signature: t=<unix seconds>,v1=<lowercase hex HMAC-SHA256(secret, "<t>.<body>")>
//
// A receiver recomputes the HMAC over the timestamp it was given, a '.', and the raw body bytes,
// compares in constant time, and rejects a timestamp too far from its clock (replay window; verify()
// takes the tolerance). Several v1= values may appear (e.g. during a secret rotation); verify()
// accepts the header when any of them matches.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace switchboard::http_client {

inline constexpr std::string_view signature_header = "Switchboard-Signature";

// Lowercase hex of HMAC-SHA256(secret, "<unix_time>.<body>").
[[nodiscard]] std::string signature_hmac(std::string_view secret, std::int64_t unix_time, std::string_view body);

// The header value "t=<unix_time>,v1=<hmac>".
[[nodiscard]] std::string sign(std::string_view secret, std::int64_t unix_time, std::string_view body);

enum class verify_result : std::uint8_t { ok, malformed, bad_signature, stale };

// Checks a received header value against `body`: malformed (no t= or no v1=), stale (|now - t| >
// tolerance_s), bad_signature (no v1= matches), or ok. Constant-time comparison.
[[nodiscard]] verify_result verify(std::string_view header_value, std::string_view secret, std::string_view body,
                                   std::int64_t now_unix, std::int64_t tolerance_s = 300);

}  // namespace switchboard::http_client
