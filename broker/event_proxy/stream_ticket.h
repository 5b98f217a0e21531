// Stream tickets: short-lived, signed permissions to open one Server-Sent Events stream, for
// browsers, whose EventSource can send no Authorization header (docs/STREAMING.md). An application
// backend holding a bearer token asks `POST /v1/stream/tickets {"pattern":…}` and hands the ticket
// to the page, which opens `GET /v1/stream?pattern=…&ticket=…`; the token itself never reaches the
// browser or a URL.
//
// Text form (URL-safe, no escaping needed):
//   v1.<expires_at unix seconds>.<hex(principal name)>.<hex(tenant)>.<hex HMAC-SHA256>
// The HMAC (key: 32 random bytes per broker process, so tickets die with the process) covers the
// expiry, the principal's name and tenant and the pattern the ticket was issued for, so a ticket
// opens only that pattern, only until it expires, and cannot be altered. It carries the subscribe
// right only (issued only to principals that have it).
//
// Thread-safety: a ticket_signer is immutable after construction; its members may be called from
// any thread. parse_ticket is pure.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "broker/auth/auth.h"

namespace switchboard::event_proxy {

// The fields of a ticket's text, not yet verified.
struct ticket_fields {
  std::int64_t expires_at = 0;  // unix seconds
  std::string name;             // principal name
  std::string tenant;
  std::string mac;  // 64 lower-case hex digits
};

// The fields of `text`, or nullopt when it is not a well-formed v1 ticket (no signature check).
// Bounded: a text over 2048 bytes is refused.
[[nodiscard]] std::optional<ticket_fields> parse_ticket(std::string_view text);

class ticket_signer {
 public:
  // A fresh random key (OpenSSL RAND_bytes). Throws std::runtime_error if no randomness is
  // available (start-up only).
  ticket_signer();
  // A given key (tests).
  explicit ticket_signer(const std::array<unsigned char, 32>& key) : _key(key) {}

  // The ticket text for `who` (its name and tenant) and `pattern`, valid until `expires_at`.
  [[nodiscard]] std::string issue(const auth::principal& who, std::string_view pattern,
                                  std::int64_t expires_at) const;

  // The principal the ticket stands for (name, tenant, subscribe scope only) when `text` is a
  // well-formed ticket signed by this signer for `pattern` and `now` <= expires_at. Else one of the
  // exact messages: "malformed ticket", "ticket signature does not match this pattern or broker",
  // "ticket expired".
  [[nodiscard]] std::expected<auth::principal, std::string> verify(std::string_view text,
                                                                   std::string_view pattern,
                                                                   std::int64_t now) const;

 private:
  [[nodiscard]] std::string mac(std::int64_t expires_at, std::string_view name, std::string_view tenant,
                                std::string_view pattern) const;

  std::array<unsigned char, 32> _key{};
};

}  // namespace switchboard::event_proxy
