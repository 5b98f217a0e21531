// Units of the event proxy that read what comes from the network or define what goes out: the
// CloudEvents document and position text (client/cloudevent), stream tickets (issue, verify,
// expired, tampered, other pattern), GET /v1/stream parameter checks with their exact errors, CORS.
#include <gtest/gtest.h>
#include <simdjson.h>

#include "broker/event_proxy/stream_params.h"
#include "broker/event_proxy/stream_ticket.h"
#include "client/cloudevent/cloudevent.h"

namespace switchboard::event_proxy {
namespace {

admin::http_request get(std::string target, admin::http_fields headers = {}) {
  admin::http_request r;
  r.method = "GET";
  r.target = std::move(target);
  r.headers = std::move(headers);
  return r;
}

TEST(cloudevent_test, position_round_trips_and_splits_at_the_last_at_sign) {
  EXPECT_EQ(cloudevent::format_position("acme.calls", 255, 42), "acme.calls@00000000000000ff:42");
  auto p = cloudevent::parse_position("a@b:c@00000000000000FF:18446744073709551615");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->channel, "a@b:c");
  EXPECT_EQ(p->epoch, 255u);
  EXPECT_EQ(p->seq, 18446744073709551615u);
  for (const char* bad :
       {"", "acme", "@00000000000000ff:1", "acme@ff:1", "acme@00000000000000ff:", "acme@00000000000000ff:-1",
        "acme@00000000000000ff:+1", "acme@00000000000000ff:1x", "acme@0000000000000g0f:1",
        "acme@00000000000000ff;1", "acme@00000000000000ff:18446744073709551616"}) {
    EXPECT_FALSE(cloudevent::parse_position(bad)) << bad;
  }
}

TEST(cloudevent_test, json_payload_is_data_and_other_bytes_are_data_base64) {
  const std::uint64_t t = 1'764'754'414'123'456'789ull;  // 2025-12-03T09:33:34.123456789Z
  const std::string doc = cloudevent::format_event("acme.calls", 255, 42, t, "{ \"a\" : [1, 2] }\n");
  EXPECT_EQ(
      doc, R"({"specversion":"1.0","id":"acme.calls@00000000000000ff:42","source":"/switchboard/acme.calls",)"
           R"("type":"switchboard.event","subject":"acme.calls","time":"2025-12-03T09:33:34.123456Z",)"
           R"("datacontenttype":"application/json","data":{"a":[1,2]},"channel":"acme.calls",)"
           R"("epoch":"00000000000000ff","seq":42})");
  const std::string bin = cloudevent::format_event("x", 1, 1, 0, std::string("\x00\xffhi\n", 5));
  EXPECT_NE(bin.find(R"("data_base64":"AP9oaQo=")"), std::string::npos) << bin;
  EXPECT_EQ(bin.find("datacontenttype"), std::string::npos);
  EXPECT_EQ(bin.find('\n'), std::string::npos);
  // A payload that is one JSON scalar is JSON too.
  EXPECT_NE(cloudevent::format_event("x", 1, 1, 0, "17").find(R"("data":17)"), std::string::npos);
  // Non-UTF-8 channel bytes still give a valid document.
  const std::string odd = cloudevent::format_event("caf\xe9", 1, 1, 0, "{}");
  simdjson::dom::parser parser;
  EXPECT_EQ(parser.parse(odd).error(), simdjson::SUCCESS) << odd;
}

class ticket_test : public ::testing::Test {
 protected:
  const ticket_signer signer{std::array<unsigned char, 32>{1, 2, 3}};
  const auth::principal who{
      .name = "acme-app", .tenant = "acme", .admin = false, .publish = true, .subscribe = true};
};

TEST_F(ticket_test, a_ticket_opens_its_pattern_until_it_expires) {
  const std::string t = signer.issue(who, "acme.calls.>", 1000);
  EXPECT_TRUE(t.starts_with("v1.1000.61636d652d617070.61636d65.")) << t;
  auto ok = signer.verify(t, "acme.calls.>", 1000);
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_EQ(ok->name, "acme-app");
  EXPECT_EQ(ok->tenant, "acme");
  EXPECT_TRUE(ok->subscribe);
  EXPECT_FALSE(ok->publish);  // a ticket grants streaming only
  EXPECT_FALSE(ok->admin);
  EXPECT_EQ(signer.verify(t, "acme.calls.>", 1001).error(), "ticket expired");
  EXPECT_EQ(signer.verify(t, "acme.>", 999).error(),
            "ticket signature does not match this pattern or broker");
  // Another broker process (another key) does not accept it.
  const ticket_signer other{std::array<unsigned char, 32>{9}};
  EXPECT_EQ(other.verify(t, "acme.calls.>", 999).error(),
            "ticket signature does not match this pattern or broker");
}

TEST_F(ticket_test, tampered_and_malformed_tickets_are_refused) {
  const std::string t = signer.issue(who, "acme.>", 1000);
  std::string later = t;
  later.replace(3, 4, "9999");  // a longer life
  EXPECT_EQ(signer.verify(later, "acme.>", 999).error(),
            "ticket signature does not match this pattern or broker");
  // Another tenant ("globex", hex) in place of acme's.
  const std::string other_tenant = "v1.1000.61636d652d617070.676c6f626578." + t.substr(t.rfind('.') + 1);
  EXPECT_EQ(signer.verify(other_tenant, "acme.>", 999).error(),
            "ticket signature does not match this pattern or broker");
  std::string flipped = t;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  EXPECT_EQ(signer.verify(flipped, "acme.>", 999).error(),
            "ticket signature does not match this pattern or broker");
  for (const std::string& bad :
       {std::string(), std::string("v1"), std::string("v2.1000.61.61.") + std::string(64, 'a'),
        std::string("v1.-5.61.61.") + std::string(64, 'a'),
        std::string("v1.1000..61.") + std::string(64, 'a'),
        std::string("v1.1000.6.61.") + std::string(64, 'a'),
        std::string("v1.1000.61.61.") + std::string(63, 'a'),
        std::string("v1.1000.61.61.") + std::string(64, 'A'),
        std::string("v1.1000.61.61.") + std::string(64, 'a') + ".x"}) {
    EXPECT_FALSE(parse_ticket(bad)) << bad;
    EXPECT_EQ(signer.verify(bad, "acme.>", 0).error(), "malformed ticket") << bad;
  }
}

TEST(stream_params_test, parameters_are_checked_with_exact_errors) {
  auto p = parse_stream_params(get("/v1/stream?pattern=acme.%3E&filter=%7B%22a%22%20%3A%201%7D&ticket=t1"));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->pattern, "acme.>");
  EXPECT_EQ(p->filter_json, R"({"a":1})");
  EXPECT_EQ(p->ticket, "t1");
  EXPECT_FALSE(p->resume_from);

  const auto error_of = [](admin::http_request r) {
    auto e = parse_stream_params(r);
    EXPECT_FALSE(e);
    return e ? std::string("ok")
             : std::to_string(e.error().status) + " " + e.error().code + ": " + e.error().message;
  };
  EXPECT_EQ(error_of(get("/v1/stream")), "400 missing_parameter: pattern is required");
  EXPECT_EQ(error_of(get("/v1/stream?pattern=")), "400 missing_parameter: pattern is required");
  EXPECT_EQ(error_of(get("/v1/stream?pattern=a.%3E.b")),
            "400 invalid_pattern: pattern \"a.>.b\": '>' must be the last token");
  EXPECT_EQ(error_of(get("/v1/stream?pattern=a%ZZ")),
            "400 invalid_parameter: malformed percent-escape in parameter pattern");
  EXPECT_EQ(
      error_of(get("/v1/stream?pattern=a&filter=%7Bnope")),
      "400 invalid_filter: filter is not valid JSON: The JSON document has an improper structure: missing or "
      "superfluous commas, braces, missing keys, etc.");
  EXPECT_EQ(
      error_of(get("/v1/stream?pattern=a.*", {{"Last-Event-ID", "a.b@xyz:1"}})),
      "400 invalid_last_event_id: Last-Event-ID must be <channel>@<16 hex digits>:<seq>, as sent in id:");
  EXPECT_EQ(
      error_of(get("/v1/stream?pattern=a.*", {{"Last-Event-ID", "b.c@00000000000000ff:1"}})),
      "400 invalid_last_event_id: Last-Event-ID names channel \"b.c\", which pattern \"a.*\" does not match");
  EXPECT_EQ(
      error_of(get("/v1/stream?pattern=a.>&lastEventId=a.*@00000000000000ff:1")),
      "400 invalid_last_event_id: Last-Event-ID must be <channel>@<16 hex digits>:<seq>, as sent in id:");

  // The header wins over the query parameter (EventSource sends the header on reconnects).
  auto r = parse_stream_params(get("/v1/stream?pattern=a.>&lastEventId=a.q@0000000000000001:1",
                                   {{"last-event-id", "a.b@00000000000000ff:7"}}));
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->resume_from);
  EXPECT_EQ(*r->resume_from, (cloudevent::position{"a.b", 255, 7}));
}

TEST(stream_params_test, cors_answers_only_listed_origins) {
  const std::vector<std::string> listed{"https://app.example.com"};
  EXPECT_EQ(allowed_origin("https://app.example.com", listed), "https://app.example.com");
  EXPECT_FALSE(allowed_origin("https://evil.example.com", listed));
  EXPECT_FALSE(allowed_origin("", listed));
  EXPECT_FALSE(allowed_origin("https://app.example.com", {}));
  EXPECT_EQ(allowed_origin("https://any.example", {"*"}), "https://any.example");
}

}  // namespace
}  // namespace switchboard::event_proxy
