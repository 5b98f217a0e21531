// Is a request body one JSON value? The admin API's syntax check for bodies it passes on
// (published events, subscription specs), safe for any input: no recursion proportional to the
// input, nesting capped at max_json_depth (simdjson's own limit, so a body accepted here is also
// accepted by the broker's simdjson parsers).
//
// Concurrency: check_json may be called from any thread (one simdjson parser per thread).
#pragma once

#include <cstddef>
#include <expected>
#include <string>
#include <string_view>

namespace switchboard::admin {

inline constexpr std::size_t max_json_depth = 1024;

// Nothing when `text` is one well-formed JSON value (UTF-8, nested at most max_json_depth deep).
// Otherwise the invalid_json message: "invalid JSON at byte N: <reason>" with N the 0-based offset
// of the first error (e.g. "invalid JSON at byte 1024: nested deeper than 1024 levels"), or
// "invalid JSON: <simdjson's reason>" when only simdjson objects (e.g. a number out of range).
// Uses O(depth) heap and constant stack. Does not block.
[[nodiscard]] std::expected<void, std::string> check_json(std::string_view text);

}  // namespace switchboard::admin
