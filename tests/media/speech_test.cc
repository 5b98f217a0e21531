// espeak-ng synthesis: real speech comes out, voices and rates change it, bad parameters are
// refused with exact messages, and concurrent callers are serialised safely.
#include "broker/media/speech.h"

#include <cmath>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "broker/media/convert.h"
#include "media/test_audio.h"

namespace switchboard::media {
namespace {

class SpeechTest : public ::testing::Test {
 protected:
  static double rms(const std::vector<float>& x) {
    double sum = 0.0;
    for (float v : x) sum += static_cast<double>(v) * v;
    return x.empty() ? 0.0 : std::sqrt(sum / static_cast<double>(x.size()));
  }
};

TEST_F(SpeechTest, SpeaksText) {
  auto audio = synthesize("Hello, your call is important to us.", "en", 175, 600);
  ASSERT_TRUE(audio.has_value()) << audio.error().message;
  EXPECT_EQ(audio->sample_rate, 22050);
  const double seconds = static_cast<double>(audio->samples.size()) / audio->sample_rate;
  EXPECT_GT(seconds, 1.0);
  EXPECT_LT(seconds, 6.0);
  EXPECT_GT(rms(audio->samples), 0.01) << "not silence";
}

TEST_F(SpeechTest, EncodesToUlaw) {
  auto audio = synthesize("Press one for sales.", "en-us", 175, 600);
  ASSERT_TRUE(audio.has_value()) << audio.error().message;
  auto wav = encode(audio->samples, audio->sample_rate, format::ulaw_8k);
  ASSERT_TRUE(wav.has_value()) << wav.error().message;
  const auto d = test_audio::decode(wav->wav);
  EXPECT_EQ(d.info.format, SF_FORMAT_WAV | SF_FORMAT_ULAW);
  EXPECT_EQ(d.info.samplerate, 8000);
  const double expected_ms = 1000.0 * static_cast<double>(audio->samples.size()) / audio->sample_rate;
  EXPECT_NEAR(static_cast<double>(wav->duration_ms), expected_ms, 20.0);
}

TEST_F(SpeechTest, RateChangesDuration) {
  auto slow = synthesize("one two three four five six seven", "en", 100, 600);
  auto fast = synthesize("one two three four five six seven", "en", 400, 600);
  ASSERT_TRUE(slow.has_value() && fast.has_value());
  EXPECT_GT(slow->samples.size(), fast->samples.size() * 2);
}

TEST_F(SpeechTest, BadParameters) {
  auto empty = synthesize("", "en", 175, 600);
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().code, errc::invalid_request);
  EXPECT_EQ(empty.error().message, "empty text");

  auto voice = synthesize("hi", "no-such-voice", 175, 600);
  ASSERT_FALSE(voice.has_value());
  EXPECT_EQ(voice.error().code, errc::invalid_request);
  EXPECT_EQ(voice.error().message, "unknown voice \"no-such-voice\"");

  auto rate = synthesize("hi", "en", 20, 600);
  ASSERT_FALSE(rate.has_value());
  EXPECT_EQ(rate.error().code, errc::invalid_request);
  EXPECT_EQ(rate.error().message, "rate 20 outside 80..450");
}

TEST_F(SpeechTest, TooLongStops) {
  auto audio = synthesize("This sentence takes more than one second to say out loud.", "en", 175, 1.0);
  ASSERT_FALSE(audio.has_value());
  EXPECT_EQ(audio.error().code, errc::too_large);
  EXPECT_EQ(audio.error().message, "too long: more than 1 s");
}

TEST_F(SpeechTest, ConcurrentCallersAreSerialised) {
  auto reference = synthesize("concurrent speech", "en", 175, 600);
  ASSERT_TRUE(reference.has_value());
  std::vector<std::size_t> sizes(4);
  {
    std::vector<std::jthread> threads;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      threads.emplace_back([&sizes, i] {
        auto audio = synthesize("concurrent speech", "en", 175, 600);
        sizes[i] = audio ? audio->samples.size() : 0;
      });
    }
  }
  // espeak-ng's output length varies by a few samples from one call to the next even when calls are
  // sequential, so compare within 1%.
  const auto expected = static_cast<double>(reference->samples.size());
  for (std::size_t n : sizes) EXPECT_NEAR(static_cast<double>(n), expected, expected / 100);
}

}  // namespace
}  // namespace switchboard::media
