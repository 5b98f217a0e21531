// The audio formats the media layer produces. Every one is a mono WAV file; the telephony default is
// 8 kHz G.711 μ-law.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace switchboard::media {

enum class format : std::uint8_t {
  ulaw_8k,    // 8 kHz mono G.711 μ-law WAV (WAVE_FORMAT_MULAW): what the call engine plays
  pcm16_8k,   // 8 kHz mono 16-bit linear PCM WAV
  pcm16_16k,  // 16 kHz mono 16-bit linear PCM WAV (wideband)
};

// "ulaw_8k", "pcm16_8k", "pcm16_16k": the names used in requests, ids and the index.
[[nodiscard]] constexpr std::string_view format_name(format f) noexcept {
  switch (f) {
    case format::ulaw_8k: return "ulaw_8k";
    case format::pcm16_8k: return "pcm16_8k";
    case format::pcm16_16k: return "pcm16_16k";
  }
  return "ulaw_8k";
}

// The format named `name` (exactly as format_name() spells it), or empty.
[[nodiscard]] constexpr std::optional<format> parse_format(std::string_view name) noexcept {
  for (format f : {format::ulaw_8k, format::pcm16_8k, format::pcm16_16k}) {
    if (format_name(f) == name) return f;
  }
  return std::nullopt;
}

[[nodiscard]] constexpr int sample_rate(format f) noexcept { return f == format::pcm16_16k ? 16000 : 8000; }

}  // namespace switchboard::media
