// Media conversion speed: a 60 s 44.1 kHz stereo 16-bit WAV (1 kHz sine) converted in memory to
// 8 kHz mono μ-law WAV with each libsamplerate converter. x_realtime is seconds of audio converted per
// second of wall time (≥ 100 is the target for the default, medium).
//
//   cmake -S . -B build-media -G Ninja -DCMAKE_BUILD_TYPE=Release
//   cmake --build build-media --target media_bench && build-media/bench/media_bench
// Compare with sox on the same machine (see docs/PERFORMANCE.md, "Media conversion").
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>

#include <benchmark/benchmark.h>

#include "broker/media/convert.h"

namespace {

using switchboard::media::convert;
using switchboard::media::convert_options;
using switchboard::media::format;
using switchboard::media::resampler;

constexpr int seconds = 60;
constexpr int rate = 44100;
constexpr int channels = 2;

void put_le(std::string& out, std::uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

// A canonical 44-byte-header PCM16 WAV, written by hand so the bench needs no audio library.
std::string sine_wav() {
  const std::uint32_t frames = seconds * rate;
  const std::uint32_t data_bytes = frames * channels * 2;
  std::string wav = "RIFF";
  put_le(wav, 36 + data_bytes, 4);
  wav += "WAVEfmt ";
  put_le(wav, 16, 4);
  put_le(wav, 1, 2);  // PCM
  put_le(wav, channels, 2);
  put_le(wav, rate, 4);
  put_le(wav, rate * channels * 2, 4);
  put_le(wav, channels * 2, 2);
  put_le(wav, 16, 2);
  wav += "data";
  put_le(wav, data_bytes, 4);
  wav.reserve(wav.size() + data_bytes);
  for (std::uint32_t i = 0; i < frames; ++i) {
    const double v = 0.5 * std::sin(2.0 * std::numbers::pi * 1000.0 * i / rate);
    const auto sample = static_cast<std::uint16_t>(static_cast<std::int16_t>(std::lround(v * 32767)));
    for (int c = 0; c < channels; ++c) put_le(wav, sample, 2);
  }
  return wav;
}

void convert_60s_stereo_to_ulaw(benchmark::State& state) {
  static const std::string input = sine_wav();
  convert_options options;
  options.quality = static_cast<resampler>(state.range(0));
  for (auto _ : state) {
    auto out = convert(input, format::ulaw_8k, options);
    if (!out) {
      state.SkipWithError(out.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(out->wav.data());
  }
  state.counters["x_realtime"] =
      benchmark::Counter(static_cast<double>(seconds) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
  state.SetLabel(state.range(0) == 0 ? "best" : state.range(0) == 1 ? "medium" : "fastest");
}
BENCHMARK(convert_60s_stereo_to_ulaw)
    ->Arg(static_cast<int>(resampler::best))
    ->Arg(static_cast<int>(resampler::medium))
    ->Arg(static_cast<int>(resampler::fastest))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
