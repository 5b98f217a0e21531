#include "broker/admin/byte_range.h"

#include <charconv>

namespace switchboard::admin {
std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

namespace {

bool all_digits(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Digits only (no sign, no spaces); saturates at UINT64_MAX so a huge FIRST is simply past the end.
std::uint64_t to_u64(std::string_view digits) noexcept {
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec == std::errc::result_out_of_range) return UINT64_MAX;
  return v;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

byte_range_request parse_byte_range(std::string_view header, std::uint64_t size) noexcept {
  using kind = byte_range_request::kind;
  header = trim_ows(header);
  const std::size_t eq = header.find('=');
  if (eq == std::string_view::npos || !iequals(trim_ows(header.substr(0, eq)), "bytes")) return {};
  const std::string_view spec = trim_ows(header.substr(eq + 1));
  if (spec.find(',') != std::string_view::npos) return {};  // several ranges: served whole
  const std::size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return {};
  const std::string_view first_text = trim_ows(spec.substr(0, dash));
  const std::string_view last_text = trim_ows(spec.substr(dash + 1));
  if (first_text.empty()) {  // suffix: the last N bytes
    if (!all_digits(last_text)) return {};
    const std::uint64_t suffix = to_u64(last_text);
    if (suffix == 0 || size == 0) return {kind::unsatisfiable};
    return {kind::partial, suffix >= size ? 0 : size - suffix, size - 1};
  }
  if (!all_digits(first_text)) return {};
  const std::uint64_t first = to_u64(first_text);
  std::uint64_t last = UINT64_MAX;
  if (!last_text.empty()) {
    if (!all_digits(last_text)) return {};
    last = to_u64(last_text);
    if (last < first) return {};  // invalid: ignored
  }
  if (first >= size) return {kind::unsatisfiable};
  return {kind::partial, first, last >= size ? size - 1 : last};
}

}  // namespace switchboard::admin
