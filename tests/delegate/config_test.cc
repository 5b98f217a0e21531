// The `delegate` attribute: defaults, round trip and every error message, exactly.
#include "broker/delegate/config.h"

#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace switchboard::delegate {
namespace {

using namespace std::chrono_literals;

error parse_error(std::string_view json) {
  auto r = parse_config(json);
  EXPECT_FALSE(r.has_value()) << json;
  return r ? error{} : r.error();
}

error invalid(std::string message) { return error{"invalid_attribute", std::move(message)}; }

TEST(DelegateConfigTest, DefaultsApplyToOmittedFields) {
  auto c = parse_config(R"({"uris":["http://127.0.0.1:8080/enrich"]})");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->uris, std::vector<std::string>{"http://127.0.0.1:8080/enrich"});
  EXPECT_EQ(c->how, mode::sequential);
  EXPECT_EQ(c->timeout, 2000ms);
  EXPECT_EQ(c->on_failure, failure_policy::pass);
  EXPECT_EQ(c->secret, "");
  EXPECT_EQ(c->max_response_bytes, std::size_t{1} << 20);
}

TEST(DelegateConfigTest, EveryFieldParsesAndRoundTrips) {
  const std::string json =
      R"({"uris":["https://a.example/x?y=1","HTTP://b:81"],"mode":"parallel","timeout_ms":60000,)"
      R"("on_failure":"dead_letter","secret":"s\"ecret"})";
  auto c = parse_config(json);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->how, mode::parallel);
  EXPECT_EQ(c->timeout, 60000ms);
  EXPECT_EQ(c->on_failure, failure_policy::dead_letter);
  EXPECT_EQ(c->secret, "s\"ecret");
  EXPECT_EQ(to_json(*c), json);
  EXPECT_EQ(parse_config(to_json(*c)), c);
}

TEST(DelegateConfigTest, ToJsonOmitsAnEmptySecret) {
  config c;
  c.uris = {"http://h/"};
  EXPECT_EQ(to_json(c),
            R"({"uris":["http://h/"],"mode":"sequential","timeout_ms":2000,"on_failure":"pass"})");
}

TEST(DelegateConfigTest, JsonErrors) {
  EXPECT_EQ(parse_error(R"({"uris":)"), (error{"invalid_json", "invalid JSON at byte 8: invalid value"}));
  EXPECT_EQ(parse_error(""), (error{"invalid_json", "invalid JSON at byte 0: the document is empty"}));
  EXPECT_EQ(parse_error("[]"), invalid(R"(attribute "delegate" must be an object)"));
}

TEST(DelegateConfigTest, MemberErrors) {
  EXPECT_EQ(parse_error(R"({"mode":"parallel"})"), invalid(R"(attribute "delegate.uris" is required)"));
  EXPECT_EQ(parse_error(R"({"uris":["http://h"],"foo":1})"),
            (error{"unknown_attribute", R"(unknown attribute "delegate.foo")"}));
  EXPECT_EQ(parse_error(R"({"uris":["http://h"],"mode":"parallel","mode":"sequential"})"),
            invalid(R"(attribute "delegate.mode" appears more than once)"));
  EXPECT_EQ(parse_error(R"({"uris":"http://h"})"), invalid(R"(attribute "delegate.uris" must be an array)"));
  EXPECT_EQ(parse_error(R"({"uris":[]})"), invalid(R"(attribute "delegate.uris" must not be empty)"));
  EXPECT_EQ(parse_error(R"({"uris":["http://h","ftp://h"]})"),
            invalid(R"(attribute "delegate.uris[1]" must be an http:// or https:// URL)"));
  EXPECT_EQ(parse_error(R"({"uris":["http://h", 5]})"),
            invalid(R"(attribute "delegate.uris[1]" must be an http:// or https:// URL)"));
  EXPECT_EQ(parse_error(R"({"uris":["http://h"],"mode":"fast"})"),
            invalid(R"(attribute "delegate.mode" must be one of sequential, parallel)"));
  EXPECT_EQ(parse_error(R"({"uris":["http://h"],"on_failure":"retry"})"),
            invalid(R"(attribute "delegate.on_failure" must be one of pass, drop, dead_letter)"));
  EXPECT_EQ(parse_error(R"({"uris":["http://h"],"timeout_ms":"2s"})"),
            invalid(R"(attribute "delegate.timeout_ms" must be a non-negative integer)"));
  EXPECT_EQ(parse_error(R"({"uris":["http://h"],"timeout_ms":-1})"),
            invalid(R"(attribute "delegate.timeout_ms" must be a non-negative integer)"));
  EXPECT_EQ(parse_error(R"({"uris":["http://h"],"timeout_ms":1.5})"),
            invalid(R"(attribute "delegate.timeout_ms" must be a non-negative integer)"));
  EXPECT_EQ(parse_error(R"({"uris":["http://h"],"timeout_ms":0})"),
            invalid(R"(attribute "delegate.timeout_ms" must be between 1 and 60000)"));
  EXPECT_EQ(parse_error(R"({"uris":["http://h"],"timeout_ms":60001})"),
            invalid(R"(attribute "delegate.timeout_ms" must be between 1 and 60000)"));
  EXPECT_EQ(parse_error(R"({"uris":["http://h"],"timeout_ms":18446744073709551615})"),
            invalid(R"(attribute "delegate.timeout_ms" must be between 1 and 60000)"));
  EXPECT_EQ(parse_error(R"({"uris":["http://h"],"secret":null})"),
            invalid(R"(attribute "delegate.secret" must be a string)"));
  EXPECT_EQ(parse_error("{\"uris\":[\"http://h\"],\"b\\nad\":1}"),
            (error{"unknown_attribute", R"(unknown attribute "delegate.b\nad")"}));
}

TEST(DelegateConfigTest, FirstErrorInDocumentOrderWins) {
  EXPECT_EQ(parse_error(R"({"mode":"x","uris":[]})"),
            invalid(R"(attribute "delegate.mode" must be one of sequential, parallel)"));
}

TEST(DelegateConfigTest, HttpUrlRule) {
  EXPECT_TRUE(is_http_url("http://h"));
  EXPECT_TRUE(is_http_url("https://h:8443/p?q#f"));
  EXPECT_TRUE(is_http_url("HttpS://h"));
  EXPECT_FALSE(is_http_url(""));
  EXPECT_FALSE(is_http_url("http://"));
  EXPECT_FALSE(is_http_url("http:///path"));
  EXPECT_FALSE(is_http_url("http://h/a b"));
  EXPECT_FALSE(is_http_url("http://h/\r\nX: y"));
  EXPECT_FALSE(is_http_url("//h/p"));
  EXPECT_FALSE(is_http_url("file:///etc/passwd"));
}

}  // namespace
}  // namespace switchboard::delegate
