// Audio conversion: decode anything libsndfile reads from memory, validate it, downmix to mono,
// resample (libsamplerate) and write a mono WAV in one of the media formats, all in memory.
//
// Inputs libsndfile 1.2 on Debian 12 decodes: WAV/RF64/W64, AIFF, AU, CAF, FLAC, Ogg Vorbis, Ogg Opus,
// MP3 (through mpg123) and the other container/codec pairs of sf_format. Anything else is "not audio".
#pragma once

#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>

#include "broker/media/error.h"
#include "broker/media/format.h"

namespace switchboard::media {

// libsamplerate converter used for resampling. Measured on the 2-core build VM for a 60 s 44.1 kHz
// stereo WAV → 8 kHz μ-law (bench/media_bench.cc, see docs/PERFORMANCE.md): `medium` is the default.
enum class resampler : std::uint8_t {
  best,     // SRC_SINC_BEST_QUALITY: 97 dB SNR, the slowest by far
  medium,   // SRC_SINC_MEDIUM_QUALITY: 97 dB SNR, 90% bandwidth; far beyond what G.711 can carry
  fastest,  // SRC_SINC_FASTEST: 97 dB SNR, 80% bandwidth
};

struct convert_options {
  // Longest audio accepted, in seconds. Checked from the header before decoding when the length is
  // known, else while decoding (decoding stops at the limit). It bounds CPU and memory per request:
  // decoding streams in blocks, and only the mono output at the target rate is held (600 s at 16 kHz
  // is 38 MB of floats, then 19 MB of PCM16 WAV).
  double max_seconds = 600.0;
  resampler quality = resampler::medium;
};

struct converted_audio {
  std::string wav;                // the complete WAV file
  std::uint64_t duration_ms = 0;  // of the output, rounded to the nearest millisecond
};

// Converts `input` (a complete audio file in memory) to `fmt`. Does not block on anything but the CPU;
// thread-safe (no shared state). Errors, with their exact messages:
//   errc::media_invalid  "not audio: empty body"
//                        "not audio: libsndfile: <libsndfile's reason>"   e.g. "… Format not recognised."
//                        "not audio: unsupported sample rate <n> Hz" / "… <n> channels"
//                        "not audio: no audio frames"
//                        "truncated: the WAV data chunk announces <n> bytes but <m> are present"
//                        "truncated: the Ogg stream ends without an end-of-stream page"
//                        "truncated: decoded <n> of <m> frames" (+ " (libsndfile: <reason>)" when it gave one)
//   errc::too_large      "too long: <seconds, 1 decimal> s > <max_seconds> s"   (length in the header)
//                        "too long: more than <max_seconds> s"                 (length found decoding)
[[nodiscard]] std::expected<converted_audio, error> convert(std::string_view input, format fmt,
                                                            const convert_options& options = {});

// Writes mono float samples (nominally in [-1, 1], clipped) at `rate` Hz as `fmt`, resampling when
// `rate` differs from the format's rate. Used for synthesised speech. errc::invalid_request when
// `rate` is not in 1..768000; errc::too_large when longer than options.max_seconds.
[[nodiscard]] std::expected<converted_audio, error> encode(std::span<const float> mono, int rate, format fmt,
                                                           const convert_options& options = {});

}  // namespace switchboard::media
