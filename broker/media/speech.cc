#include "broker/media/speech.h"

#include <espeak-ng/speak_lib.h>

#include <fmt/format.h>

#include <mutex>
#include <string>

namespace switchboard::media {
namespace {

// Guards every espeak-ng call in the process (see speech.h).
std::mutex espeak_mutex;
int espeak_rate = 0;  // output sample rate after initialisation, 0 before; <= 0 after a failure

struct collector {
  std::vector<short> samples;
  std::size_t max_samples = 0;
  bool too_long = false;
};

int on_samples(short* wav, int count, espeak_EVENT* events) {
  if (events == nullptr || events->user_data == nullptr) return 0;
  auto& c = *static_cast<collector*>(events->user_data);
  if (wav == nullptr || count <= 0) return 0;
  if (c.samples.size() + static_cast<std::size_t>(count) > c.max_samples) {
    c.too_long = true;
    return 1;  // abort the synthesis
  }
  c.samples.insert(c.samples.end(), wav, wav + count);
  return 0;
}

// Called with espeak_mutex held.
bool initialise() {
  if (espeak_rate == 0) {
    espeak_rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, nullptr, espeakINITIALIZE_DONT_EXIT);
    if (espeak_rate <= 0) {
      espeak_rate = -1;
      return false;
    }
    espeak_SetSynthCallback(&on_samples);
  }
  return espeak_rate > 0;
}

}  // namespace

std::expected<speech_audio, error> synthesize(std::string_view text, std::string_view voice, int rate,
                                              double max_seconds) {
  if (text.empty()) return std::unexpected(error{errc::invalid_request, "empty text"});
  if (rate < min_speech_rate || rate > max_speech_rate) {
    return std::unexpected(error{errc::invalid_request,
                                 fmt::format("rate {} outside {}..{}", rate, min_speech_rate, max_speech_rate)});
  }
  const std::string voice_name(voice);
  const std::string utf8(text);

  std::lock_guard lock(espeak_mutex);
  if (!initialise()) {
    return std::unexpected(error{errc::io, "espeak-ng: cannot initialise (is espeak-ng-data installed?)"});
  }
  if (voice_name.empty() || espeak_SetVoiceByName(voice_name.c_str()) != EE_OK) {
    return std::unexpected(error{errc::invalid_request, fmt::format("unknown voice \"{}\"", voice_name)});
  }
  espeak_SetParameter(espeakRATE, rate, 0);
  collector c;
  c.max_samples = static_cast<std::size_t>(max_seconds * espeak_rate);
  const espeak_ERROR status = espeak_Synth(utf8.c_str(), utf8.size() + 1, 0, POS_CHARACTER, 0,
                                           espeakCHARS_UTF8, nullptr, &c);
  if (c.too_long) {
    return std::unexpected(error{errc::too_large, fmt::format("too long: more than {:g} s", max_seconds)});
  }
  if (status != EE_OK) return std::unexpected(error{errc::io, "espeak-ng: synthesis failed"});

  speech_audio out;
  out.sample_rate = espeak_rate;
  out.samples.reserve(c.samples.size());
  for (short s : c.samples) out.samples.push_back(static_cast<float>(s) / 32768.0f);
  return out;
}

}  // namespace switchboard::media
