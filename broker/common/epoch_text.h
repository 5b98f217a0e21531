// The one text form of a history epoch (docs/PROTOCOL.md, positions): 16 lower-case hex digits,
// always a JSON string, since a u64 does not survive a JavaScript client's 2^53 numbers. Used by
// the admin API, NOTICE details, stored cursors, dead letters, logs and the CLI.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace switchboard::common {

// "00000000000000ff" for 255.
[[nodiscard]] inline std::string epoch_text(std::uint64_t epoch) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, epoch >>= 4) out[static_cast<std::size_t>(i)] = digits[epoch & 0xf];
  return out;
}

// The epoch `text` names: 1 to 16 hex digits (either case), nothing else. Empty on anything else.
[[nodiscard]] inline std::optional<std::uint64_t> parse_epoch_text(std::string_view text) {
  if (text.empty() || text.size() > 16) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, 16);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace switchboard::common
