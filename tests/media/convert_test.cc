// convert(): every input format libsndfile decodes, to every output format; validation errors with
// their exact messages. Inputs are generated in memory with libsndfile (test_audio.h).
#include "broker/media/convert.h"

#include <cstdlib>
#include <random>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "media/test_audio.h"

namespace switchboard::media {
namespace {

using ::testing::MatchesRegex;

struct input_case {
  const char* name;
  int sf_format;
  int rate;
  int channels;
};

class ConvertTest : public ::testing::Test {
 protected:
  // Converts `input` and checks the output is a mono WAV of `fmt` whose duration is within 20 ms of
  // `seconds` and whose dominant frequency is 1 kHz.
  static void expect_tone(const std::string& input, format fmt, double seconds) {
    auto out = convert(input, fmt);
    ASSERT_TRUE(out.has_value()) << out.error().message;
    const test_audio::decoded d = test_audio::decode(out->wav);
    ASSERT_TRUE(d.error.empty()) << d.error;
    const int subtype = fmt == format::ulaw_8k ? SF_FORMAT_ULAW : SF_FORMAT_PCM_16;
    EXPECT_EQ(d.info.format, SF_FORMAT_WAV | subtype);
    EXPECT_EQ(d.info.samplerate, sample_rate(fmt));
    EXPECT_EQ(d.info.channels, 1);
    const double out_ms = 1000.0 * static_cast<double>(d.info.frames) / d.info.samplerate;
    EXPECT_NEAR(out_ms, seconds * 1000.0, 20.0);
    EXPECT_NEAR(static_cast<double>(out->duration_ms), seconds * 1000.0, 20.0);
    EXPECT_EQ(std::llabs(static_cast<long long>(out->duration_ms) - std::llround(out_ms)), 0);
    // Skip the filter's warm-up; scan 1 s.
    const auto skip = static_cast<std::size_t>(d.info.samplerate / 10);
    ASSERT_GT(d.mono.size(), skip + static_cast<std::size_t>(d.info.samplerate));
    const std::span<const float> window(d.mono.data() + skip, static_cast<std::size_t>(d.info.samplerate));
    EXPECT_NEAR(test_audio::dominant_hz(window, d.info.samplerate, 100, 3900, 10), 1000.0, 10.0);
  }
};

TEST_F(ConvertTest, WavStereo44kToUlaw8kKeepsDurationAndTone) {
  expect_tone(test_audio::sine(SF_FORMAT_WAV | SF_FORMAT_PCM_16, 44100, 2, 3.0), format::ulaw_8k, 3.0);
}

TEST_F(ConvertTest, EveryInputFormat) {
  const input_case cases[] = {
      {"wav 16 kHz mono", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1},
      {"wav 8 kHz mono (no resampling)", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 8000, 1},
      {"wav 48 kHz float", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 48000, 2},
      {"flac 44.1 kHz stereo", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 44100, 2},
      {"ogg vorbis 44.1 kHz stereo", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 44100, 2},
      {"ogg opus 48 kHz mono", SF_FORMAT_OGG | SF_FORMAT_OPUS, 48000, 1},
      {"mp3 44.1 kHz stereo", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 44100, 2},
      {"aiff 22.05 kHz mono", SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 22050, 1},
  };
  for (const input_case& c : cases) {
    SCOPED_TRACE(c.name);
    expect_tone(test_audio::sine(c.sf_format, c.rate, c.channels, 2.0), format::ulaw_8k, 2.0);
  }
}

TEST_F(ConvertTest, EveryOutputFormat) {
  const std::string input = test_audio::sine(SF_FORMAT_WAV | SF_FORMAT_PCM_16, 44100, 2, 2.0);
  for (format fmt : {format::ulaw_8k, format::pcm16_8k, format::pcm16_16k}) {
    SCOPED_TRACE(std::string(format_name(fmt)));
    expect_tone(input, fmt, 2.0);
  }
}

TEST_F(ConvertTest, EveryResampler) {
  const std::string input = test_audio::sine(SF_FORMAT_WAV | SF_FORMAT_PCM_16, 44100, 2, 1.5);
  for (resampler q : {resampler::best, resampler::medium, resampler::fastest}) {
    convert_options options;
    options.quality = q;
    auto out = convert(input, format::ulaw_8k, options);
    ASSERT_TRUE(out.has_value()) << out.error().message;
    EXPECT_NEAR(static_cast<double>(out->duration_ms), 1500.0, 20.0);
  }
}

void expect_error(const std::expected<converted_audio, error>& r, errc code, const std::string& message) {
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_EQ(r.error().message, message);
}

TEST_F(ConvertTest, HtmlIsNotAudio) {
  expect_error(convert("<!doctype html><html><body>Moved</body></html>", format::ulaw_8k), errc::media_invalid,
               "not audio: libsndfile: Format not recognised.");
}

TEST_F(ConvertTest, RandomBytesAreNotAudio) {
  std::mt19937 rng(7);
  std::string bytes(20000, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  expect_error(convert(bytes, format::ulaw_8k), errc::media_invalid, "not audio: libsndfile: Format not recognised.");
}

TEST_F(ConvertTest, EmptyBodyIsNotAudio) {
  expect_error(convert("", format::ulaw_8k), errc::media_invalid, "not audio: empty body");
}

TEST_F(ConvertTest, MalformedWavHeaderIsNotAudio) {
  const std::string wav = test_audio::sine(SF_FORMAT_WAV | SF_FORMAT_PCM_16, 8000, 1, 1.0);
  expect_error(convert(wav.substr(0, 20), format::ulaw_8k), errc::media_invalid,
               "not audio: libsndfile: Error in WAV/W64/RF64 file. Malformed 'fmt ' chunk.");
}

TEST_F(ConvertTest, TruncatedWav) {
  // 1 s of 44.1 kHz stereo PCM16 is 176400 data bytes after a 44-byte header.
  const std::string wav = test_audio::sine(SF_FORMAT_WAV | SF_FORMAT_PCM_16, 44100, 2, 1.0);
  ASSERT_EQ(wav.size(), 44u + 176400u);
  expect_error(convert(wav.substr(0, 44 + 1000), format::ulaw_8k), errc::media_invalid,
               "truncated: the WAV data chunk announces 176400 bytes but 1000 are present");
  expect_error(convert(wav.substr(0, 44), format::ulaw_8k), errc::media_invalid,
               "truncated: the WAV data chunk announces 176400 bytes but 0 are present");
}

TEST_F(ConvertTest, TruncatedFlac) {
  const std::string flac = test_audio::sine(SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 44100, 2, 2.0);
  auto r = convert(flac.substr(0, flac.size() / 2), format::ulaw_8k);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::media_invalid);
  EXPECT_THAT(r.error().message,
              MatchesRegex(R"(truncated: decoded [0-9]+ of 88200 frames \(libsndfile: .*lost sync\.\))"));
}

TEST_F(ConvertTest, TruncatedOgg) {
  const std::string ogg = test_audio::sine(SF_FORMAT_OGG | SF_FORMAT_VORBIS, 44100, 2, 2.0);
  expect_error(convert(ogg.substr(0, ogg.size() / 2), format::ulaw_8k), errc::media_invalid,
               "truncated: the Ogg stream ends without an end-of-stream page");
}

TEST_F(ConvertTest, TruncatedMp3) {
  const std::string mp3 = test_audio::sine(SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 44100, 2, 4.0);
  auto r = convert(mp3.substr(0, mp3.size() / 2), format::ulaw_8k);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::media_invalid);
  EXPECT_THAT(r.error().message, MatchesRegex(R"(truncated: decoded [0-9]+ of 176400 frames)"));
}

TEST_F(ConvertTest, TooLongFromTheHeader) {
  // 700 s at 1 kHz 8-bit mono is only 700 kB.
  const std::string wav = test_audio::sine(SF_FORMAT_WAV | SF_FORMAT_PCM_U8, 1000, 1, 700.0, 100.0);
  expect_error(convert(wav, format::ulaw_8k), errc::too_large, "too long: 700.0 s > 600 s");
  convert_options options;
  options.max_seconds = 699.5;
  expect_error(convert(wav, format::ulaw_8k, options), errc::too_large, "too long: 700.0 s > 699.5 s");
  options.max_seconds = 700;
  EXPECT_TRUE(convert(wav, format::ulaw_8k, options).has_value());
}

TEST_F(ConvertTest, EncodeResamplesMonoSamples) {
  std::vector<float> samples(22050 * 2);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    samples[i] = static_cast<float>(0.5 * std::sin(2.0 * std::numbers::pi * 1000.0 * static_cast<double>(i) / 22050));
  }
  auto out = encode(samples, 22050, format::pcm16_16k);
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_EQ(out->duration_ms, 2000u);
  const auto d = test_audio::decode(out->wav);
  EXPECT_EQ(d.info.samplerate, 16000);
  EXPECT_EQ(d.info.format, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  convert_options short_limit;
  short_limit.max_seconds = 1;
  auto too_long = encode(samples, 22050, format::ulaw_8k, short_limit);
  ASSERT_FALSE(too_long.has_value());
  EXPECT_EQ(too_long.error().message, "too long: 2.0 s > 1 s");
}

}  // namespace
}  // namespace switchboard::media
