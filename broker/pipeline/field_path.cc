#include "broker/pipeline/field_path.h"

#include <algorithm>

namespace switchboard::pipeline {
namespace {

std::optional<std::uint32_t> as_index(std::string_view s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  if (s.size() > 1 && s[0] == '0') return std::nullopt;
  std::uint32_t n = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint32_t>(c - '0');
  }
  return n;
}

}  // namespace

std::expected<field_path, std::string> field_path::parse(std::string_view text) {
  if (text.empty()) return std::unexpected(std::string("is empty"));
  field_path p;
  p._text = std::string(text);
  std::size_t start = 0;
  for (;;) {
    const std::size_t dot = text.find('.', start);
    const std::string_view seg = text.substr(start, dot == std::string_view::npos ? text.npos : dot - start);
    if (seg.empty()) {
      return std::unexpected("has an empty segment at position " + std::to_string(p._segments.size() + 1));
    }
    if (p._segments.size() == max_path_segments) {
      return std::unexpected("has more than " + std::to_string(max_path_segments) + " segments");
    }
    p._segments.push_back(path_segment{std::string(seg), as_index(seg)});
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return p;
}

bool field_path::is_prefix_of(const field_path& other) const noexcept {
  if (_segments.size() > other._segments.size()) return false;
  return std::equal(_segments.begin(), _segments.end(), other._segments.begin(),
                    [](const path_segment& a, const path_segment& b) { return a.key == b.key; });
}

bool field_path::same_parent(const field_path& other) const noexcept {
  if (_segments.size() != other._segments.size()) return false;
  return std::equal(_segments.begin(), _segments.end() - 1, other._segments.begin(),
                    [](const path_segment& a, const path_segment& b) { return a.key == b.key; });
}

}  // namespace switchboard::pipeline
