// The media cache survives a restart of the real `switchboard` binary (issue 16): the index lives in
// the store's media_index column family and the files in <data_dir>/media, so after SIGTERM and a new
// start the same request is answered `cached: true` with no origin fetch, and /media/<id> serves the
// same bytes. Readiness is the binary's ready line (support/broker_process.h), never a sleep.
#include <gtest/gtest.h>
#include <httplib.h>
#include <simdjson.h>

#include <string>

#include "media/test_audio.h"
#include "support/broker_process.h"
#include "support/http_origin.h"

namespace switchboard::media {
namespace {

constexpr const char* token = "media-restart";

TEST(MediaRestartTest, CacheSurvivesARestartOfTheBinary) {
  test::temp_dir dir;
  test::http_origin origin;
  origin.set("/keep.wav", test::reply(test_audio::sine(SF_FORMAT_WAV | SF_FORMAT_PCM_16, 44100, 2, 1.0)));
  const std::string body = R"({"url":")" + origin.url("/keep.wav?X-Amz-Signature=one") + "\"}";
  simdjson::dom::parser parser;
  std::string id;
  std::string first_bytes;
  {
    test::broker_process broker(dir.path(), token);
    ASSERT_TRUE(broker.ok()) << broker.stderr_text();
    auto http = broker.http(token);
    auto r = http->Post("/v1/media", body, "application/json");
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no response");
    simdjson::dom::element doc = parser.parse(r->body);
    EXPECT_FALSE(bool(doc["cached"]));
    id = std::string(std::string_view(doc["id"]));
    auto file = http->Get("/media/" + id);
    ASSERT_TRUE(file && file->status == 200);
    first_bytes = file->body;
    EXPECT_EQ(broker.terminate(), 0);
  }
  test::broker_process broker(dir.path(), token);
  ASSERT_TRUE(broker.ok()) << broker.stderr_text();
  auto http = broker.http(token);
  // Another signature of the same object: the same entry.
  const std::string again_body = R"({"url":")" + origin.url("/keep.wav?X-Amz-Signature=two") + "\"}";
  auto r = http->Post("/v1/media", again_body, "application/json");
  ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no response");
  simdjson::dom::element doc = parser.parse(r->body);
  EXPECT_TRUE(bool(doc["cached"]));
  EXPECT_EQ(std::string_view(doc["id"]), id);
  EXPECT_EQ(origin.requests("/keep.wav"), 1u) << "no origin fetch after the restart";
  auto file = http->Get("/media/" + id);
  ASSERT_TRUE(file && file->status == 200);
  EXPECT_EQ(file->body, first_bytes);
  auto metrics = http->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("\nswitchboard_media_cache_entries 1\n"), std::string::npos);
  EXPECT_NE(metrics->body.find("\nswitchboard_media_conversions_total 0\n"), std::string::npos);
  EXPECT_EQ(broker.terminate(), 0);
}

}  // namespace
}  // namespace switchboard::media
