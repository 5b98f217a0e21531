// A field path into a JSON payload: dot-separated segments, `data.from` names member "from" of
// member "data" of the top-level object (DESIGN.md, "Channel configuration attributes").
//
// Rules, shared by every stage (validate, translate, filter):
//   - a path is 1 to `max_path_segments` segments separated by '.', each segment non-empty; a
//     segment may hold any other byte (UTF-8, spaces, quotes …). There is no escape for '.': a
//     member whose key contains a dot cannot be named.
//   - reading (validate's required fields, filter conditions, translate's copy sources and template
//     placeholders): a segment names a member of an object (the first member with that key when
//     keys repeat, as simdjson's at_key), or, when the value reached is an array and the segment is
//     a decimal index without leading zeros (`0`, `12`), the element at that 0-based index.
//   - writing (translate's rename, drop, set and copy targets) walks objects only; see translate.h.
//
// Thread-safety: a field_path is an immutable value once parsed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::pipeline {

// Most segments in one path. Bounds the work and the recursion of every path operation.
inline constexpr std::size_t max_path_segments = 128;

struct path_segment {
  std::string key;                     // the member name (also used when the value is an object)
  std::optional<std::uint32_t> index;  // set when `key` is a decimal array index (< 10^9)

  friend bool operator==(const path_segment&, const path_segment&) = default;
};

class field_path {
 public:
  // Parses `text`. On failure returns the reason, to be placed after the quoted path:
  //   "is empty" | "has an empty segment at position <P>" (1-based) | "has more than 128 segments"
  [[nodiscard]] static std::expected<field_path, std::string> parse(std::string_view text);

  [[nodiscard]] const std::string& text() const noexcept { return _text; }
  [[nodiscard]] std::span<const path_segment> segments() const noexcept { return _segments; }
  [[nodiscard]] const path_segment& last() const noexcept { return _segments.back(); }
  // True when `other`'s segments start with all of this path's segments (a path contains itself).
  [[nodiscard]] bool is_prefix_of(const field_path& other) const noexcept;
  // True when both paths have the same segments except possibly the last (same parent object).
  [[nodiscard]] bool same_parent(const field_path& other) const noexcept;

  friend bool operator==(const field_path&, const field_path&) = default;

 private:
  std::string _text;
  std::vector<path_segment> _segments;  // never empty
};

}  // namespace switchboard::pipeline
