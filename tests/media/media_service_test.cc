// media_service end to end: a real libcurl client fetching generated audio from a local origin
// (127.0.0.1, port 0), converting it, caching it in a temporary data dir with its index in a real
// RocksDB store there (as the broker lays it out: the store in <data_dir>, files in <data_dir>/media).
#include "broker/media/media_service.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <latch>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "broker/media/store_media_index.h"
#include "broker/store/store.h"
#include "media/test_audio.h"
#include "support/http_origin.h"

namespace switchboard::media {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::http_origin;
using test::reply;

std::string tone(double seconds) {
  return test_audio::sine(SF_FORMAT_WAV | SF_FORMAT_PCM_16, 44100, 2, seconds);
}

class MediaServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = (fs::temp_directory_path() / "media_service_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(dir.data()), nullptr);
    _options.data_dir = dir;
    _options.on_event = [this](std::string_view type, std::string json) {
      std::lock_guard lock(_events_mutex);
      _events.emplace_back(std::string(type) + " " + json);
    };
    auto http = http_client::client::create();
    ASSERT_TRUE(http.has_value());
    _http = std::move(*http);
    _http->start();
    open();
  }

  void TearDown() override {
    _service.reset();
    _store.reset();
    _http->stop();
    fs::remove_all(_options.data_dir);
  }

  // Opens the service over a freshly opened store, as a restarted broker does.
  void open() {
    _service.reset();
    _store.reset();
    auto st = store::store::open_rocksdb(_options.data_dir.string());
    ASSERT_TRUE(st.has_value()) << st.error().message;
    _store = std::move(*st);
    auto service = media_service::create(_options, *_http, open_store_media_index(*_store));
    ASSERT_TRUE(service.has_value()) << service.error().message;
    _service = std::move(*service);
  }

  std::expected<media_info, error> play(const std::string& path_and_query, format fmt = format::ulaw_8k) {
    media_request r;
    r.url = _origin.url(path_and_query);
    r.fmt = fmt;
    return _service->resolve(r);
  }

  std::expected<media_info, error> say(const std::string& text, const std::string& voice = "en",
                                       format fmt = format::ulaw_8k) {
    media_request r;
    r.text = text;
    r.voice = voice;
    r.fmt = fmt;
    return _service->resolve(r);
  }

  // Asserts `r` failed with `code` and `message`, and that nothing was cached for it.
  void expect_failure(const std::expected<media_info, error>& r, errc code, const std::string& message) {
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, code) << r.error().message;
    EXPECT_EQ(r.error().message, message);
    EXPECT_EQ(_service->cache_entries(), 0u);
    EXPECT_EQ(_service->stats().failures[static_cast<std::size_t>(code)].load(), 1u);
    std::lock_guard lock(_events_mutex);
    ASSERT_FALSE(_events.empty());
    EXPECT_TRUE(_events.back().starts_with("media.failed ")) << _events.back();
    EXPECT_NE(_events.back().find(std::string(errc_name(code))), std::string::npos) << _events.back();
  }

  std::vector<std::string> events() {
    std::lock_guard lock(_events_mutex);
    return _events;
  }

  std::uint64_t conversions() const { return _service->stats().conversions.load(); }

  http_origin _origin;
  media_options _options;
  std::unique_ptr<http_client::client> _http;
  std::unique_ptr<store::store> _store;
  std::unique_ptr<media_service> _service;
  std::mutex _events_mutex;
  std::vector<std::string> _events;
};

TEST_F(MediaServiceTest, ConvertsOnceThenServesFromTheCache) {
  _origin.set("/hello.wav", reply(tone(2.0)).with_type("audio/wav"));
  auto first = play("/hello.wav");
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_FALSE(first->cached);
  EXPECT_TRUE(is_media_id(first->id));
  EXPECT_EQ(first->address, "/media/" + first->id);
  EXPECT_EQ(first->fmt, format::ulaw_8k);
  EXPECT_NEAR(static_cast<double>(first->duration_ms), 2000.0, 20.0);

  auto second = play("/hello.wav");
  ASSERT_TRUE(second.has_value());
  EXPECT_TRUE(second->cached);
  EXPECT_EQ(second->id, first->id);
  EXPECT_EQ(_origin.requests("/hello.wav"), 1u);
  EXPECT_EQ(conversions(), 1u);
  EXPECT_EQ(_service->stats().hits.load(), 1u);

  auto file = _service->open(first->id);
  ASSERT_TRUE(file.has_value()) << file.error().message;
  EXPECT_EQ(fs::file_size(file->path), first->bytes);
  std::ifstream in(file->path, std::ios::binary);
  const std::string wav((std::istreambuf_iterator<char>(in)), {});
  const auto d = test_audio::decode(wav);
  EXPECT_EQ(d.info.format, SF_FORMAT_WAV | SF_FORMAT_ULAW);
  EXPECT_EQ(d.info.samplerate, 8000);
  EXPECT_EQ(d.info.channels, 1);
  const std::span<const float> window(d.mono.data() + 800, 8000);
  EXPECT_NEAR(test_audio::dominant_hz(window, 8000, 100, 3900, 10), 1000.0, 10.0);

  const auto seen = events();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].starts_with("media.cached {\"id\":\"" + first->id + "\",\"format\":\"ulaw_8k\",\"source\":\"" +
                                  _origin.url("/hello.wav") + "\",\"bytes\":" + std::to_string(first->bytes)))
      << seen[0];
}

TEST_F(MediaServiceTest, SignedUrlVariantsShareOneId) {
  _origin.set("/signed.wav", reply(tone(1.0)));
  auto a = play("/signed.wav?X-Amz-Date=20240101T000000Z&X-Amz-Signature=aaa&v=1");
  auto b = play("/signed.wav?X-Amz-Date=20240202T000000Z&X-Amz-Signature=bbb&v=1");
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(a->id, b->id);
  EXPECT_TRUE(b->cached);
  EXPECT_EQ(_origin.requests("/signed.wav"), 1u);
  auto other = play("/signed.wav?v=2");
  ASSERT_TRUE(other.has_value());
  EXPECT_NE(other->id, a->id);
  EXPECT_EQ(_origin.requests("/signed.wav"), 2u);
}

TEST_F(MediaServiceTest, FormatsAreSeparateMedia) {
  _origin.set("/f.wav", reply(tone(1.0)));
  auto ulaw = play("/f.wav", format::ulaw_8k);
  auto wide = play("/f.wav", format::pcm16_16k);
  ASSERT_TRUE(ulaw.has_value() && wide.has_value());
  EXPECT_NE(ulaw->id, wide->id);
  EXPECT_FALSE(wide->cached);
  EXPECT_EQ(wide->fmt, format::pcm16_16k);
  EXPECT_GT(wide->bytes, ulaw->bytes * 3);
}

TEST_F(MediaServiceTest, SpeechIsCachedByTextVoiceRateAndFormat) {
  auto a = say("Welcome to switchboard.");
  ASSERT_TRUE(a.has_value()) << a.error().message;
  EXPECT_FALSE(a->cached);
  EXPECT_TRUE(a->id.starts_with("t-"));
  EXPECT_GT(a->duration_ms, 500u);
  auto again = say("Welcome to switchboard.");
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->cached);
  EXPECT_EQ(again->id, a->id);
  EXPECT_EQ(_service->stats().syntheses.load(), 1u);

  auto other_voice = say("Welcome to switchboard.", "de");
  auto other_text = say("Goodbye.");
  auto other_format = say("Welcome to switchboard.", "en", format::pcm16_8k);
  ASSERT_TRUE(other_voice.has_value() && other_text.has_value() && other_format.has_value());
  EXPECT_NE(other_voice->id, a->id);
  EXPECT_NE(other_text->id, a->id);
  EXPECT_NE(other_format->id, a->id);
  EXPECT_EQ(_service->stats().syntheses.load(), 4u);
}

TEST_F(MediaServiceTest, FreshEntryIsNotRevalidated) {
  _origin.set("/fresh.wav", reply(tone(1.0)).with_header("Cache-Control", "max-age=3600").with_header("ETag", "\"1\""));
  ASSERT_TRUE(play("/fresh.wav").has_value());
  ASSERT_TRUE(play("/fresh.wav").has_value());
  EXPECT_EQ(_origin.requests("/fresh.wav"), 1u);
}

TEST_F(MediaServiceTest, StaleEntryWithUnchangedEtagIsRevalidatedNotReconverted) {
  _origin.set("/etag.wav", reply(tone(1.0)).with_header("Cache-Control", "max-age=0").with_header("ETag", "\"v1\""));
  auto first = play("/etag.wav");
  ASSERT_TRUE(first.has_value()) << first.error().message;
  auto second = play("/etag.wav");
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_TRUE(second->cached);
  EXPECT_EQ(second->bytes, first->bytes);
  EXPECT_EQ(_origin.requests("/etag.wav"), 2u);
  EXPECT_EQ(_origin.not_modified("/etag.wav"), 1u);
  EXPECT_EQ(_origin.last_header("/etag.wav", "If-None-Match"), "\"v1\"");
  EXPECT_EQ(conversions(), 1u);
  EXPECT_EQ(_service->stats().revalidated.load(), 1u);

  // The origin changes the content: a new conversion under the same id.
  _origin.set("/etag.wav", reply(tone(2.0)).with_header("Cache-Control", "max-age=0").with_header("ETag", "\"v2\""));
  auto third = play("/etag.wav");
  ASSERT_TRUE(third.has_value()) << third.error().message;
  EXPECT_FALSE(third->cached);
  EXPECT_EQ(third->id, first->id);
  EXPECT_NEAR(static_cast<double>(third->duration_ms), 2000.0, 20.0);
  EXPECT_EQ(conversions(), 2u);
  auto file = _service->open(first->id);
  ASSERT_TRUE(file.has_value());
  EXPECT_EQ(fs::file_size(file->path), third->bytes);
  EXPECT_EQ(file->entry.etag, "\"v2\"");
}

TEST_F(MediaServiceTest, LastModifiedRevalidation) {
  const std::string date = "Tue, 02 Jan 2024 03:04:05 GMT";
  _origin.set("/lm.wav", reply(tone(1.0)).with_header("Cache-Control", "no-cache").with_header("Last-Modified", date));
  ASSERT_TRUE(play("/lm.wav").has_value());
  auto second = play("/lm.wav");
  ASSERT_TRUE(second.has_value());
  EXPECT_TRUE(second->cached);
  EXPECT_EQ(_origin.last_header("/lm.wav", "If-Modified-Since"), date);
  EXPECT_EQ(_origin.not_modified("/lm.wav"), 1u);
  EXPECT_EQ(conversions(), 1u);
}

TEST_F(MediaServiceTest, NoStoreWithoutValidatorsFetchesEveryTime) {
  _origin.set("/live.wav", reply(tone(1.0)).with_header("Cache-Control", "no-store"));
  ASSERT_TRUE(play("/live.wav").has_value());
  auto second = play("/live.wav");
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(second->cached);
  EXPECT_EQ(_origin.requests("/live.wav"), 2u);
  EXPECT_EQ(conversions(), 2u);
}

TEST_F(MediaServiceTest, ConcurrentRequestsShareOneFetchAndConversion) {
  // The origin holds its answer back so that the requests overlap.
  _origin.set("/popular.wav", reply(tone(1.0)).with_delay(300ms));
  constexpr int n = 50;
  std::vector<std::expected<media_info, error>> results(n);
  std::latch start(n);
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        results[static_cast<std::size_t>(i)] = play("/popular.wav?X-Amz-Signature=" + std::to_string(i));
      });
    }
  }
  for (const auto& r : results) {
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->id, results[0]->id);
  }
  EXPECT_EQ(_origin.requests("/popular.wav"), 1u);
  EXPECT_EQ(conversions(), 1u);
  EXPECT_EQ(_service->stats().fetches.load(), 1u);
  const auto& s = _service->stats();
  EXPECT_EQ(s.misses.load() + s.hits.load() + s.shared.load(), static_cast<std::uint64_t>(n));
  EXPECT_GT(s.shared.load(), 0u) << "the origin's 300 ms delay should make requests wait for the leader";
}

TEST_F(MediaServiceTest, HtmlPageIsNotAudio) {
  _origin.set("/page", reply("<!doctype html><html><body>Sign in</body></html>").with_type("text/html"));
  expect_failure(play("/page"), errc::media_invalid, "not audio: libsndfile: Format not recognised.");
  // Not cached: the next request asks the origin again.
  EXPECT_FALSE(play("/page").has_value());
  EXPECT_EQ(_origin.requests("/page"), 2u);
}

TEST_F(MediaServiceTest, RandomBytesAreNotAudio) {
  std::mt19937 rng(11);
  std::string bytes(50000, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  _origin.set("/noise.bin", reply(bytes));
  expect_failure(play("/noise.bin"), errc::media_invalid, "not audio: libsndfile: Format not recognised.");
}

TEST_F(MediaServiceTest, TruncatedFile) {
  const std::string wav = tone(1.0);
  _origin.set("/cut.wav", reply(wav.substr(0, 44 + 5000)));
  expect_failure(play("/cut.wav"), errc::media_invalid,
                 "truncated: the WAV data chunk announces 176400 bytes but 5000 are present");
}

TEST_F(MediaServiceTest, TooLong) {
  _origin.set("/long.wav", reply(test_audio::sine(SF_FORMAT_WAV | SF_FORMAT_PCM_U8, 1000, 1, 700.0, 100.0)));
  expect_failure(play("/long.wav"), errc::too_large, "too long: 700.0 s > 600 s");
}

TEST_F(MediaServiceTest, TooLarge) {
  _options.max_bytes = 100'000;
  open();
  _origin.set("/big.wav", reply(tone(1.0)));
  expect_failure(play("/big.wav"), errc::too_large,
                 "too large: " + _origin.url("/big.wav") + " is larger than 100000 bytes");
}

TEST_F(MediaServiceTest, TooLargeWhileStreaming) {
  _options.max_bytes = 100'000;
  open();
  _origin.set("/big-stream.wav", reply(tone(1.0)).as_chunked());
  expect_failure(play("/big-stream.wav"), errc::too_large,
                 "too large: " + _origin.url("/big-stream.wav") + " is larger than 100000 bytes");
}

TEST_F(MediaServiceTest, OriginNotFound) {
  expect_failure(play("/gone.wav?X-Amz-Signature=secret"), errc::not_found,
                 "not found: " + _origin.url("/gone.wav") + " returned 404");
}

TEST_F(MediaServiceTest, OriginServerError) {
  _origin.set("/broken.wav", reply("oops").with_status(503));
  expect_failure(play("/broken.wav"), errc::fetch_failed, "fetch failed: " + _origin.url("/broken.wav") + " returned 503");
}

TEST_F(MediaServiceTest, OriginTimeout) {
  _options.fetch_timeout = 300ms;
  open();
  _origin.set("/slow.wav", reply(tone(1.0)).with_delay(30s));
  expect_failure(play("/slow.wav"), errc::timeout,
                 "timeout: " + _origin.url("/slow.wav") + " did not answer within 5000 ms (connect) / 300 ms (total)");
}

TEST_F(MediaServiceTest, OriginDown) {
  std::string url;
  {
    http_origin closed;
    url = closed.url("/x.wav");
  }
  media_request r;
  r.url = url;
  auto result = _service->resolve(r);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, errc::fetch_failed);
  EXPECT_TRUE(result.error().message.starts_with("fetch failed: " + url + ": connect_failed: ")) << result.error().message;
}

TEST_F(MediaServiceTest, InvalidRequests) {
  media_request neither;
  auto r1 = _service->resolve(neither);
  ASSERT_FALSE(r1.has_value());
  EXPECT_EQ(r1.error().code, errc::invalid_request);
  EXPECT_EQ(r1.error().message, "invalid request: give exactly one of url and text");

  media_request both;
  both.url = "http://x/a.wav";
  both.text = "hi";
  EXPECT_EQ(_service->resolve(both).error().message, "invalid request: give exactly one of url and text");

  media_request ftp;
  ftp.url = "ftp://x/a.wav";
  EXPECT_EQ(_service->resolve(ftp).error().message, "invalid request: url must start with http:// or https://");

  EXPECT_EQ(say(std::string(5000, 'a')).error().message, "invalid request: text longer than 4096 bytes");
  EXPECT_EQ(say("hello", "xx-nonexistent").error().message, "invalid request: unknown voice \"xx-nonexistent\"");
  media_request slow;
  slow.text = "hello";
  slow.rate = 10;
  EXPECT_EQ(_service->resolve(slow).error().message, "invalid request: rate 10 outside 80..450");

  EXPECT_EQ(_service->open("../etc/passwd").error().code, errc::invalid_request);
  const std::string absent = "u-0123456789abcdef0123456789abcdef";
  auto missing = _service->open(absent);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, errc::not_found);
  EXPECT_EQ(missing.error().message, "not found: no media " + absent);
  EXPECT_EQ(_service->cache_entries(), 0u);
}

TEST_F(MediaServiceTest, CacheSurvivesReopen) {
  _origin.set("/keep.wav", reply(tone(1.0)));
  auto first = play("/keep.wav");
  ASSERT_TRUE(first.has_value());
  open();  // a new service over the same data dir, as after a restart
  auto again = play("/keep.wav");
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->cached);
  EXPECT_EQ(again->bytes, first->bytes);
  EXPECT_EQ(again->duration_ms, first->duration_ms);
  EXPECT_EQ(_origin.requests("/keep.wav"), 1u);
  EXPECT_TRUE(_service->open(first->id).has_value());
}

TEST_F(MediaServiceTest, EvictsLeastRecentlyUsedBySize) {
  // One second of 8 kHz μ-law is about 8 kB: room for two.
  _options.cache_bytes = 20'000;
  open();
  for (const char* p : {"/a.wav", "/b.wav", "/c.wav"}) _origin.set(p, reply(tone(1.0)));
  auto a = play("/a.wav");
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(play("/b.wav").has_value());
  ASSERT_TRUE(play("/c.wav").has_value());
  EXPECT_EQ(_service->stats().evictions.load(), 1u);
  EXPECT_EQ(_service->cache_entries(), 2u);
  EXPECT_LE(_service->cache_bytes(), 20'000u);
  EXPECT_EQ(_service->open(a->id).error().code, errc::not_found);
  const auto seen = events();
  EXPECT_TRUE(std::ranges::any_of(seen, [&](const std::string& e) {
    return e.starts_with("media.evicted {\"id\":\"" + a->id + "\"");
  }));
  auto back = play("/a.wav");
  ASSERT_TRUE(back.has_value());
  EXPECT_FALSE(back->cached);
  EXPECT_EQ(_origin.requests("/a.wav"), 2u);
}

TEST_F(MediaServiceTest, PrometheusText) {
  _origin.set("/m.wav", reply(tone(1.0)));
  ASSERT_TRUE(play("/m.wav").has_value());
  ASSERT_TRUE(play("/m.wav").has_value());
  EXPECT_FALSE(play("/absent.wav").has_value());
  const std::string text = _service->prometheus_text();
  EXPECT_NE(text.find("# TYPE switchboard_media_cache_hits_total counter\nswitchboard_media_cache_hits_total 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\nswitchboard_media_conversions_total 1\n"), std::string::npos);
  EXPECT_NE(text.find("\nswitchboard_media_fetches_total 2\n"), std::string::npos);
  EXPECT_NE(text.find("\nswitchboard_media_failures_total{kind=\"not_found\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("\nswitchboard_media_failures_total{kind=\"timeout\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("\nswitchboard_media_cache_entries 1\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE switchboard_media_cache_bytes gauge\n"), std::string::npos);
}

}  // namespace
}  // namespace switchboard::media
