// Tests broker/channels/channel_config.cc: parsing every attribute, the exact errors users see,
// JSON round trips and PATCH merging.
#include "broker/channels/channel_config.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace switchboard::channels {
namespace {

using std::chrono::milliseconds;

class channel_config_test : public ::testing::Test {
 protected:
  static channel_config parse_ok(std::string_view json, parse_mode mode = parse_mode::full) {
    auto r = parse_config(json, mode);
    EXPECT_TRUE(r.has_value()) << json << " -> " << (r ? "" : r.error().message);
    return r.value_or(channel_config{});
  }

  static void expect_error(std::string_view json, int status, std::string_view code, std::string_view message,
                           parse_mode mode = parse_mode::full) {
    const auto r = parse_config(json, mode);
    ASSERT_FALSE(r.has_value()) << json << " parsed, to_json: " << to_json(*r);
    EXPECT_EQ(r.error().http_status, status) << json;
    EXPECT_EQ(r.error().code, code) << json;
    EXPECT_EQ(r.error().message, message) << json;
  }

  static void expect_invalid(std::string_view json, std::string_view message) {
    expect_error(json, 422, "invalid_attribute", message);
  }

  static constexpr std::string_view every_attribute = R"({
    "durable": true,
    "retention": {"max_age": "24h", "max_events": 1000, "max_bytes": 1048576},
    "slow_consumer": "conflate",
    "conflate_key": "call_sid",
    "dedupe_window": "500ms",
    "max_payload_bytes": 65536,
    "permissions": {"publish": ["acme", "svc-token"], "subscribe": ["*"]},
    "validate": {"required": ["call_sid", "status"]},
    "translate": {"rename": {"from": "caller"}, "drop": ["debug"]},
    "delegate": {"uris": ["https://a.example/enrich", "https://b.example/x"], "mode": "parallel",
                 "timeout_ms": 250, "on_failure": "dead_letter", "secret": "d"},
    "route": ["acme.audit", "acme.calls.all"],
    "webhook": [{"name": "crm", "url": "https://hooks.example/in", "secret": "s3cret",
                 "headers": {"X-Team": "voice"}, "max_in_flight": 4, "timeout_ms": 1500}],
    "publish_to_parent": false,
    "order": ["translate", "validate", "route"]
  })";
};

TEST_F(channel_config_test, parses_every_attribute) {
  const channel_config c = parse_ok(every_attribute);
  EXPECT_EQ(c.durable, true);
  ASSERT_TRUE(c.retention);
  EXPECT_EQ(c.retention->max_age, milliseconds(24 * 3600 * 1000));
  EXPECT_EQ(c.retention->max_events, 1000u);
  EXPECT_EQ(c.retention->max_bytes, 1048576u);
  EXPECT_EQ(c.slow_consumer, slow_consumer_policy::conflate);
  EXPECT_EQ(c.conflate_key, "call_sid");
  EXPECT_EQ(c.dedupe_window, milliseconds(500));
  EXPECT_EQ(c.max_payload_bytes, 65536u);
  ASSERT_TRUE(c.permissions);
  EXPECT_EQ(c.permissions->publish, (std::vector<std::string>{"acme", "svc-token"}));
  EXPECT_EQ(c.permissions->subscribe, (std::vector<std::string>{"*"}));
  ASSERT_TRUE(c.validate);
  EXPECT_EQ(c.validate->json, R"({"required":["call_sid","status"]})");
  ASSERT_TRUE(c.translate);
  EXPECT_EQ(c.translate->json, R"({"rename":{"from":"caller"},"drop":["debug"]})");
  ASSERT_TRUE(c.delegate);
  EXPECT_EQ(c.delegate->uris, (std::vector<std::string>{"https://a.example/enrich", "https://b.example/x"}));
  EXPECT_EQ(c.delegate->mode, delegate_mode::parallel);
  EXPECT_EQ(c.delegate->timeout_ms, 250u);
  EXPECT_EQ(c.delegate->on_failure, failure_policy::dead_letter);
  EXPECT_EQ(c.delegate->secret, "d");
  EXPECT_EQ(c.route, (std::vector<std::string>{"acme.audit", "acme.calls.all"}));
  ASSERT_TRUE(c.webhook);
  ASSERT_EQ(c.webhook->sinks.size(), 1u);
  const webhook_sink& sink = c.webhook->sinks[0];
  EXPECT_EQ(sink.name, "crm");
  EXPECT_EQ(sink.url, "https://hooks.example/in");
  EXPECT_EQ(sink.secret, "s3cret");
  EXPECT_EQ(sink.headers, (std::vector<std::pair<std::string, std::string>>{{"X-Team", "voice"}}));
  EXPECT_EQ(sink.max_in_flight, 4u);
  EXPECT_EQ(sink.timeout_ms, 1500u);
  EXPECT_EQ(c.publish_to_parent, false);
  EXPECT_EQ(c.order, (std::vector<stage>{stage::translate, stage::validate, stage::route}));
  EXPECT_TRUE(c.cleared.none());
  for (std::size_t i = 0; i < attribute_count; ++i) EXPECT_TRUE(c.has(static_cast<attribute>(i))) << i;
}

TEST_F(channel_config_test, empty_object_sets_nothing) {
  const channel_config c = parse_ok("  {}  ");
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(to_json(c), "{}");
}

TEST_F(channel_config_test, nested_fields_are_optional_and_defaulted) {
  const channel_config c = parse_ok(R"({"retention":{},"permissions":{"publish":[]},"delegate":{"uris":["http://d"]},
                                        "webhook":[{"name":"a","url":"http://u"}],"validate":{}})");
  EXPECT_EQ(c.retention, retention_policy{});
  EXPECT_EQ(c.permissions->publish, std::vector<std::string>{});    // nobody
  EXPECT_EQ(c.permissions->subscribe, std::vector<std::string>{"*"});  // absent = anyone
  EXPECT_FALSE(c.permissions->may_publish("acme"));
  EXPECT_TRUE(c.permissions->may_subscribe("acme"));
  EXPECT_EQ(c.delegate->mode, delegate_mode::sequential);
  EXPECT_EQ(c.delegate->on_failure, failure_policy::pass);
  EXPECT_FALSE(c.delegate->timeout_ms.has_value());
  EXPECT_FALSE(c.webhook->sinks[0].secret.has_value());
  EXPECT_EQ(c.validate->json, "{}");
}

TEST_F(channel_config_test, permissions_match_names_or_anyone) {
  permission_lists p;
  p.publish = {"acme", "svc"};
  EXPECT_TRUE(p.may_publish("acme"));
  EXPECT_FALSE(p.may_publish("globex"));
  EXPECT_TRUE(p.may_subscribe("anyone-at-all"));
}

TEST_F(channel_config_test, durations_in_every_form) {
  EXPECT_EQ(parse_ok(R"({"dedupe_window":"500ms"})").dedupe_window, milliseconds(500));
  EXPECT_EQ(parse_ok(R"({"dedupe_window":"90s"})").dedupe_window, milliseconds(90'000));
  EXPECT_EQ(parse_ok(R"({"dedupe_window":"30m"})").dedupe_window, milliseconds(1'800'000));
  EXPECT_EQ(parse_ok(R"({"dedupe_window":"24h"})").dedupe_window, milliseconds(86'400'000));
  EXPECT_EQ(parse_ok(R"({"dedupe_window":"7d"})").dedupe_window, milliseconds(604'800'000));
  EXPECT_EQ(parse_ok(R"({"dedupe_window":45})").dedupe_window, milliseconds(45'000));
  EXPECT_EQ(parse_ok(R"({"dedupe_window":0})").dedupe_window, milliseconds(0));
  EXPECT_EQ(parse_ok(R"({"retention":{"max_age":"0ms"}})").retention->max_age, milliseconds(0));

  EXPECT_EQ(format_duration(milliseconds(0)), "0s");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(milliseconds(90'000)), "90s");
  EXPECT_EQ(format_duration(milliseconds(1'800'000)), "30m");
  EXPECT_EQ(format_duration(milliseconds(86'400'000)), "1d");
  EXPECT_EQ(format_duration(milliseconds(90'000'000)), "25h");

  EXPECT_FALSE(parse_duration("9223372036854775808ms"));
  EXPECT_TRUE(parse_duration("9223372036854775807ms"));
  EXPECT_TRUE(parse_duration("106751991167d"));
  EXPECT_FALSE(parse_duration("106751991168d"));
}

TEST_F(channel_config_test, bad_durations) {
  const std::string hint =
      R"(attribute "dedupe_window" must be a duration (non-negative integer seconds or a string such as "500ms", "90s", "30m", "24h"))";
  for (const char* bad : {R"("5x")", R"("-1s")", R"("1.5h")", R"("")", R"("h")", R"(" 5s")", R"("5 s")", "1.5",
                          "-1", "true", "[]", "{}"}) {
    expect_invalid(std::string(R"({"dedupe_window":)") + bad + "}", hint);
  }
  expect_invalid(R"({"retention":{"max_age":"10y"}})",
                 R"(attribute "retention.max_age" must be a duration (non-negative integer seconds or a string such as "500ms", "90s", "30m", "24h"))");
  expect_invalid(R"({"dedupe_window":"99999999999999999999s"})", R"(attribute "dedupe_window" is out of range)");
  expect_invalid(R"({"dedupe_window":9223372036854776})", R"(attribute "dedupe_window" is out of range)");
  expect_invalid(R"({"dedupe_window":18446744073709551615})", R"(attribute "dedupe_window" is out of range)");
}

TEST_F(channel_config_test, invalid_json_names_the_byte_offset) {
  expect_error(R"({"durable": true,})", 400, "invalid_json", "invalid JSON at byte 17: expected a string key");
  expect_error(R"({"durable" true})", 400, "invalid_json", "invalid JSON at byte 11: expected ':' after an object key");
  expect_error(R"({"durable": tru})", 400, "invalid_json", "invalid JSON at byte 15: unexpected character '}'");
  expect_error(R"({"durable": true)", 400, "invalid_json", "invalid JSON at byte 16: unexpected end of input");
  expect_error(R"({"durable": true} x)", 400, "invalid_json",
               "invalid JSON at byte 18: unexpected character 'x' after the JSON value");
  expect_error(R"({"route": ["a" "b"]})", 400, "invalid_json", "invalid JSON at byte 15: expected ',' or ']'");
  expect_error(R"({"a": 1 "b": 2})", 400, "invalid_json", "invalid JSON at byte 8: expected ',' or '}'");
  expect_error(R"({"conflate_key": "a\qb"})", 400, "invalid_json", "invalid JSON at byte 20: invalid escape sequence");
  expect_error("{\"conflate_key\": \"a\x01\"}", 400, "invalid_json",
               "invalid JSON at byte 19: control character in a string");
  expect_error("{\"conflate_key\": \"a\xff\"}", 400, "invalid_json", "invalid JSON at byte 19: invalid UTF-8");
  expect_error(R"({"max_payload_bytes": 01})", 400, "invalid_json",
               "invalid JSON at byte 23: expected ',' or '}'");
  expect_error("", 400, "invalid_json", "invalid JSON at byte 0: unexpected end of input");
  expect_error("   ", 400, "invalid_json", "invalid JSON at byte 3: unexpected end of input");
}

TEST_F(channel_config_test, invalid_json_without_a_location_names_the_problem) {
  // Valid grammar, but a number simdjson cannot represent: no offset, simdjson's reason instead.
  const auto r = parse_config(R"({"max_payload_bytes": 1e999})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().http_status, 400);
  EXPECT_EQ(r.error().code, "invalid_json");
  EXPECT_TRUE(r.error().message.starts_with("invalid JSON: ")) << r.error().message;
}

TEST_F(channel_config_test, not_an_object) {
  for (const char* json : {"[]", "42", R"("durable")", "null", "true"}) {
    expect_error(json, 400, "invalid_json", "config must be a JSON object");
  }
}

TEST_F(channel_config_test, unknown_attributes) {
  expect_error(R"({"colour": "red"})", 422, "unknown_attribute", R"(unknown attribute "colour")");
  expect_error(R"({"durable": true, "Durable": true})", 422, "unknown_attribute", R"(unknown attribute "Durable")");
  expect_error(R"({"retention": {"max_size": 1}})", 422, "unknown_attribute", R"(unknown attribute "retention.max_size")");
  expect_error(R"({"permissions": {"admin": []}})", 422, "unknown_attribute", R"(unknown attribute "permissions.admin")");
  expect_error(R"({"delegate": {"uris": ["http://u"], "timeout": 3}})", 422, "unknown_attribute",
               R"(unknown attribute "delegate.timeout")");
  expect_error(R"({"webhook": [{"name": "a", "url": "http://u", "retries": 3}]})", 422, "unknown_attribute",
               R"(unknown attribute "webhook[0].retries")");
  expect_error(R"({"validate": {"types": {}}})", 422, "unknown_attribute", R"(unknown attribute "validate.types")");
  expect_error(R"({"schema": {"types": {}}})", 422, "unknown_attribute", R"(unknown attribute "schema.types")");
  // Names are quoted as printable ASCII.
  expect_error("{\"a\\\"b\\u0001\\u00e9\": 1}", 422, "unknown_attribute", R"(unknown attribute "a\"b\x01\xc3\xa9")");
}

TEST_F(channel_config_test, wrong_types) {
  expect_invalid(R"({"durable": "yes"})", R"(attribute "durable" must be a boolean)");
  expect_invalid(R"({"durable": 1})", R"(attribute "durable" must be a boolean)");
  expect_invalid(R"({"publish_to_parent": "true"})", R"(attribute "publish_to_parent" must be a boolean)");
  expect_invalid(R"({"retention": 5})", R"(attribute "retention" must be an object)");
  expect_invalid(R"({"retention": {"max_events": -1}})", R"(attribute "retention.max_events" must be a non-negative integer)");
  expect_invalid(R"({"retention": {"max_events": 1.5}})", R"(attribute "retention.max_events" must be a non-negative integer)");
  expect_invalid(R"({"retention": {"max_bytes": "1MB"}})", R"(attribute "retention.max_bytes" must be a non-negative integer)");
  expect_invalid(R"({"max_payload_bytes": true})", R"(attribute "max_payload_bytes" must be a non-negative integer)");
  expect_invalid(R"({"slow_consumer": "block"})",
                 R"(attribute "slow_consumer" must be one of disconnect, drop_oldest, conflate, spill)");
  expect_invalid(R"({"slow_consumer": 1})",
                 R"(attribute "slow_consumer" must be one of disconnect, drop_oldest, conflate, spill)");
  expect_invalid(R"({"conflate_key": ""})", R"(attribute "conflate_key" must be a non-empty string)");
  expect_invalid(R"({"conflate_key": 7})", R"(attribute "conflate_key" must be a non-empty string)");
  expect_invalid(R"({"permissions": ["acme"]})", R"(attribute "permissions" must be an object)");
  expect_invalid(R"({"permissions": {"publish": "acme"}})",
                 R"(attribute "permissions.publish" must be an array of non-empty strings)");
  expect_invalid(R"({"permissions": {"subscribe": ["acme", ""]}})",
                 R"(attribute "permissions.subscribe" must be an array of non-empty strings)");
  expect_invalid(R"({"validate": {"required": ["a", 1]}})", R"(attribute "validate.required[1]" must be a string)");
  expect_invalid(R"({"schema": {"required": {"a": "text"}}})",
                 R"(attribute "schema.required.a" must be one of string, number, integer, boolean, object, array, null, any)");
  expect_invalid(R"({"validate": []})", R"(attribute "validate" must be an object)");
  expect_invalid(R"({"schema": {}, "validate": {}})",
                 R"(attribute "validate" repeats "validate" ("schema" is its older name): give one)");
  expect_invalid(R"({"translate": []})", R"(attribute "translate" must be an object)");
  expect_invalid(R"({"delegate": {"mode": "parallel"}})", R"(attribute "delegate.uris" is required)");
  expect_invalid(R"({"delegate": {"uris": ["http://u"], "mode": "random"}})",
                 R"(attribute "delegate.mode" must be one of sequential, parallel)");
  expect_invalid(R"({"delegate": {"uris": "u"}})", R"(attribute "delegate.uris" must be an array of non-empty strings)");
  expect_invalid(R"({"delegate": {"uris": []}})", R"(attribute "delegate.uris" must not be empty)");
  expect_invalid(R"({"delegate": {"uris": ["ftp://x"]}})", R"(attribute "delegate.uris[0]" must be an http:// or https:// URL)");
  expect_invalid(R"({"delegate": {"uris": ["http://u"], "timeout_ms": 0}})",
                 R"(attribute "delegate.timeout_ms" must be between 1 and 60000)");
  expect_invalid(R"({"delegate": {"uris": ["http://u"], "on_failure": "retry"}})",
                 R"(attribute "delegate.on_failure" must be one of pass, drop, dead_letter)");
  expect_invalid(R"({"webhook": {"secret": "s"}})", R"(attribute "webhook.uris" is required)");
  expect_invalid(R"({"webhook": {"uris": ["u"], "secret": 5}})", R"(attribute "webhook.secret" must be a string)");
  expect_invalid(R"({"webhook": 5})", R"(attribute "webhook" must be an array of sinks)");
  expect_invalid(R"({"webhook": [{"url": "http://u"}]})", R"(attribute "webhook[0].name" is required)");
  expect_invalid(R"({"webhook": [{"name": "a"}]})", R"(attribute "webhook[0].url" is required)");
  expect_invalid(R"({"webhook": [{"name": "a", "url": "u"}]})", R"(attribute "webhook[0].url" must be an http:// or https:// URL)");
  expect_invalid(R"({"webhook": [{"name": "a", "url": "http://u"}, {"name": "a", "url": "http://v"}]})",
                 R"(attribute "webhook[1].name" repeats sink "a")");
  expect_invalid(R"({"webhook": [{"name": "a", "url": "http://u", "headers": {"X-A": "1\r\nX: 2"}}]})",
                 R"(attribute "webhook[0].headers.X-A" must be a string without line breaks)");
  expect_invalid(R"({"webhook": [{"name": "a", "url": "http://u", "max_in_flight": 0}]})",
                 R"(attribute "webhook[0].max_in_flight" must be between 1 and 1024)");
  expect_invalid(R"({"route": "acme.audit"})", R"(attribute "route" must be an array)");
  expect_invalid(R"({"route": ["acme.audit", 5]})", R"(attribute "route[1]" must be a channel name)");
  expect_invalid(R"({"route": ["acme.audit", "acme.*"]})",
                 R"(attribute "route[1]" must be a channel name: channel "acme.*" has a wildcard '*' in token 2; channel names may not contain wildcards)");
  expect_invalid(R"({"route": ["a..b"]})",
                 R"(attribute "route[0]" must be a channel name: channel "a..b" has an empty token at position 2)");
  expect_invalid(R"({"order": "validate"})", R"(attribute "order" must be an array)");
  expect_invalid(R"({"order": ["validate", "store"]})",
                 R"(attribute "order[1]" must be one of validate, translate, delegate, route, webhook, publish_to_parent)");
  expect_invalid(R"({"order": ["route", "webhook", "route"]})", R"(attribute "order[2]" repeats stage "route")");
  expect_invalid(R"({"durable": true, "durable": false})", R"(attribute "durable" appears more than once)");
  expect_invalid(R"({"retention": {"max_events": 1, "max_events": 2}})",
                 R"(attribute "retention.max_events" appears more than once)");
}

TEST_F(channel_config_test, first_error_in_document_order_wins) {
  expect_error(R"({"durable": 1, "colour": 2})", 422, "invalid_attribute", R"(attribute "durable" must be a boolean)");
  expect_error(R"({"colour": 2, "durable": 1})", 422, "unknown_attribute", R"(unknown attribute "colour")");
}

TEST_F(channel_config_test, conflate_needs_a_key) {
  expect_invalid(R"({"slow_consumer": "conflate"})",
                 R"(attribute "conflate_key" is required when slow_consumer is "conflate")");
  // A key without conflate is allowed (a channel may inherit conflate from a pattern).
  EXPECT_EQ(parse_ok(R"({"conflate_key": "k"})").conflate_key, "k");
  // The conflate rule is checked after the document, so a type error later on is reported first.
  expect_invalid(R"({"slow_consumer": "conflate", "durable": 3})", R"(attribute "durable" must be a boolean)");
}

TEST_F(channel_config_test, null_is_only_for_patches) {
  expect_invalid(R"({"durable": null})", R"(attribute "durable" is null; null unsets an attribute only in a patch)");
  expect_invalid(R"({"retention": {"max_age": null}})",
                 R"(attribute "retention.max_age" must be a duration (non-negative integer seconds or a string such as "500ms", "90s", "30m", "24h"))");

  const channel_config patch = parse_ok(R"({"durable": null, "slow_consumer": "conflate", "route": null})", parse_mode::patch);
  EXPECT_TRUE(patch.cleared.test(static_cast<std::size_t>(attribute::durable)));
  EXPECT_TRUE(patch.cleared.test(static_cast<std::size_t>(attribute::route)));
  EXPECT_EQ(patch.cleared.count(), 2u);
  EXPECT_FALSE(patch.has(attribute::durable));
  EXPECT_EQ(patch.slow_consumer, slow_consumer_policy::conflate);  // rule checked at merge time
  EXPECT_EQ(to_json(patch), R"({"durable":null,"slow_consumer":"conflate","route":null})");
  // validate_config refuses a config with cleared attributes (it would not be storable).
  const auto ok = validate_config(patch);
  ASSERT_FALSE(ok);
  EXPECT_EQ(ok.error().message, R"(attribute "durable" is null; null unsets an attribute only in a patch)");
}

TEST_F(channel_config_test, to_json_writes_set_attributes_in_canonical_order) {
  const channel_config c = parse_ok(R"({"order":["route"],"max_payload_bytes":10,"durable":false,
                                        "retention":{"max_events":5,"max_age":86400},"dedupe_window":"90000ms"})");
  EXPECT_EQ(to_json(c),
            R"({"durable":false,"retention":{"max_age":"1d","max_events":5},"dedupe_window":"90s",)"
            R"("max_payload_bytes":10,"order":["route"]})");
}

TEST_F(channel_config_test, round_trips_through_json) {
  const channel_config c = parse_ok(every_attribute);
  const std::string json = to_json(c);
  EXPECT_EQ(parse_ok(json), c) << json;
  EXPECT_EQ(to_json(parse_ok(json)), json);

  const channel_config patch = parse_ok(R"({"durable":null,"webhook":[{"name":"x","url":"http://x"}],"order":null})", parse_mode::patch);
  EXPECT_EQ(parse_ok(to_json(patch), parse_mode::patch), patch);

  // Strings with quotes, backslashes, control characters and UTF-8 survive.
  channel_config odd;
  odd.conflate_key = std::string("a\"b\\c\n\x01\xc3\xa9", 9);
  odd.permissions = permission_lists{{"t\"1"}, {}};
  EXPECT_EQ(parse_ok(to_json(odd)), odd) << to_json(odd);
}

TEST_F(channel_config_test, merge_patch_replaces_unsets_and_keeps) {
  const channel_config base = parse_ok(R"({"durable":true,"retention":{"max_events":10,"max_age":"1h"},
                                           "slow_consumer":"drop_oldest","route":["a.b"]})");
  const channel_config patch = parse_ok(R"({"retention":{"max_bytes":99},"route":null,"max_payload_bytes":7})",
                                        parse_mode::patch);
  const auto merged = merge_patch(base, patch);
  ASSERT_TRUE(merged) << merged.error().message;
  EXPECT_EQ(to_json(*merged),
            R"({"durable":true,"retention":{"max_bytes":99},"slow_consumer":"drop_oldest","max_payload_bytes":7})");
  EXPECT_TRUE(merged->cleared.none());

  // Unsetting something that is not set is fine; an empty patch changes nothing.
  EXPECT_EQ(merge_patch(base, parse_ok(R"({"webhook":null})", parse_mode::patch)).value(), base);
  EXPECT_EQ(merge_patch(base, channel_config{}).value(), base);
}

TEST_F(channel_config_test, merge_patch_checks_the_conflate_rule_on_the_result) {
  const channel_config base = parse_ok(R"({"slow_consumer":"conflate","conflate_key":"sid"})");
  // Changing only the key is fine; removing it is not.
  EXPECT_EQ(merge_patch(base, parse_ok(R"({"conflate_key":"id"})", parse_mode::patch))->conflate_key, "id");
  const auto r = merge_patch(base, parse_ok(R"({"conflate_key":null})", parse_mode::patch));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (config_error{422, "invalid_attribute",
                                     R"(attribute "conflate_key" is required when slow_consumer is "conflate")"}));
  // Switching to conflate needs a key from base or patch.
  const channel_config plain = parse_ok(R"({"durable":true})");
  EXPECT_FALSE(merge_patch(plain, parse_ok(R"({"slow_consumer":"conflate"})", parse_mode::patch)));
  EXPECT_TRUE(merge_patch(plain, parse_ok(R"({"slow_consumer":"conflate","conflate_key":"k"})", parse_mode::patch)));
}

TEST_F(channel_config_test, validate_config_checks_configs_built_in_code) {
  channel_config c;
  c.route = std::vector<std::string>{"ok.channel", "bad.>"};
  auto r = validate_config(c);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            R"(attribute "route[1]" must be a channel name: channel "bad.>" has a wildcard '>' in token 2; channel names may not contain wildcards)");
  c = {};
  c.order = std::vector<stage>{stage::webhook, stage::webhook};
  EXPECT_EQ(validate_config(c).error().message, R"(attribute "order[1]" repeats stage "webhook")");
  c = {};
  c.translate = translate_spec{"[1]"};
  EXPECT_EQ(validate_config(c).error().message, R"(attribute "translate" must be an object)");
  c = {};
  c.webhook = webhook_spec{{webhook_sink{.name = "", .url = "http://u", .secret = {}, .headers = {},
                                         .max_in_flight = {}, .timeout_ms = {}}}};
  EXPECT_EQ(validate_config(c).error().message, R"(attribute "webhook[0].name" is required)");
}

TEST_F(channel_config_test, attribute_names_round_trip) {
  for (std::size_t i = 0; i < attribute_count; ++i) {
    const auto a = static_cast<attribute>(i);
    EXPECT_EQ(attribute_from_name(attribute_name(a)), a);
  }
  EXPECT_FALSE(attribute_from_name("colour"));
}

}  // namespace
}  // namespace switchboard::channels
