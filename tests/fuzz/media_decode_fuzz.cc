// libFuzzer entry for the media decoder: arbitrary bytes into convert(), as an origin could serve them.
// Any result is fine (audio or a media error); crashes, sanitizer reports, hangs and runaway memory
// are the bugs. Each input is converted to every output format with a 30 s limit to keep runs fast.
// Run: scripts/fuzz.sh media_decode SECONDS. Known: libvorbis leaks ~17 kB when libsndfile fails
// to open a malformed Ogg Vorbis stream (docs/MEDIA.md); run with ASAN_OPTIONS=detect_leaks=0 to
// look past it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "broker/media/convert.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace switchboard::media;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  convert_options options;
  options.max_seconds = 30;
  options.quality = resampler::fastest;
  for (format fmt : {format::ulaw_8k, format::pcm16_8k, format::pcm16_16k}) {
    auto out = convert(input, fmt, options);
    if (out && out->wav.size() < 44) __builtin_trap();  // a success is always a whole WAV file
  }
  return 0;
}
