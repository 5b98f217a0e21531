// Text to speech with espeak-ng, for `Say`.
//
// espeak-ng keeps its state in process globals (one voice, one rate, one synth callback) and is not
// thread-safe. This unit is the only user of it in the process and serialises every call behind one
// mutex; concurrent synthesize() calls therefore run one after the other (an utterance of a few
// seconds takes tens of milliseconds). espeak-ng is initialised on first use in synchronous mode
// (AUDIO_OUTPUT_SYNCHRONOUS: no audio device, samples come back through a callback) and never
// terminated, so the process keeps its data loaded.
#pragma once

#include <expected>
#include <string_view>
#include <vector>

#include "broker/media/error.h"

namespace switchboard::media {

inline constexpr int min_speech_rate = 80;   // words per minute (espeakRATE_MINIMUM)
inline constexpr int max_speech_rate = 450;  // espeakRATE_MAXIMUM
inline constexpr int default_speech_rate = 175;

struct speech_audio {
  std::vector<float> samples;  // mono, in [-1, 1]
  int sample_rate = 0;         // espeak-ng's output rate (22050 Hz)
};

// Speaks UTF-8 `text` with espeak-ng voice `voice` (a name or language such as "en", "en-us", "de",
// "fr") at `rate` words per minute. Blocks the calling thread for the synthesis and waits for any other
// synthesis in progress. Stops and fails once the audio would exceed `max_seconds`. Errors:
//   errc::invalid_request "empty text", "rate <n> outside 80..450", "unknown voice \"<voice>\""
//   errc::too_large       "too long: more than <max_seconds> s"
//   errc::io              "espeak-ng: cannot initialise (is espeak-ng-data installed?)" / "espeak-ng: synthesis failed"
[[nodiscard]] std::expected<speech_audio, error> synthesize(std::string_view text, std::string_view voice, int rate,
                                                            double max_seconds);

}  // namespace switchboard::media
