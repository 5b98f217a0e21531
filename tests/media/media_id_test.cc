// media ids: canonical URLs without volatile parameters, and ids that differ exactly when the media
// parameters differ.
#include "broker/media/media_id.h"

#include <gtest/gtest.h>

namespace switchboard::media {
namespace {

class MediaIdTest : public ::testing::Test {
 protected:
  std::vector<std::string> _volatile = default_volatile_query_params();
};

TEST_F(MediaIdTest, CanonicalUrlDropsVolatileParametersOnly) {
  EXPECT_EQ(canonical_url("https://b.s3.amazonaws.com/a/Hello.wav?X-Amz-Algorithm=AWS4-HMAC-SHA256&"
                          "X-Amz-Credential=AK%2F2024&X-Amz-Date=20240101T000000Z&X-Amz-Expires=300&"
                          "X-Amz-SignedHeaders=host&x-amz-signature=abc123&v=2",
                          _volatile),
            "https://b.s3.amazonaws.com/a/Hello.wav?X-Amz-Algorithm=AWS4-HMAC-SHA256&v=2");
  EXPECT_EQ(canonical_url("http://h/x.wav?sig=1&token=2", _volatile), "http://h/x.wav");
  EXPECT_EQ(canonical_url("http://h/x.wav?&a=1&&b&", _volatile), "http://h/x.wav?a=1&b");
  EXPECT_EQ(canonical_url("http://h/x.wav#part", _volatile), "http://h/x.wav");
  EXPECT_EQ(canonical_url("HTTP://User@Media.Example.COM:8080/Path/A.wav?Q=1", _volatile),
            "http://media.example.com:8080/Path/A.wav?Q=1");
  // Credentials never reach the index, logs or events.
  EXPECT_EQ(canonical_url("https://user:s3cret@cdn.example.com/a.wav", _volatile), "https://cdn.example.com/a.wav");
  EXPECT_EQ(canonical_url("http://h/x.wav?Signature=s&Expires=1&Key-Pair-Id=k&Policy=p", _volatile),
            "http://h/x.wav");
}

TEST_F(MediaIdTest, CustomVolatileList) {
  const std::vector<std::string> only_cb = {"cb"};
  EXPECT_EQ(canonical_url("http://h/x?cb=1&sig=2", only_cb), "http://h/x?sig=2");
}

TEST_F(MediaIdTest, SignedVariantsShareOneId) {
  const std::string a = url_media_id("https://cdn.example.com/p.wav?X-Amz-Signature=1&X-Amz-Date=d1", format::ulaw_8k,
                                     _volatile);
  const std::string b = url_media_id("https://cdn.example.com/p.wav?X-Amz-Date=d2&X-Amz-Signature=2", format::ulaw_8k,
                                     _volatile);
  const std::string c = url_media_id("https://cdn.example.com/p.wav", format::ulaw_8k, _volatile);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
}

TEST_F(MediaIdTest, DifferentParametersDifferentIds) {
  const std::string base = url_media_id("https://cdn.example.com/p.wav", format::ulaw_8k, _volatile);
  EXPECT_NE(base, url_media_id("https://cdn.example.com/p.wav", format::pcm16_8k, _volatile));
  EXPECT_NE(base, url_media_id("https://cdn.example.com/q.wav", format::ulaw_8k, _volatile));
  EXPECT_NE(base, url_media_id("https://cdn.example.com/p.wav?v=2", format::ulaw_8k, _volatile));
  const std::string say = speech_media_id("Hello", "en", 175, format::ulaw_8k);
  EXPECT_NE(say, speech_media_id("Hello!", "en", 175, format::ulaw_8k));
  EXPECT_NE(say, speech_media_id("Hello", "de", 175, format::ulaw_8k));
  EXPECT_NE(say, speech_media_id("Hello", "en", 176, format::ulaw_8k));
  EXPECT_NE(say, speech_media_id("Hello", "en", 175, format::pcm16_16k));
  EXPECT_EQ(say, speech_media_id("Hello", "en", 175, format::ulaw_8k));
  // Length-prefixed fields: moving a boundary changes the id.
  EXPECT_NE(speech_media_id("b", "a", 175, format::ulaw_8k), speech_media_id("", "ab", 175, format::ulaw_8k));
}

TEST_F(MediaIdTest, IdsAreStableAndWellFormed) {
  // Pinned (and checked independently: python3 hashlib.sha256 of the length-prefixed fields). A change
  // here orphans every cached file, so it must be deliberate.
  EXPECT_EQ(url_media_id("https://cdn.example.com/p.wav", format::ulaw_8k, _volatile),
            "u-11ee8f1822bec9f5de22e0c72239ef5d");
  EXPECT_EQ(speech_media_id("Hello", "en", 175, format::ulaw_8k), "t-30b0677167696d986c48023e1ed1d7f3");
}

TEST_F(MediaIdTest, IsMediaId) {
  const std::string id = url_media_id("http://h/x.wav", format::ulaw_8k, _volatile);
  EXPECT_TRUE(is_media_id(id));
  EXPECT_TRUE(is_media_id(speech_media_id("x", "en", 175, format::ulaw_8k)));
  EXPECT_FALSE(is_media_id(""));
  EXPECT_FALSE(is_media_id("../../etc/passwd"));
  EXPECT_FALSE(is_media_id("x-" + id.substr(2)));
  EXPECT_FALSE(is_media_id(id + "0"));
  EXPECT_FALSE(is_media_id("u-0123456789ABCDEF0123456789abcdef"));
}

}  // namespace
}  // namespace switchboard::media
