// The admin HTTP API (broker/admin/admin_server.cc) against the real broker binary on a temp data dir,
// `tcp://127.0.0.1:*` and admin port 0. Every rejected request asserts the exact status and error code
// (and the message where it is deterministic) the user sees.
#include <gtest/gtest.h>
#include <httplib.h>
#include <rapidjson/document.h>

#include <memory>
#include <string>

#include "support/broker_process.h"

namespace switchboard {
namespace {

constexpr const char* admin_token = "t0k";
constexpr const char* acme_token = "acmesecret";

struct reply {
  int status = 0;
  std::string body;
  rapidjson::Document json;

  // The "error.code" / "error.message" of an error body ("" when absent).
  [[nodiscard]] std::string error_code() const { return error_field("code"); }
  [[nodiscard]] std::string error_message() const { return error_field("message"); }

 private:
  [[nodiscard]] std::string error_field(const char* f) const {
    if (!json.IsObject() || !json.HasMember("error") || !json["error"].IsObject()) return "";
    const auto& e = json["error"];
    return e.HasMember(f) && e[f].IsString() ? e[f].GetString() : "";
  }
};

class admin_server_test : public ::testing::Test {
 protected:
  void SetUp() override {
    _broker = std::make_unique<test::broker_process>(
        _dir.path(), admin_token,
        std::vector<std::string>{"--shards", "2", "--token",
                                 std::string("acme-ops:") + acme_token + ":acme:admin,publish,subscribe"});
    ASSERT_TRUE(_broker->ok()) << _broker->stderr_text();
    _url = _broker->admin_url;
    _max_body = (std::size_t{1} << 20) + 64 * 1024;  // --max-payload-bytes default + 64 KiB
  }

  reply send(const std::string& method, const std::string& path, const std::string& body = {},
             const char* token = admin_token, httplib::Headers headers = {}) {
    httplib::Client cli(_url);
    cli.set_connection_timeout(5);
    cli.set_read_timeout(20);
    if (token != nullptr) headers.emplace("Authorization", std::string("Bearer ") + token);
    httplib::Result r = method == "GET"     ? cli.Get(path, headers)
                        : method == "PUT"   ? cli.Put(path, headers, body, "application/json")
                        : method == "PATCH" ? cli.Patch(path, headers, body, "application/json")
                        : method == "POST"  ? cli.Post(path, headers, body, "application/json")
                                            : cli.Delete(path, headers);
    reply out;
    EXPECT_TRUE(static_cast<bool>(r)) << method << " " << path << ": " << httplib::to_string(r.error());
    if (!r) return out;
    out.status = r->status;
    out.body = r->body;
    out.json.Parse(out.body.c_str(), out.body.size());
    return out;
  }

  // The effective value and source of `attr` in a GET /v1/channels/{name} document.
  static std::string source_of(const reply& r, const char* attr) {
    if (!r.json.IsObject() || !r.json.HasMember("sources")) return "<no sources>";
    const auto& s = r.json["sources"];
    return s.HasMember(attr) && s[attr].IsString() ? s[attr].GetString() : "<none>";
  }
  static const rapidjson::Value* config_value(const reply& r, const char* attr) {
    if (!r.json.IsObject() || !r.json.HasMember("config") || !r.json["config"].HasMember(attr)) return nullptr;
    return &r.json["config"][attr];
  }

  test::temp_dir _dir;
  std::unique_ptr<test::broker_process> _broker;
  std::string _url;
  std::size_t _max_body = 0;
};

#define EXPECT_ERROR(r, st, code)                   \
  do {                                              \
    EXPECT_EQ((r).status, st) << (r).body;          \
    EXPECT_EQ((r).error_code(), code) << (r).body;  \
  } while (0)

TEST_F(admin_server_test, missing_or_wrong_token_is_401) {
  const auto none = send("GET", "/v1/channels", {}, nullptr);
  EXPECT_ERROR(none, 401, "unauthorized");
  EXPECT_EQ(none.error_message(), "missing bearer token");
  const auto bad = send("GET", "/v1/channels", {}, "nope");
  EXPECT_ERROR(bad, 401, "unauthorized");
  EXPECT_EQ(bad.error_message(), "invalid token");
}

TEST_F(admin_server_test, probes_and_metrics_need_no_token) {
  const auto h = send("GET", "/healthz", {}, nullptr);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, R"({"status":"ok"})");
  EXPECT_EQ(send("GET", "/readyz", {}, nullptr).status, 200);
  const auto m = send("GET", "/metrics", {}, nullptr);
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("switchboard_admin_requests_total{status=\"2xx\"}"), std::string::npos) << m.body;
}

TEST_F(admin_server_test, unknown_route_is_404_and_wrong_method_is_405) {
  EXPECT_ERROR(send("GET", "/v2/nothing"), 404, "not_found");
  EXPECT_ERROR(send("DELETE", "/v1/channels"), 405, "method_not_allowed");
}

TEST_F(admin_server_test, invalid_json_is_400_naming_the_offset) {
  const auto r = send("PUT", "/v1/channels/acme.calls", R"({"durable":)");
  EXPECT_ERROR(r, 400, "invalid_json");
  EXPECT_EQ(r.error_message().rfind("invalid JSON at byte 11: ", 0), 0u) << r.body;
}

TEST_F(admin_server_test, unknown_attribute_is_422_naming_it) {
  const auto r = send("PUT", "/v1/channels/acme.calls", R"({"durabel":true})");
  EXPECT_ERROR(r, 422, "unknown_attribute");
  EXPECT_EQ(r.error_message(), R"(unknown attribute "durabel")");
}

TEST_F(admin_server_test, ill_typed_attribute_is_422) {
  const auto r = send("PUT", "/v1/channels/acme.calls", R"({"durable":"yes"})");
  EXPECT_ERROR(r, 422, "invalid_attribute");
  EXPECT_EQ(r.error_message(), R"(attribute "durable" must be a boolean)");
}

TEST_F(admin_server_test, oversized_body_is_413) {
  const std::string big(_max_body + 1, ' ');
  EXPECT_ERROR(send("PUT", "/v1/channels/acme.calls", big), 413, "payload_too_large");
}

TEST_F(admin_server_test, invalid_channel_name_is_400_with_the_topic_message) {
  const auto r = send("GET", "/v1/channels/a..b");
  EXPECT_ERROR(r, 400, "invalid_channel");
  EXPECT_EQ(r.error_message(), R"(channel "a..b" has an empty token at position 2)");
  const auto p = send("PUT", "/v1/channels/a.%3E.b", R"({"durable":true})");
  EXPECT_ERROR(p, 400, "invalid_pattern");
  EXPECT_EQ(p.error_message(), R"(pattern "a.>.b": '>' must be the last token)");
}

TEST_F(admin_server_test, unknown_channel_config_is_404) {
  EXPECT_ERROR(send("GET", "/v1/channels/acme.nothing.here"), 404, "not_found");
}

TEST_F(admin_server_test, put_then_get_shows_effective_config_with_sources) {
  const auto put = send("PUT", "/v1/channels/acme.calls", R"({"durable":true,"dedupe_window":"90s"})");
  ASSERT_EQ(put.status, 200) << put.body;
  const auto get = send("GET", "/v1/channels/acme.calls");
  ASSERT_EQ(get.status, 200) << get.body;
  const auto* durable = config_value(get, "durable");
  ASSERT_NE(durable, nullptr) << get.body;
  EXPECT_TRUE(durable->IsBool() && durable->GetBool()) << get.body;
  EXPECT_EQ(source_of(get, "durable"), "channel") << get.body;
  EXPECT_EQ(source_of(get, "dedupe_window"), "channel") << get.body;
  EXPECT_EQ(source_of(get, "slow_consumer"), "default") << get.body;
}

TEST_F(admin_server_test, pattern_config_is_inherited) {
  // Both spellings of '>' reach the same pattern.
  ASSERT_EQ(send("PUT", "/v1/channels/acme.calls.%3E", R"({"durable":true})").status, 200);
  const auto pat = send("GET", "/v1/channels/acme.calls.>");
  EXPECT_EQ(pat.status, 200) << pat.body;
  const auto get = send("GET", "/v1/channels/acme.calls.CA1");
  ASSERT_EQ(get.status, 200) << get.body;
  const auto* durable = config_value(get, "durable");
  ASSERT_NE(durable, nullptr) << get.body;
  EXPECT_TRUE(durable->IsBool() && durable->GetBool()) << get.body;
  EXPECT_EQ(source_of(get, "durable"), "acme.calls.>") << get.body;
}

TEST_F(admin_server_test, patch_changes_one_attribute) {
  ASSERT_EQ(send("PUT", "/v1/channels/acme.calls", R"({"durable":true,"slow_consumer":"drop_oldest"})").status, 200);
  const auto patch = send("PATCH", "/v1/channels/acme.calls", R"({"slow_consumer":"disconnect"})");
  ASSERT_EQ(patch.status, 200) << patch.body;
  const auto get = send("GET", "/v1/channels/acme.calls");
  const auto* sc = config_value(get, "slow_consumer");
  ASSERT_NE(sc, nullptr) << get.body;
  EXPECT_STREQ(sc->GetString(), "disconnect");
  const auto* durable = config_value(get, "durable");
  ASSERT_NE(durable, nullptr) << get.body;
  EXPECT_TRUE(durable->GetBool()) << get.body;
}

TEST_F(admin_server_test, delete_is_204_then_get_is_404) {
  ASSERT_EQ(send("PUT", "/v1/channels/acme.calls", R"({"durable":true})").status, 200);
  const auto del = send("DELETE", "/v1/channels/acme.calls");
  EXPECT_EQ(del.status, 204) << del.body;
  EXPECT_ERROR(send("GET", "/v1/channels/acme.calls"), 404, "not_found");
}

TEST_F(admin_server_test, rejected_request_changes_nothing) {
  ASSERT_EQ(send("PUT", "/v1/channels/acme.calls", R"({"durable":true})").status, 200);
  EXPECT_ERROR(send("PUT", "/v1/channels/acme.calls", R"({"durable":false,"bogus":1})"), 422, "unknown_attribute");
  EXPECT_ERROR(send("PATCH", "/v1/channels/acme.calls", R"({"durable":3})"), 422, "invalid_attribute");
  EXPECT_ERROR(send("PUT", "/v1/channels/acme.calls", R"({"durable":false)"), 400, "invalid_json");
  const auto get = send("GET", "/v1/channels/acme.calls");
  const auto* durable = config_value(get, "durable");
  ASSERT_NE(durable, nullptr) << get.body;
  EXPECT_TRUE(durable->GetBool()) << get.body;
}

TEST_F(admin_server_test, publish_over_http_returns_increasing_seqs) {
  const auto first = send("POST", "/v1/channels/acme.events/events", R"({"n":1})");
  ASSERT_EQ(first.status, 202) << first.body;
  EXPECT_EQ(first.json["seq"].GetUint64(), 1u);
  ASSERT_TRUE(first.json["epoch"].IsString());
  EXPECT_EQ(std::string(first.json["epoch"].GetString()).size(), 16u);
  EXPECT_FALSE(first.json["duplicate"].GetBool());
  const auto second = send("POST", "/v1/channels/acme.events/events", R"({"n":2})");
  ASSERT_EQ(second.status, 202) << second.body;
  EXPECT_EQ(second.json["seq"].GetUint64(), 2u);
}

TEST_F(admin_server_test, publish_of_invalid_json_is_400) {
  const auto r = send("POST", "/v1/channels/acme.events/events", "{\"n\":");
  EXPECT_ERROR(r, 400, "invalid_json");
  EXPECT_EQ(r.error_message(), "invalid JSON at byte 5: invalid value") << r.body;
}

TEST_F(admin_server_test, history_of_a_durable_channel_returns_events_in_order) {
  ASSERT_EQ(send("PUT", "/v1/channels/acme.log", R"({"durable":true})").status, 200);
  ASSERT_EQ(send("POST", "/v1/channels/acme.log/events", R"({"n":1})").status, 202);
  ASSERT_EQ(send("POST", "/v1/channels/acme.log/events", R"({"n":2})").status, 202);
  const auto h = send("GET", "/v1/channels/acme.log/events?from_seq=1&limit=10");
  ASSERT_EQ(h.status, 200) << h.body;
  const auto& events = h.json["events"];
  ASSERT_EQ(events.Size(), 2u) << h.body;
  EXPECT_EQ(events[0]["seq"].GetUint64(), 1u);
  EXPECT_EQ(events[0]["data"]["n"].GetInt(), 1);
  EXPECT_EQ(events[1]["seq"].GetUint64(), 2u);
  EXPECT_EQ(events[1]["data"]["n"].GetInt(), 2);
  const std::string time = events[0]["time"].GetString();
  EXPECT_EQ(time.size(), 24u) << time;  // 2024-05-01T12:34:56.789Z
  EXPECT_EQ(time.back(), 'Z') << time;
  EXPECT_EQ(h.json["next_seq"].GetUint64(), 3u) << h.body;
}

TEST_F(admin_server_test, history_of_a_non_durable_channel_is_404) {
  ASSERT_EQ(send("POST", "/v1/channels/acme.fleeting/events", R"({"n":1})").status, 202);
  EXPECT_ERROR(send("GET", "/v1/channels/acme.fleeting/events"), 404, "not_found");
}

TEST_F(admin_server_test, tenant_token_cannot_use_another_tenants_channel) {
  ASSERT_EQ(send("PUT", "/v1/channels/globex.calls", R"({"durable":true})").status, 200);
  const auto read = send("GET", "/v1/channels/globex.calls", {}, acme_token);
  EXPECT_ERROR(read, 403, "forbidden");
  EXPECT_EQ(read.error_message(), R"(tenant "acme" may not use "globex.calls")");
  EXPECT_ERROR(send("PUT", "/v1/channels/globex.calls", R"({"durable":false})", acme_token), 403, "forbidden");
  EXPECT_ERROR(send("POST", "/v1/channels/globex.calls/events", R"({})", acme_token), 403, "forbidden");
  EXPECT_ERROR(send("PUT", "/v1/channels/%3E", R"({"durable":true})", acme_token), 403, "forbidden");
  // Its own tenant works, and the list only shows its own channels.
  EXPECT_EQ(send("PUT", "/v1/channels/acme.calls", R"({"durable":true})", acme_token).status, 200);
  const auto list = send("GET", "/v1/channels", {}, acme_token);
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(list.body.find("globex"), std::string::npos) << list.body;
  EXPECT_NE(list.body.find("acme.calls"), std::string::npos) << list.body;
  // Nothing changed for globex.
  const auto get = send("GET", "/v1/channels/globex.calls");
  const auto* durable = config_value(get, "durable");
  ASSERT_NE(durable, nullptr) << get.body;
  EXPECT_TRUE(durable->GetBool()) << get.body;
}

// Regression (issue 14 item 7): HTTP ignored the channel `permissions` attribute, so a token the
// protocol refuses could read a channel's history (200) and publish to it (202).
TEST_F(admin_server_test, channel_permissions_apply_over_http_as_over_the_protocol) {
  ASSERT_EQ(send("PUT", "/v1/channels/acme.secret",
                 R"({"durable":true,"permissions":{"publish":["ops"],"subscribe":["ops"]}})")
                .status,
            200);
  const auto pub = send("POST", "/v1/channels/acme.secret/events", R"({"n":1})", acme_token);
  EXPECT_ERROR(pub, 403, "forbidden");
  EXPECT_EQ(pub.error_message(), R"("acme-ops" may not publish on channel "acme.secret")");
  const auto read = send("GET", "/v1/channels/acme.secret/events", {}, acme_token);
  EXPECT_ERROR(read, 403, "forbidden");
  EXPECT_EQ(read.error_message(), R"("acme-ops" may not subscribe to channel "acme.secret")");
  // A tenant-"*" token is no exception: the lists name who may, and "admin" is not on them.
  const auto admin_read = send("GET", "/v1/channels/acme.secret/events");
  EXPECT_ERROR(admin_read, 403, "forbidden");
  EXPECT_EQ(admin_read.error_message(), R"("admin" may not subscribe to channel "acme.secret")");
  // Inherited from a pattern too; and a listed tenant may.
  ASSERT_EQ(send("PUT", "/v1/channels/acme.vault.%3E", R"({"durable":true,"permissions":{"publish":["acme"],"subscribe":["ops"]}})").status, 200);
  EXPECT_EQ(send("POST", "/v1/channels/acme.vault.a/events", R"({"n":1})", acme_token).status, 202);
  EXPECT_ERROR(send("GET", "/v1/channels/acme.vault.a/events", {}, acme_token), 403, "forbidden");
}

}  // namespace
}  // namespace switchboard
