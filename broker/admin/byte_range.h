// The HTTP `Range` request header (RFC 9110 §14.2) for one representation of known size, as a
// static-file server needs it: a single byte range, or "serve the whole", or "416".
//
// Operation: `bytes=FIRST-LAST`, `bytes=FIRST-` and `bytes=-SUFFIX` are understood (whitespace
// around the range tolerated). Following RFC 9110 a server may ignore a Range it does not support,
// so an unparsable header, another unit, or several ranges (`bytes=0-1,5-6`) give `whole` (200 with
// the full body), never an error. A syntactically valid single range that selects nothing
// (FIRST >= size, or a zero SUFFIX) gives `unsatisfiable` (416). LAST beyond the end is clamped.
//
// Concurrency: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

namespace switchboard::admin {

struct byte_range_request {
  enum class kind : std::uint8_t { whole, partial, unsatisfiable };
  kind what = kind::whole;
  // partial only: the selected bytes [first, last], inclusive, first <= last < size.
  std::uint64_t first = 0;
  std::uint64_t last = 0;
};

// Interprets the value of a Range header (`header` = "" when absent) for a body of `size` bytes.
[[nodiscard]] byte_range_request parse_byte_range(std::string_view header, std::uint64_t size) noexcept;

// `s` without the optional whitespace (spaces and tabs, RFC 9110 §5.6.3) at either end; shared by
// the header parsers of static-file responses (Range, If-None-Match, If-Range).
[[nodiscard]] std::string_view trim_ows(std::string_view s) noexcept;

}  // namespace switchboard::admin
