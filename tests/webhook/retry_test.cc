// The pure rules of broker/webhook: status classification, Retry-After, backoff, the dead-letter
// record and the `webhook` attribute parser.
#include "broker/webhook/retry.h"

#include <gtest/gtest.h>

#include "broker/webhook/dead_letter.h"
#include "broker/webhook/sink.h"

namespace switchboard::webhook {
namespace {

using namespace std::chrono_literals;

std::chrono::system_clock::time_point at_unix(std::int64_t s) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(s));
}

TEST(ClassifyStatus, FollowsTheDocumentedTable) {
  EXPECT_EQ(classify_status(200), outcome::delivered);
  EXPECT_EQ(classify_status(204), outcome::delivered);
  EXPECT_EQ(classify_status(408), outcome::retry);
  EXPECT_EQ(classify_status(429), outcome::retry);
  EXPECT_EQ(classify_status(500), outcome::retry);
  EXPECT_EQ(classify_status(503), outcome::retry);
  EXPECT_EQ(classify_status(400), outcome::permanent);
  EXPECT_EQ(classify_status(404), outcome::permanent);
  EXPECT_EQ(classify_status(301), outcome::permanent);
  EXPECT_EQ(classify_status(100), outcome::permanent);
}

TEST(RetryAfter, DeltaSeconds) {
  const auto now = at_unix(1'700'000'000);
  EXPECT_EQ(parse_retry_after("120", now), 120'000ms);
  EXPECT_EQ(parse_retry_after(" 0 ", now), 0ms);
  EXPECT_EQ(parse_retry_after("99999999999999999999999", now), 86'400'000ms);  // capped at a day
  EXPECT_EQ(parse_retry_after("1.5", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("-1", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("12abc", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("", now), std::nullopt);
}

TEST(RetryAfter, HttpDateInAllThreeForms) {
  // 1994-11-06T08:49:37Z = 784111777
  const auto now = at_unix(784'111'777 - 30);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), 30'000ms);
  EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now), 30'000ms);
  EXPECT_EQ(parse_retry_after("Sun Nov  6 08:49:37 1994", now), 30'000ms);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at_unix(784'111'777 + 5)), 0ms);  // past
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT trailing", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("tomorrow, maybe", now), std::nullopt);
}

TEST(Backoff, DoublesUpToTheCapWithoutJitter) {
  std::mt19937_64 random(1);
  EXPECT_EQ(backoff(1, 100ms, 1000ms, 0.0, random), 100ms);
  EXPECT_EQ(backoff(2, 100ms, 1000ms, 0.0, random), 200ms);
  EXPECT_EQ(backoff(4, 100ms, 1000ms, 0.0, random), 800ms);
  EXPECT_EQ(backoff(5, 100ms, 1000ms, 0.0, random), 1000ms);
  EXPECT_EQ(backoff(4'000'000'000u, 100ms, 1000ms, 0.0, random), 1000ms);
}

TEST(Backoff, FullJitterStaysWithinZeroAndTheCap) {
  std::mt19937_64 random(7);
  bool below_half = false;
  for (int i = 0; i < 1000; ++i) {
    const auto d = backoff(3, 100ms, 10'000ms, 1.0, random);
    EXPECT_GE(d, 0ms);
    EXPECT_LE(d, 400ms);
    below_half = below_half || d < 200ms;
  }
  EXPECT_TRUE(below_half);
}

dead_letter sample() {
  dead_letter d;
  d.id = new_dead_letter_id(at_unix(1'700'000'000), 42);
  d.channel = "acme.orders";
  d.sink = "billing";
  d.url = "http://127.0.0.1:1/hook";
  d.event_id = event_id("acme.orders", 0xabc, 7);
  d.epoch = 0xabc;
  d.seq = 7;
  d.attempts = 3;
  d.last_status = 503;
  d.last_error = "HTTP 503";
  d.reason = "attempts exhausted (3)";
  d.failed_at = format_failed_at(at_unix(1'700'000'000) + 123ms);
  d.body = R"({"order":"ä"})";
  return d;
}

TEST(DeadLetter, RoundTripsThroughItsJson) {
  const dead_letter d = sample();
  EXPECT_EQ(d.id, "17979cfe362a0000-0000002a");
  EXPECT_TRUE(is_dead_letter_id(d.id));
  EXPECT_EQ(d.event_id, "acme.orders@0000000000000abc:7");
  EXPECT_EQ(d.failed_at, "2023-11-14T22:13:20.123Z");
  const std::string json = to_json(d);
  EXPECT_EQ(
      json,
      R"({"id":"17979cfe362a0000-0000002a","source":"webhook","channel":"acme.orders","sink":"billing",)"
      R"("url":"http://127.0.0.1:1/hook","event_id":"acme.orders@0000000000000abc:7","epoch":"0000000000000abc",)"
      R"("seq":7,"attempts":3,"last_status":503,"last_error":"HTTP 503",)"
      R"j("reason":"attempts exhausted (3)","failed_at":"2023-11-14T22:13:20.123Z",)j"
      R"("body":"{\"order\":\"ä\"}"})");
  auto back = parse_dead_letter(json);
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(*back, d);
}

TEST(DeadLetter, BodyThatIsNotUtf8IsStoredAsBase64) {
  dead_letter d = sample();
  d.body = std::string("\xff\x00\x01 raw", 7);
  const std::string json = to_json(d);
  EXPECT_NE(json.find(R"("body_base64":"/wABIHJhdw==")"), std::string::npos) << json;
  auto back = parse_dead_letter(json);
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(back->body, d.body);
}

TEST(DeadLetter, RejectsRecordsOfOthersAndDamagedOnes) {
  EXPECT_EQ(parse_dead_letter("[]").error(), "dead letter is not a JSON object");
  EXPECT_EQ(parse_dead_letter(R"({"id":"a"})").error(), "dead letter field \"source\" must be a string");
  std::string json = to_json(sample());
  json.replace(json.find("\"seq\":7"), 7, "\"seq\":-7");
  EXPECT_EQ(parse_dead_letter(json).error(), "dead letter field \"seq\" must be an unsigned integer");
  EXPECT_FALSE(is_dead_letter_id("../x"));
  EXPECT_FALSE(is_dead_letter_id(""));
  EXPECT_FALSE(is_dead_letter_id(std::string(65, 'a')));
}

TEST(ParseSinks, ReadsEveryField) {
  auto sinks = parse_sinks(
      R"([{"name":"a","url":"https://example.com/h","secret":"s","headers":{"X-Token":"t"},"max_in_flight":4,"timeout_ms":250},)"
      R"( {"name":"b","url":"http://127.0.0.1:9/"}])");
  ASSERT_TRUE(sinks) << sinks.error();
  ASSERT_EQ(sinks->size(), 2u);
  const sink& a = *(*sinks)[0];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.secret, "s");
  ASSERT_EQ(a.headers.size(), 1u);
  EXPECT_EQ(a.headers[0].first, "X-Token");
  EXPECT_EQ(a.max_in_flight, 4u);
  EXPECT_EQ(a.timeout, 250ms);
  EXPECT_EQ((*sinks)[1]->max_in_flight, 16u);
  EXPECT_EQ((*sinks)[1]->timeout, 5000ms);
}

TEST(ParseSinks, AnswersTheExactError) {
  EXPECT_EQ(parse_sinks("{}").error(), "webhook must be a JSON array of sink objects");
  EXPECT_EQ(parse_sinks(R"([{"name":"a"}])").error(), "webhook[0].url is required");
  EXPECT_EQ(parse_sinks(R"([{"name":"a","url":"ftp://x"}])").error(),
            "webhook[0].url must be an http:// or https:// URL");
  EXPECT_EQ(parse_sinks(R"([{"name":"a","url":"http://x"},{"name":"a","url":"http://y"}])").error(),
            "webhook[1].name \"a\" is used twice");
  EXPECT_EQ(parse_sinks(R"([{"name":"a","url":"http://x","max_in_flight":0}])").error(),
            "webhook[0].max_in_flight must be between 1 and 1024");
  EXPECT_EQ(parse_sinks(R"([{"name":"a","url":"http://x","headers":{"Switchboard-Attempt":"9"}}])").error(),
            "webhook[0].headers cannot set \"Switchboard-Attempt\"");
  EXPECT_EQ(parse_sinks(R"([{"name":"a","url":"http://x","headers":{"X":"a\r\nB: c"}}])").error(),
            "webhook[0].headers \"X\" has a control character");
  EXPECT_EQ(parse_sinks(R"([{"name":"a","url":"http://x","retries":3}])").error(),
            "webhook[0] has an unknown field \"retries\"");
}

}  // namespace
}  // namespace switchboard::webhook
