// The media layer through the broker (issue 16): the in-process broker (server::start: RocksDB data
// dir, admin API on port 0, auth on) in front of a local origin (tests/support/http_origin.h) that
// serves generated audio in several formats and rates. Every request goes over HTTP: POST /v1/media,
// GET/HEAD /media/<id> (Range, ETag, 304), GET/DELETE /v1/media/<id>, /metrics, and the media.*
// events on system.media received by a real subscriber.
#include <gtest/gtest.h>
#include <httplib.h>
#include <simdjson.h>
#include <switchboard/client.h>

#include <atomic>
#include <latch>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "broker/media/media_id.h"
#include "broker/server/server.h"
#include "media/test_audio.h"
#include "support/broker_process.h"
#include "support/child_process.h"
#include "support/http_origin.h"

namespace switchboard::media {
namespace {

using namespace std::chrono_literals;
using test::http_origin;
using test::reply;

constexpr const char* admin_token = "media-admin";
constexpr const char* publish_token = "pub-secret";
constexpr const char* subscribe_token = "sub-secret";

std::string tone(double seconds, int rate = 44100, int channels = 2,
                 int format = SF_FORMAT_WAV | SF_FORMAT_PCM_16) {
  return test_audio::sine(format, rate, channels, seconds);
}

struct json_result {
  int status = 0;
  std::string body;
  httplib::Headers headers;
  std::shared_ptr<simdjson::dom::parser> parser = std::make_shared<simdjson::dom::parser>();  // owns `doc`
  simdjson::dom::element doc;
};

class MediaApiTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (_broker) _broker->stop();
  }

  void start(const std::function<void(server::options&)>& tweak = {}) {
    server::options o;
    o.bind = "tcp://127.0.0.1:*";
    o.admin_port = 0;
    o.data_dir = _dir.path();
    o.admin_token = admin_token;
    o.tokens = {std::string("pub:") + publish_token + ":*:publish",
                std::string("sub:") + subscribe_token + ":*:subscribe"};
    o.log_level = "warn";
    o.retention_interval_ms = 0;
    if (tweak) tweak(o);
    auto s = server::server::start(o);
    ASSERT_TRUE(s.has_value()) << s.error().message;
    _broker = std::move(*s);
  }

  std::unique_ptr<httplib::Client> http(const char* token = admin_token) {
    auto c = std::make_unique<httplib::Client>(_broker->admin_url());
    if (token != nullptr) c->set_bearer_token_auth(token);
    c->set_read_timeout(30, 0);
    return c;
  }

  json_result post(const std::string& body, const char* token = admin_token) {
    auto r = http(token)->Post("/v1/media", body, "application/json");
    json_result out;
    if (!r) return out;
    out.status = r->status;
    out.body = r->body;
    out.headers = r->headers;
    if (out.parser->parse(out.body).get(out.doc) != simdjson::SUCCESS)
      ADD_FAILURE() << "not JSON: " << out.body;
    return out;
  }
  json_result play(const std::string& path_and_query, const std::string& format = "") {
    std::string body = R"({"url":")" + _origin.url(path_and_query) + "\"";
    if (!format.empty()) body += R"(,"format":")" + format + "\"";
    return post(body + "}");
  }

  // Asserts a failed resolve: status, code and exact message, and that nothing was cached for it
  // (the number of cached entries is still `entries`).
  void expect_error(const json_result& r, int status, const std::string& code, const std::string& message,
                    long long entries = 0) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(std::string_view(r.doc["error"]["code"]), code) << r.body;
    EXPECT_EQ(std::string_view(r.doc["error"]["message"]), message) << r.body;
    EXPECT_EQ(metric("switchboard_media_cache_entries"), entries);
  }

  // The value of an unlabelled (or exactly labelled) metric line, or -1.
  long long metric(const std::string& name) {
    auto r = http()->Get("/metrics");
    if (!r) return -1;
    const std::string needle = "\n" + name + " ";
    const std::size_t at = r->body.find(needle);
    if (at == std::string::npos) return -1;
    return std::stoll(r->body.substr(at + needle.size()));
  }

  static std::string id_of(const json_result& r) { return std::string(std::string_view(r.doc["id"])); }

  test::temp_dir _dir;
  http_origin _origin;
  std::unique_ptr<server::server> _broker;
};

TEST_F(MediaApiTest, ConvertsSeveralFormatsAndRatesToValidUlawServedFromTheirAddress) {
  start();
  struct source {
    const char* path;
    std::string bytes;
  };
  const std::vector<source> sources = {
      {"/stereo44.wav", tone(2.0, 44100, 2)},
      {"/mono8k.wav", tone(2.0, 8000, 1)},
      {"/float48k.wav", tone(2.0, 48000, 1, SF_FORMAT_WAV | SF_FORMAT_FLOAT)},
      {"/tone16k.flac", tone(2.0, 16000, 1, SF_FORMAT_FLAC | SF_FORMAT_PCM_16)},
      {"/tone22k.ogg", tone(2.0, 22050, 2, SF_FORMAT_OGG | SF_FORMAT_VORBIS)},
  };
  for (const source& s : sources) {
    SCOPED_TRACE(s.path);
    _origin.set(s.path, reply(s.bytes).with_type("audio/wav"));
    const json_result r = play(s.path);
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string id = id_of(r);
    EXPECT_TRUE(is_media_id(id)) << id;
    EXPECT_EQ(std::string_view(r.doc["address"]), "/media/" + id);
    EXPECT_EQ(std::string_view(r.doc["format"]), "ulaw_8k");
    EXPECT_FALSE(bool(r.doc["cached"]));
    EXPECT_NEAR(static_cast<double>(std::uint64_t(r.doc["duration_ms"])), 2000.0, 20.0);

    // The persistent address needs no token (the id is the capability).
    auto file = http(nullptr)->Get("/media/" + id);
    ASSERT_TRUE(file);
    ASSERT_EQ(file->status, 200);
    EXPECT_EQ(file->get_header_value("Content-Type"), "audio/wav");
    EXPECT_EQ(file->get_header_value("Content-Length"), std::to_string(std::uint64_t(r.doc["bytes"])));
    EXPECT_EQ(file->body.size(), std::uint64_t(r.doc["bytes"]));
    EXPECT_EQ(file->get_header_value("Accept-Ranges"), "bytes");
    EXPECT_TRUE(file->get_header_value("ETag").starts_with("\"" + id + "-"))
        << file->get_header_value("ETag");
    EXPECT_EQ(file->get_header_value("Cache-Control"), "public, max-age=3599") << "default freshness: 1 h";

    const auto d = test_audio::decode(file->body);
    EXPECT_EQ(d.info.format, SF_FORMAT_WAV | SF_FORMAT_ULAW);
    EXPECT_EQ(d.info.samplerate, 8000);
    EXPECT_EQ(d.info.channels, 1);
    EXPECT_NEAR(static_cast<double>(d.info.frames) * 1000.0 / 8000.0, 2000.0, 20.0);
    const std::span<const float> window(d.mono.data() + 800, 8000);
    EXPECT_NEAR(test_audio::dominant_hz(window, 8000, 100, 3900, 10), 1000.0, 10.0);
  }
}

TEST_F(MediaApiTest, PcmFormatsAndSpeech) {
  start();
  _origin.set("/a.wav", reply(tone(1.0)));
  const json_result wide = play("/a.wav", "pcm16_16k");
  ASSERT_EQ(wide.status, 200) << wide.body;
  EXPECT_EQ(std::string_view(wide.doc["format"]), "pcm16_16k");
  auto file = http(nullptr)->Get("/media/" + id_of(wide));
  ASSERT_TRUE(file && file->status == 200);
  const auto d = test_audio::decode(file->body);
  EXPECT_EQ(d.info.format, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  EXPECT_EQ(d.info.samplerate, 16000);
  EXPECT_NEAR(
      test_audio::dominant_hz(std::span<const float>(d.mono.data() + 1600, 8000), 16000, 100, 7900, 10),
      1000.0, 10.0);

  const json_result say = post(R"({"text":"Your call is important to us.","voice":"en","rate":160})");
  ASSERT_EQ(say.status, 200) << say.body;
  EXPECT_TRUE(id_of(say).starts_with("t-"));
  EXPECT_GT(std::uint64_t(say.doc["duration_ms"]), 500u);
  const json_result again = post(R"({"text":"Your call is important to us.","voice":"en","rate":160})");
  EXPECT_TRUE(bool(again.doc["cached"]));
  EXPECT_EQ(id_of(again), id_of(say));
  const json_result other_voice = post(R"({"text":"Your call is important to us.","voice":"de","rate":160})");
  ASSERT_EQ(other_voice.status, 200) << other_voice.body;
  EXPECT_NE(id_of(other_voice), id_of(say));
  const json_result other_text = post(R"({"text":"Please hold.","voice":"en","rate":160})");
  EXPECT_NE(id_of(other_text), id_of(say));
  auto spoken = http(nullptr)->Get("/media/" + id_of(say));
  ASSERT_TRUE(spoken && spoken->status == 200);
  EXPECT_EQ(spoken->get_header_value("Cache-Control"), "public, max-age=31536000, immutable");
}

TEST_F(MediaApiTest, SecondRequestIsServedFromTheCacheWithoutFetchOrConversion) {
  start();
  _origin.set("/hello.wav", reply(tone(1.0)));
  const json_result first = play("/hello.wav");
  ASSERT_EQ(first.status, 200) << first.body;
  const std::string first_id = id_of(first);
  const json_result second = play("/hello.wav");
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_TRUE(bool(second.doc["cached"]));
  EXPECT_EQ(id_of(second), first_id);
  EXPECT_EQ(_origin.requests("/hello.wav"), 1u);
  EXPECT_EQ(metric("switchboard_media_conversions_total"), 1);
  EXPECT_EQ(metric("switchboard_media_fetches_total"), 1);
  EXPECT_EQ(metric("switchboard_media_cache_hits_total"), 1);
  EXPECT_EQ(metric("switchboard_media_cache_misses_total"), 1);
  EXPECT_EQ(metric("switchboard_media_cache_entries"), 1);

  // Metadata, and the format is part of the id.
  auto meta = http(subscribe_token)->Get("/v1/media/" + first_id);
  ASSERT_TRUE(meta && meta->status == 200) << (meta ? meta->body : "");
  EXPECT_NE(meta->body.find("\"source\":\"" + _origin.url("/hello.wav") + "\""), std::string::npos)
      << meta->body;
  EXPECT_NE(meta->body.find("\"kind\":\"url\""), std::string::npos);
  const json_result pcm = play("/hello.wav", "pcm16_8k");
  EXPECT_NE(id_of(pcm), first_id);
  EXPECT_EQ(_origin.requests("/hello.wav"), 2u);
}

TEST_F(MediaApiTest, SignedUrlVariantsShareOneEntry) {
  start();
  _origin.set("/greeting.wav", reply(tone(1.0)));
  const json_result a = play("/greeting.wav?X-Amz-Signature=aaa&X-Amz-Date=20240101T000000Z&v=1");
  const json_result b = play("/greeting.wav?X-Amz-Signature=bbb&X-Amz-Date=20240202T000000Z&v=1");
  ASSERT_EQ(a.status, 200) << a.body;
  ASSERT_EQ(b.status, 200) << b.body;
  EXPECT_EQ(id_of(a), id_of(b));
  EXPECT_TRUE(bool(b.doc["cached"]));
  EXPECT_EQ(_origin.requests("/greeting.wav"), 1u);
  // A parameter that is not volatile names another object.
  const json_result c = play("/greeting.wav?X-Amz-Signature=ccc&v=2");
  EXPECT_NE(id_of(c), id_of(a));
  EXPECT_EQ(metric("switchboard_media_cache_entries"), 2);
}

TEST_F(MediaApiTest, VolatileParamsAreConfigurable) {
  start([](server::options& o) { o.media_volatile_params = "session"; });
  _origin.set("/x.wav", reply(tone(0.5)));
  const json_result a = play("/x.wav?session=1");
  const json_result b = play("/x.wav?session=2");
  EXPECT_EQ(id_of(a), id_of(b));
  const json_result c = play("/x.wav?X-Amz-Signature=1");  // not volatile any more
  EXPECT_NE(id_of(c), id_of(a));
}

TEST_F(MediaApiTest, StaleEntryIsRevalidatedWith304AndReconvertedWhenTheEtagChanges) {
  start();
  _origin.set("/menu.wav",
              reply(tone(1.0)).with_header("ETag", "\"v1\"").with_header("Cache-Control", "max-age=0"));
  const json_result first = play("/menu.wav");
  ASSERT_EQ(first.status, 200) << first.body;
  const json_result second = play("/menu.wav");
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_TRUE(bool(second.doc["cached"]));
  EXPECT_EQ(_origin.requests("/menu.wav"), 2u);
  EXPECT_EQ(_origin.not_modified("/menu.wav"), 1u);
  EXPECT_EQ(_origin.last_header("/menu.wav", "If-None-Match"), "\"v1\"");
  EXPECT_EQ(metric("switchboard_media_conversions_total"), 1);
  EXPECT_EQ(metric("switchboard_media_revalidated_total"), 1);

  _origin.set("/menu.wav",
              reply(tone(1.5)).with_header("ETag", "\"v2\"").with_header("Cache-Control", "max-age=0"));
  const json_result third = play("/menu.wav");
  ASSERT_EQ(third.status, 200) << third.body;
  EXPECT_FALSE(bool(third.doc["cached"]));
  EXPECT_EQ(id_of(third), id_of(first));
  EXPECT_NEAR(static_cast<double>(std::uint64_t(third.doc["duration_ms"])), 1500.0, 20.0);
  EXPECT_EQ(metric("switchboard_media_conversions_total"), 2);
  auto file = http(nullptr)->Get("/media/" + id_of(third));
  ASSERT_TRUE(file && file->status == 200);
  EXPECT_EQ(file->body.size(), std::uint64_t(third.doc["bytes"]));
  EXPECT_EQ(file->get_header_value("Cache-Control"), "no-cache") << "max-age=0 at the origin";
}

TEST_F(MediaApiTest, FiftyConcurrentRequestsMakeOneOriginFetch) {
  start();
  _origin.set("/popular.wav", reply(tone(1.0)).with_delay(300ms));
  constexpr int n = 50;
  std::latch go(n);
  std::vector<std::thread> threads;
  std::vector<int> statuses(n);
  std::vector<std::string> bodies(n);
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      httplib::Client c(_broker->admin_url());
      c.set_bearer_token_auth(publish_token);
      c.set_read_timeout(30, 0);
      go.arrive_and_wait();
      auto r = c.Post("/v1/media", R"({"url":")" + _origin.url("/popular.wav") + "\"}", "application/json");
      statuses[i] = r ? r->status : -1;
      bodies[i] = r ? r->body : "";
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(statuses[i], 200) << bodies[i];
    EXPECT_EQ(bodies[i].substr(0, 40), bodies[0].substr(0, 40));  // same id
  }
  EXPECT_EQ(_origin.requests("/popular.wav"), 1u);
  EXPECT_EQ(metric("switchboard_media_conversions_total"), 1);
  EXPECT_EQ(metric("switchboard_media_fetches_total"), 1);
}

TEST_F(MediaApiTest, BadMediaGetsExactErrorsIsNotCachedAndOtherRequestsGoOn) {
  start([](server::options& o) {
    o.media_max_bytes = 200'000;
    o.media_max_seconds = 3;
    o.media_fetch_timeout_ms = 500;
  });
  _origin.set("/good.wav", reply(tone(1.0, 8000, 1)));
  _origin.set("/page", reply("<!doctype html><html><body>Sign in</body></html>").with_type("text/html"));
  std::mt19937 rng(7);
  std::string noise(50'000, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  _origin.set("/noise.bin", reply(noise));
  const std::string whole = tone(1.0);
  _origin.set("/cut.wav", reply(whole.substr(0, 44 + 5000)));
  _origin.set("/long.wav", reply(tone(4.0, 8000, 1)));
  _origin.set("/big.wav", reply(tone(2.0)));
  _origin.set("/slow.wav", reply(tone(1.0, 8000, 1)).with_delay(10s));

  expect_error(play("/page"), 422, "media_invalid", "not audio: libsndfile: Format not recognised.");
  expect_error(play("/noise.bin"), 422, "media_invalid", "not audio: libsndfile: Format not recognised.");
  expect_error(play("/cut.wav"), 422, "media_invalid",
               "truncated: the WAV data chunk announces 176400 bytes but 5000 are present");
  expect_error(play("/long.wav"), 422, "too_large", "too long: 4.0 s > 3 s");
  expect_error(play("/big.wav"), 422, "too_large",
               "too large: " + _origin.url("/big.wav") + " is larger than 200000 bytes");
  expect_error(play("/absent.wav?sig=secret"), 502, "not_found",
               "not found: " + _origin.url("/absent.wav") + " returned 404");
  expect_error(
      play("/slow.wav"), 504, "timeout",
      "timeout: " + _origin.url("/slow.wav") + " did not answer within 500 ms (connect) / 500 ms (total)");
  EXPECT_EQ(metric("switchboard_media_failures_total{kind=\"media_invalid\"}"), 3);
  EXPECT_EQ(metric("switchboard_media_failures_total{kind=\"too_large\"}"), 2);
  EXPECT_EQ(metric("switchboard_media_failures_total{kind=\"timeout\"}"), 1);

  // Not cached: a failure is tried again; and the broker keeps serving.
  expect_error(play("/page"), 422, "media_invalid", "not audio: libsndfile: Format not recognised.");
  EXPECT_EQ(_origin.requests("/page"), 2u);
  const json_result good = play("/good.wav");
  EXPECT_EQ(good.status, 200) << good.body;
  auto ready = http()->Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
}

TEST_F(MediaApiTest, InvalidRequests) {
  start();
  auto check = [&](const std::string& body, int status, const std::string& code, const std::string& message) {
    SCOPED_TRACE(body);
    const json_result r = post(body);
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(std::string_view(r.doc["error"]["code"]), code) << r.body;
    EXPECT_EQ(std::string_view(r.doc["error"]["message"]), message) << r.body;
  };
  check("{", 400, "invalid_json", "invalid JSON at byte 1: missing a name for object member");
  check("[]", 400, "invalid_json", "the body must be a JSON object");
  check("{}", 400, "invalid_request", "invalid request: give exactly one of url and text");
  check(R"({"url":"ftp://x/a.wav"})", 400, "invalid_request",
        "invalid request: url must start with http:// or https://");
  check(R"({"url":"http://x/a.wav","format":"mp3"})", 422, "invalid_attribute",
        R"(attribute "format" must be one of "ulaw_8k", "pcm16_8k", "pcm16_16k")");
  check(R"({"text":"hi","rate":"fast"})", 422, "invalid_attribute", R"(attribute "rate" must be an integer)");
  check(R"({"text":"hi","speed":1})", 422, "unknown_attribute", R"(unknown attribute "speed")");
  check(R"({"text":"hi","rate":10})", 400, "invalid_request", "invalid request: rate 10 outside 80..450");
  // Unknown ids and paths.
  auto meta = http()->Get("/v1/media/u-00000000000000000000000000000000");
  ASSERT_TRUE(meta);
  EXPECT_EQ(meta->status, 404);
  EXPECT_NE(meta->body.find("not found: no media u-00000000000000000000000000000000"), std::string::npos)
      << meta->body;
  auto bad = http(nullptr)->Get("/media/not-an-id");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 404);
  auto method = http()->Put("/v1/media", "{}", "application/json");
  ASSERT_TRUE(method);
  EXPECT_EQ(method->status, 405);
  EXPECT_EQ(method->get_header_value("Allow"), "GET, POST, DELETE");
}

TEST_F(MediaApiTest, ScopesAndThePublicAddress) {
  start();
  _origin.set("/s.wav", reply(tone(0.5)));
  const std::string body = R"({"url":")" + _origin.url("/s.wav") + "\"}";
  auto anonymous = http(nullptr)->Post("/v1/media", body, "application/json");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
  auto reader = http(subscribe_token)->Post("/v1/media", body, "application/json");
  ASSERT_TRUE(reader);
  EXPECT_EQ(reader->status, 403);
  EXPECT_NE(reader->body.find(R"(token \"sub\" lacks the publish scope)"), std::string::npos) << reader->body;
  const json_result made = post(body, publish_token);
  ASSERT_EQ(made.status, 200) << made.body;
  const std::string id = id_of(made);
  auto publisher_delete = http(publish_token)->Delete("/v1/media/" + id);
  ASSERT_TRUE(publisher_delete);
  EXPECT_EQ(publisher_delete->status, 403);
  auto no_token_meta = http(nullptr)->Get("/v1/media/" + id);
  ASSERT_TRUE(no_token_meta);
  EXPECT_EQ(no_token_meta->status, 401);
  auto file = http(nullptr)->Get("/media/" + id);
  ASSERT_TRUE(file);
  EXPECT_EQ(file->status, 200);
}

TEST_F(MediaApiTest, RangesHeadAndConditionalRequests) {
  start();
  _origin.set("/r.wav", reply(tone(1.0)));
  const json_result made = play("/r.wav");
  ASSERT_EQ(made.status, 200) << made.body;
  const std::string path = "/media/" + id_of(made);
  const std::uint64_t size = std::uint64_t(made.doc["bytes"]);
  auto c = http(nullptr);
  auto whole = c->Get(path);
  ASSERT_TRUE(whole && whole->status == 200);
  const std::string etag = whole->get_header_value("ETag");

  auto first = c->Get(path, {{"Range", "bytes=0-99"}});
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 206);
  EXPECT_EQ(first->get_header_value("Content-Range"), "bytes 0-99/" + std::to_string(size));
  EXPECT_EQ(first->get_header_value("Content-Length"), "100");
  EXPECT_EQ(first->body, whole->body.substr(0, 100));

  auto suffix = c->Get(path, {{"Range", "bytes=-100"}});
  ASSERT_TRUE(suffix);
  EXPECT_EQ(suffix->status, 206);
  EXPECT_EQ(suffix->body, whole->body.substr(size - 100));

  auto open_ended = c->Get(path, {{"Range", "bytes=1000-"}});
  ASSERT_TRUE(open_ended);
  EXPECT_EQ(open_ended->status, 206);
  EXPECT_EQ(open_ended->get_header_value("Content-Range"),
            "bytes 1000-" + std::to_string(size - 1) + "/" + std::to_string(size));
  EXPECT_EQ(open_ended->body, whole->body.substr(1000));

  auto past_end = c->Get(path, {{"Range", "bytes=" + std::to_string(size) + "-"}});
  ASSERT_TRUE(past_end);
  EXPECT_EQ(past_end->status, 416);
  EXPECT_EQ(past_end->get_header_value("Content-Range"), "bytes */" + std::to_string(size));
  EXPECT_NE(past_end->body.find("range_not_satisfiable"), std::string::npos);

  auto several = c->Get(path, {{"Range", "bytes=0-1,5-6"}});
  ASSERT_TRUE(several);
  EXPECT_EQ(several->status, 200);
  EXPECT_EQ(several->body.size(), size);

  auto stale_if_range = c->Get(path, {{"Range", "bytes=0-99"}, {"If-Range", "\"other\""}});
  ASSERT_TRUE(stale_if_range);
  EXPECT_EQ(stale_if_range->status, 200);
  auto fresh_if_range = c->Get(path, {{"Range", "bytes=0-99"}, {"If-Range", etag}});
  ASSERT_TRUE(fresh_if_range);
  EXPECT_EQ(fresh_if_range->status, 206);

  auto not_modified = c->Get(path, {{"If-None-Match", etag}});
  ASSERT_TRUE(not_modified);
  EXPECT_EQ(not_modified->status, 304);
  EXPECT_TRUE(not_modified->body.empty());
  EXPECT_EQ(not_modified->get_header_value("ETag"), etag);
  auto modified = c->Get(path, {{"If-None-Match", "\"something-else\""}});
  ASSERT_TRUE(modified);
  EXPECT_EQ(modified->status, 200);

  auto head = c->Head(path);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->get_header_value("Content-Length"), std::to_string(size));
  EXPECT_TRUE(head->body.empty());

  // Keep-alive after file bodies: the same connection answers again.
  auto again = c->Get(path);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, whole->body);
  EXPECT_EQ(metric("switchboard_media_not_modified_total"), 1);
  EXPECT_EQ(metric("switchboard_media_partial_total"), 4);
}

TEST_F(MediaApiTest, DeleteEvictsAndEventsReachSubscribersOfSystemMedia) {
  start([](server::options& o) { o.media_cache_bytes = 20'000; });  // two 1 s μ-law files
  client_options co;
  co.url = _broker->endpoint();
  co.token = admin_token;
  auto sub_client = client::connect(co);
  ASSERT_TRUE(sub_client.has_value()) << sub_client.error().message;
  auto sub = (*sub_client)->subscribe("system.media");
  ASSERT_TRUE(sub.has_value()) << sub.error().message;
  auto next_event = [&]() -> std::string {
    auto m = (*sub)->next(10s);
    if (!m || !*m) return "";
    return (**m).payload;
  };

  for (const char* p : {"/e1.wav", "/e2.wav", "/e3.wav"}) _origin.set(p, reply(tone(1.0)));
  const json_result a = play("/e1.wav");
  ASSERT_EQ(a.status, 200) << a.body;
  const std::string cached = next_event();
  EXPECT_TRUE(cached.starts_with(R"({"type":"media.cached","data":{"id":")" + id_of(a) + "\"")) << cached;
  EXPECT_NE(cached.find("\"source\":\"" + _origin.url("/e1.wav") + "\""), std::string::npos) << cached;

  expect_error(play("/missing.wav?token=secret"), 502, "not_found",
               "not found: " + _origin.url("/missing.wav") + " returned 404", 1);
  const std::string failed = next_event();
  EXPECT_TRUE(failed.starts_with(R"({"type":"media.failed","data":{)")) << failed;
  EXPECT_NE(failed.find("\"code\":\"not_found\""), std::string::npos) << failed;
  EXPECT_EQ(failed.find("secret"), std::string::npos) << "signatures never reach events: " << failed;

  ASSERT_EQ(play("/e2.wav").status, 200);
  EXPECT_NE(next_event().find("media.cached"), std::string::npos);
  ASSERT_EQ(play("/e3.wav").status, 200);  // over 20 000 bytes: e1 (least recently used) goes
  std::string evicted = next_event();
  if (evicted.find("media.cached") != std::string::npos) evicted = next_event();
  EXPECT_TRUE(evicted.starts_with(R"({"type":"media.evicted","data":{"id":")" + id_of(a) + "\"")) << evicted;
  EXPECT_NE(evicted.find("\"reason\":\"size\""), std::string::npos) << evicted;
  auto gone = http(nullptr)->Get("/media/" + id_of(a));
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404);

  const json_result b = play("/e2.wav");
  ASSERT_TRUE(bool(b.doc["cached"]));
  auto del = http()->Delete("/v1/media/" + id_of(b));
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 204);
  std::string deleted;
  for (int i = 0; i < 3 && deleted.find("\"reason\":\"deleted\"") == std::string::npos; ++i)
    deleted = next_event();
  EXPECT_TRUE(deleted.starts_with(R"({"type":"media.evicted","data":{"id":")" + id_of(b) + "\"")) << deleted;
  auto after = http(nullptr)->Get("/media/" + id_of(b));
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 404);
  auto twice = http()->Delete("/v1/media/" + id_of(b));
  ASSERT_TRUE(twice);
  EXPECT_EQ(twice->status, 404);
  EXPECT_EQ(metric("switchboard_media_deletions_total"), 1);
  EXPECT_EQ(metric("switchboard_media_evictions_total"), 1);
}

TEST_F(MediaApiTest, MetricsAreOnTheBrokersMetricsPage) {
  start();
  _origin.set("/m.wav", reply(tone(1.0)));
  const json_result made = play("/m.wav");
  ASSERT_EQ(made.status, 200);
  auto file = http(nullptr)->Get("/media/" + id_of(made));
  ASSERT_TRUE(file && file->status == 200);
  auto page = http(nullptr)->Get("/metrics");
  ASSERT_TRUE(page && page->status == 200);
  for (const std::string& line :
       {"# TYPE switchboard_media_cache_bytes gauge\nswitchboard_media_cache_bytes " +
            std::to_string(file->body.size()),
        std::string("switchboard_media_requests_total{route=\"resolve\"} 1"),
        std::string("switchboard_media_requests_total{route=\"file\"} 1"),
        "switchboard_media_served_bytes_total " + std::to_string(file->body.size()),
        std::string("switchboard_media_failures_total{kind=\"media_invalid\"} 0"),
        std::string("switchboard_published_total")}) {
    EXPECT_NE(page->body.find(line), std::string::npos) << line;
  }
}

TEST_F(MediaApiTest, MediaCanBeTurnedOff) {
  start([](server::options& o) { o.media = false; });
  auto r = http()->Post("/v1/media", "{}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(_dir.path()) / "media"));
}

TEST_F(MediaApiTest, CliMediaGetPrintsTheAddressAndMetadata) {
  start();
  _origin.set("/cli.wav", reply(tone(1.0)));
  _origin.set("/cli.html", reply("<html>no</html>").with_type("text/html"));
  const std::string cli = SWITCHBOARD_CLI_PATH;
  const std::vector<std::string> global = {cli, "--admin-url", _broker->admin_url(), "--token",
                                           publish_token};
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = global;
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<test::child_process>(argv);
  };

  auto get = run({"media", "get", _origin.url("/cli.wav?X-Amz-Signature=s")});
  ASSERT_EQ(get->wait(30s), 0) << get->stderr_text;
  const std::size_t nl = get->stdout_text.find('\n');
  ASSERT_NE(nl, std::string::npos) << get->stdout_text;
  const std::string address = get->stdout_text.substr(0, nl);
  EXPECT_TRUE(address.starts_with(_broker->admin_url() + "/media/u-")) << address;
  const std::string json = get->stdout_text.substr(nl + 1);
  EXPECT_NE(json.find("\"cached\":false"), std::string::npos) << json;
  EXPECT_NE(json.find("\"format\":\"ulaw_8k\""), std::string::npos) << json;
  auto fetched = http(nullptr)->Get(address.substr(_broker->admin_url().size()));
  ASSERT_TRUE(fetched);
  EXPECT_EQ(fetched->status, 200);

  auto say =
      run({"media", "get", "--say", "Goodbye.", "--voice", "en", "--rate", "200", "--format", "pcm16_8k"});
  ASSERT_EQ(say->wait(30s), 0) << say->stderr_text;
  EXPECT_NE(say->stdout_text.find("/media/t-"), std::string::npos) << say->stdout_text;
  EXPECT_NE(say->stdout_text.find("\"format\":\"pcm16_8k\""), std::string::npos) << say->stdout_text;

  auto bad = run({"media", "get", _origin.url("/cli.html")});
  EXPECT_EQ(bad->wait(30s), 1);
  EXPECT_TRUE(bad->stdout_text.empty()) << bad->stdout_text;
  EXPECT_EQ(bad->stderr_text,
            "switchboard-cli: media_invalid: not audio: libsndfile: Format not recognised.\n");

  auto usage = run({"media", "get"});
  EXPECT_EQ(usage->wait(30s), 2);
  EXPECT_NE(usage->stderr_text.find("media get: give either URL or --say TEXT"), std::string::npos)
      << usage->stderr_text;
}

}  // namespace
}  // namespace switchboard::media
