// Runs the real switchboard-cli binary against an in-process broker.
#include <gtest/gtest.h>
#include <switchboard/client.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "broker/server/server.h"
#include "support/child_process.h"

namespace switchboard {
namespace {

using namespace std::chrono_literals;
using test::child_process;

const std::string cli = SWITCHBOARD_CLI_PATH;

class cli_test : public ::testing::Test {
 protected:
  void SetUp() override {
    server::options o;
    o.bind = "tcp://127.0.0.1:*";
    o.memory = true;
    o.admin_port = 0;
    o.admin_token = _token;
    o.shards = 1;
    o.log_level = "warn";
    auto s = server::server::start(o);
    ASSERT_TRUE(s) << s.error().message;
    _server = std::move(*s);
    _endpoint = _server->endpoint();
    _admin_url = _server->admin_url();
  }

  // Waits (by probing the broker) until `n` subscriptions are live.
  bool wait_for_subscriptions(std::uint64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (_server->snapshot().subscriptions < n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  client_options options() const {
    client_options o;
    o.url = _endpoint;
    o.token = _token;
    return o;
  }

  std::string _token;  // the broker's admin token; empty = no authentication
  std::unique_ptr<server::server> _server;
  std::string _endpoint;
  std::string _admin_url;
};

// The same broker with an admin token, for the admin API commands.
class cli_admin_test : public cli_test {
 protected:
  cli_admin_test() { _token = "t0ken"; }

  struct result {
    int code = -1;
    std::string out;
    std::string err;
  };
  // Runs `switchboard-cli --url … --admin-url … --token … ARGS` to completion.
  result run(const std::vector<std::string>& args, const std::string& input = {}) {
    std::vector<std::string> argv = {cli, "--url", _endpoint, "--admin-url", _admin_url, "--token", _token};
    argv.insert(argv.end(), args.begin(), args.end());
    child_process p(argv, input);
    result r;
    r.code = p.wait(20s);
    r.out = std::move(p.stdout_text);
    r.err = std::move(p.stderr_text);
    return r;
  }

  // Polls `subscriptions get NAME` until its output contains `needle`.
  bool wait_for_subscription_state(const std::string& name, const std::string& needle) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      const result r = run({"subscriptions", "get", name});
      if (r.code == 0 && r.out.find(needle) != std::string::npos) return true;
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "subscription " << name << " never showed " << needle << "; last: " << r.out << r.err;
        return false;
      }
      std::this_thread::sleep_for(5ms);
    }
  }

  std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
      const auto nl = text.find('\n', pos);
      if (nl == std::string::npos) {
        out.push_back(text.substr(pos));  // an unterminated line: the assertions below will show it
        break;
      }
      out.push_back(text.substr(pos, nl - pos));
      pos = nl + 1;
    }
    return out;
  }
};

TEST_F(cli_test, sub_count_prints_exact_json_lines) {
  child_process sub({cli, "--url", _endpoint, "sub", "cli.test", "--count", "2", "--timeout", "20"});
  ASSERT_TRUE(wait_for_subscriptions(1));

  auto c = client::connect(options());
  ASSERT_TRUE(c) << c.error().message;
  auto a = (*c)->publish_sync("cli.test", R"({"a":1,"b":[true,null]})", 5s);
  ASSERT_TRUE(a) << a.error().message;
  auto b = (*c)->publish_sync("cli.test", "plain \"text\"\n", 5s);
  ASSERT_TRUE(b) << b.error().message;

  ASSERT_EQ(sub.wait(20s), 0) << sub.stderr_text;
  EXPECT_EQ(sub.stdout_text, "{\"channel\":\"cli.test\",\"seq\":" + std::to_string(a->seq) +
                                 ",\"data\":{\"a\":1,\"b\":[true,null]}}\n"
                                 "{\"channel\":\"cli.test\",\"seq\":" + std::to_string(b->seq) +
                                 ",\"data\":\"plain \\\"text\\\"\\n\"}\n");
}

TEST_F(cli_test, pub_reaches_a_subscriber) {
  auto c = client::connect(options());
  ASSERT_TRUE(c) << c.error().message;
  auto s = (*c)->subscribe("cli.pub");
  ASSERT_TRUE(s);

  child_process pub({cli, "--url", _endpoint, "pub", "cli.pub", "not json", "--count", "3"});
  ASSERT_EQ(pub.wait(20s), 0) << pub.stderr_text;
  for (int i = 0; i < 3; ++i) {
    auto m = (*s)->next(5s);
    ASSERT_TRUE(m && m->has_value());
    EXPECT_EQ((*m)->payload, "not json");
  }

  child_process from_stdin({cli, "--url", _endpoint, "pub", "cli.pub", "-"}, "from stdin");
  ASSERT_EQ(from_stdin.wait(20s), 0) << from_stdin.stderr_text;
  auto m = (*s)->next(5s);
  ASSERT_TRUE(m && m->has_value());
  EXPECT_EQ((*m)->payload, "from stdin");
}

TEST_F(cli_test, sub_timeout_exits_1) {
  child_process sub({cli, "--url", _endpoint, "sub", "nothing.here", "--timeout", "1"});
  EXPECT_EQ(sub.wait(20s), 1);
  EXPECT_TRUE(sub.stdout_text.empty());
  EXPECT_NE(sub.stderr_text.find("switchboard-cli: timed out"), std::string::npos) << sub.stderr_text;
}

TEST_F(cli_test, pub_to_unreachable_broker_prints_one_line) {
  _server->stop();  // nothing listens on its port any more
  child_process pub({cli, "--url", _endpoint, "--connect-timeout", "0.5", "pub", "x.y", "z"});
  EXPECT_EQ(pub.wait(20s), 1);
  EXPECT_EQ(pub.stderr_text, "switchboard-cli: cannot reach broker at " + _endpoint + "\n");
}

TEST_F(cli_test, usage_errors_exit_2) {
  child_process none({cli});
  EXPECT_EQ(none.wait(10s), 2);
  child_process unknown({cli, "frobnicate"});
  EXPECT_EQ(unknown.wait(10s), 2);
  child_process missing({cli, "pub"});
  EXPECT_EQ(missing.wait(10s), 2);
}

TEST_F(cli_admin_test, channels_put_get_list_delete_round_trip) {
  // `>` and `*` travel URL-encoded.
  const auto put = run({"channels", "put", "cli.calls.>", R"({"durable":true,"retention":{"max_events":10}})"});
  ASSERT_EQ(put.code, 0) << put.err;
  EXPECT_EQ(put.err, "");
  EXPECT_EQ(put.out,
            R"({"name":"cli.calls.>","config":{"durable":true,"retention":{"max_events":10},"slow_consumer":null,"conflate_key":null,"dedupe_window":null,"max_payload_bytes":null,"permissions":null,"validate":null,"translate":null,"delegate":null,"route":null,"webhook":null,"publish_to_parent":null,"order":null},"sources":{"durable":"pattern","retention":"pattern","slow_consumer":"unset","conflate_key":"unset","dedupe_window":"unset","max_payload_bytes":"unset","permissions":"unset","validate":"unset","translate":"unset","delegate":"unset","route":"unset","webhook":"unset","publish_to_parent":"unset","order":"unset"}})" "\n");

  const auto get = run({"channels", "get", "cli.calls.>"});
  ASSERT_EQ(get.code, 0) << get.err;
  EXPECT_EQ(get.out, put.out);

  // A channel under the pattern inherits from it; the body comes from stdin.
  const auto patch = run({"channels", "patch", "cli.calls.CA1", "-"}, R"({"slow_consumer":"drop_oldest"})");
  ASSERT_EQ(patch.code, 0) << patch.err;
  EXPECT_EQ(patch.out,
            R"({"name":"cli.calls.CA1","config":{"durable":true,"retention":{"max_events":10},"slow_consumer":"drop_oldest","conflate_key":null,"dedupe_window":"0s","max_payload_bytes":1048576,"permissions":{"publish":["*"],"subscribe":["*"]},"validate":null,"translate":null,"delegate":null,"route":[],"webhook":null,"publish_to_parent":false,"order":["validate","delegate","translate","route","webhook","publish_to_parent"]},"sources":{"durable":"cli.calls.>","retention":"cli.calls.>","slow_consumer":"channel","conflate_key":"default","dedupe_window":"default","max_payload_bytes":"default","permissions":"default","validate":"default","translate":"default","delegate":"default","route":"default","webhook":"default","publish_to_parent":"default","order":"default"}})" "\n");

  const auto list = run({"channels", "list"});
  ASSERT_EQ(list.code, 0) << list.err;
  // The listing shows live stats and whether the config makes each name durable.
  EXPECT_EQ(list.out,
            R"({"channels":[{"name":"cli.calls.>","durable":true,"published":0,"delivered":0,"subscribers":0,"last_seq":0,"dropped":0},{"name":"cli.calls.CA1","durable":true,"published":0,"delivered":0,"subscribers":0,"last_seq":0,"dropped":0}]})" "\n");

  const auto del = run({"channels", "delete", "cli.calls.>"});
  ASSERT_EQ(del.code, 0) << del.err;
  EXPECT_EQ(del.out, "");
  EXPECT_EQ(del.err, "");

  const auto gone = run({"channels", "delete", "cli.calls.>"});
  EXPECT_EQ(gone.code, 1);
  EXPECT_EQ(gone.out, "");
  EXPECT_EQ(gone.err.rfind("switchboard-cli: not_found: ", 0), 0u) << gone.err;
  EXPECT_EQ(std::count(gone.err.begin(), gone.err.end(), '\n'), 1) << gone.err;

  const auto star = run({"channels", "put", "cli.*.status", "{}"});
  ASSERT_EQ(star.code, 0) << star.err;
  EXPECT_NE(star.out.find(R"("name":"cli.*.status")"), std::string::npos) << star.out;
}

TEST_F(cli_admin_test, put_with_an_unknown_attribute_exits_1_with_the_api_error) {
  const auto r = run({"channels", "put", "cli.colours", R"({"colour":"red"})"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "switchboard-cli: unknown_attribute: unknown attribute \"colour\"\n");

  const auto bad_json = run({"channels", "put", "cli.colours", "{"});
  EXPECT_EQ(bad_json.code, 1);
  EXPECT_EQ(bad_json.err.rfind("switchboard-cli: invalid_json: ", 0), 0u) << bad_json.err;
}

TEST_F(cli_admin_test, bad_token_exits_1_unauthorized) {
  child_process p({cli, "--admin-url", _admin_url, "--token", "wrong", "channels", "list"});
  EXPECT_EQ(p.wait(20s), 1);
  EXPECT_EQ(p.stdout_text, "");
  EXPECT_EQ(p.stderr_text, "switchboard-cli: unauthorized: invalid token\n");

  child_process none({cli, "--admin-url", _admin_url, "channels", "list"});
  EXPECT_EQ(none.wait(20s), 1);
  EXPECT_EQ(none.stderr_text, "switchboard-cli: unauthorized: missing bearer token\n");
}

TEST_F(cli_admin_test, admin_url_and_token_come_from_the_environment) {
  child_process p({"/usr/bin/env", "SWITCHBOARD_ADMIN_URL=" + _admin_url, "SWITCHBOARD_TOKEN=" + _token, cli,
                   "channels", "list"});
  EXPECT_EQ(p.wait(20s), 0) << p.stderr_text;
  EXPECT_EQ(p.stdout_text, "{\"channels\":[]}\n");

  // A flag wins over the environment.
  child_process flag({"/usr/bin/env", "SWITCHBOARD_ADMIN_URL=" + _admin_url, "SWITCHBOARD_TOKEN=" + _token, cli,
                      "--token", "wrong", "channels", "list"});
  EXPECT_EQ(flag.wait(20s), 1);
  EXPECT_EQ(flag.stderr_text, "switchboard-cli: unauthorized: invalid token\n");
}

TEST_F(cli_admin_test, unreachable_admin_api_prints_one_line) {
  const std::string url = _admin_url;
  _server->stop();
  child_process p({cli, "--admin-url", url, "--token", _token, "--connect-timeout", "0.5", "channels", "list"});
  EXPECT_EQ(p.wait(20s), 1);
  EXPECT_EQ(p.stdout_text, "");
  EXPECT_EQ(p.stderr_text, "switchboard-cli: cannot reach admin API at " + url + "\n");
}

TEST_F(cli_admin_test, history_prints_one_line_per_stored_event) {
  ASSERT_EQ(run({"channels", "put", "cli.hist", R"({"durable":true})"}).code, 0);
  auto c = client::connect(options());
  ASSERT_TRUE(c) << c.error().message;
  for (int i = 1; i <= 3; ++i) {
    auto a = (*c)->publish_sync("cli.hist", "{\"n\":" + std::to_string(i) + "}", 5s);
    ASSERT_TRUE(a) << a.error().message;
    ASSERT_EQ(a->seq, static_cast<std::uint64_t>(i));
  }

  const auto r = run({"history", "cli.hist"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto got = lines(r.out);
  ASSERT_EQ(got.size(), 3u) << r.out;
  for (int i = 1; i <= 3; ++i) {
    const std::string& line = got[static_cast<std::size_t>(i - 1)];
    const std::string head = "{\"channel\":\"cli.hist\",\"seq\":" + std::to_string(i) + ",\"time\":\"";
    const std::string tail = "Z\",\"data\":{\"n\":" + std::to_string(i) + "}}";
    EXPECT_EQ(line.rfind(head, 0), 0u) << line;
    ASSERT_GE(line.size(), head.size() + tail.size());
    EXPECT_EQ(line.substr(line.size() - tail.size()), tail) << line;
    EXPECT_EQ(line.size(), head.size() + 23 + tail.size()) << line;  // 2024-05-01T12:34:56.789 + Z
  }

  const auto from = run({"history", "cli.hist", "--from-seq", "2", "--limit", "1"});
  ASSERT_EQ(from.code, 0) << from.err;
  ASSERT_EQ(lines(from.out).size(), 1u) << from.out;
  EXPECT_EQ(from.out.rfind("{\"channel\":\"cli.hist\",\"seq\":2,", 0), 0u) << from.out;

  const auto past_end = run({"history", "cli.hist", "--from-seq", "4"});
  EXPECT_EQ(past_end.code, 0) << past_end.err;
  EXPECT_EQ(past_end.out, "");

  const auto not_durable = run({"history", "cli.volatile"});
  EXPECT_EQ(not_durable.code, 1);
  EXPECT_EQ(not_durable.err.rfind("switchboard-cli: not_found: ", 0), 0u) << not_durable.err;
}

TEST_F(cli_admin_test, history_follows_next_seq_across_pages) {
  ASSERT_EQ(run({"channels", "put", "cli.long", R"({"durable":true})"}).code, 0);
  child_process pub({cli, "--url", _endpoint, "--token", _token, "pub", "cli.long", "1", "--count", "1205"});
  ASSERT_EQ(pub.wait(30s), 0) << pub.stderr_text;

  const auto all = run({"history", "cli.long"});
  ASSERT_EQ(all.code, 0) << all.err;
  const auto got = lines(all.out);
  ASSERT_EQ(got.size(), 1205u);
  EXPECT_EQ(got.back().rfind("{\"channel\":\"cli.long\",\"seq\":1205,", 0), 0u) << got.back();

  const auto limited = run({"history", "cli.long", "--from-seq", "100", "--limit", "1001"});
  ASSERT_EQ(limited.code, 0) << limited.err;
  const auto some = lines(limited.out);
  ASSERT_EQ(some.size(), 1001u);
  EXPECT_EQ(some.front().rfind("{\"channel\":\"cli.long\",\"seq\":100,", 0), 0u) << some.front();
  EXPECT_EQ(some.back().rfind("{\"channel\":\"cli.long\",\"seq\":1100,", 0), 0u) << some.back();
}

TEST_F(cli_admin_test, sub_durable_at_least_once_receives_and_acks) {
  ASSERT_EQ(run({"channels", "put", "cli.bill.>", R"({"durable":true})"}).code, 0);
  child_process sub({cli, "--url", _endpoint, "--token", _token, "sub", "cli.bill.>", "--durable", "billing", "--ack",
                     "at_least_once", "--count", "2", "--timeout", "20"});
  // The SUB created the subscription with the given ack policy, and it is attached.
  ASSERT_TRUE(wait_for_subscription_state("billing", R"("attached":true)"));
  const auto doc = run({"subscriptions", "get", "billing"});
  EXPECT_NE(doc.out.find(R"("pattern":"cli.bill.>")"), std::string::npos) << doc.out;
  EXPECT_NE(doc.out.find(R"("policy":"at_least_once")"), std::string::npos) << doc.out;

  auto c = client::connect(options());
  ASSERT_TRUE(c) << c.error().message;
  auto a = (*c)->publish_sync("cli.bill.CA1", R"({"amount":1})", 5s);
  ASSERT_TRUE(a) << a.error().message;
  auto b = (*c)->publish_sync("cli.bill.CA2", "two", 5s);
  ASSERT_TRUE(b) << b.error().message;

  ASSERT_EQ(sub.wait(20s), 0) << sub.stderr_text;
  EXPECT_EQ(sub.stdout_text, "{\"channel\":\"cli.bill.CA1\",\"seq\":1,\"data\":{\"amount\":1}}\n"
                             "{\"channel\":\"cli.bill.CA2\",\"seq\":1,\"data\":\"two\"}\n");
  EXPECT_EQ(sub.stderr_text, "");
  // Both were acknowledged: nothing pending, nothing redelivered.
  EXPECT_TRUE(wait_for_subscription_state("billing", R"("pending":0,"delivered":2,"redeliveries":0)"));
}

TEST_F(cli_admin_test, sub_durable_with_a_bad_start_is_refused_by_the_broker) {
  const auto r = run({"sub", "cli.bad", "--durable", "bad", "--start", "yesterday", "--timeout", "10"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "switchboard-cli: subscribe cli.bad: invalid_options (attribute \"start\" must be one of new, all, "
            "seq:<N>, time:<RFC3339>, or a position {\"epoch\": \"<hex>\", \"seq\": N})\n");
}

TEST_F(cli_admin_test, subscriptions_create_get_list_delete) {
  const auto created = run({"subscriptions", "create", R"({"name":"audit","pattern":"cli.audit.>","start":"all"})"});
  ASSERT_EQ(created.code, 0) << created.err;
  EXPECT_EQ(created.out.rfind(R"({"name":"audit","pattern":"cli.audit.>","filter":{},"ack":{"policy":"none",)", 0), 0u)
      << created.out;
  EXPECT_EQ(std::count(created.out.begin(), created.out.end(), '\n'), 1) << created.out;

  const auto from_stdin = run({"subscriptions", "create", "-"}, R"({"name":"audit2","pattern":"cli.x"})");
  ASSERT_EQ(from_stdin.code, 0) << from_stdin.err;

  const auto got = run({"subscriptions", "get", "audit"});
  ASSERT_EQ(got.code, 0) << got.err;
  EXPECT_EQ(got.out, created.out);

  const auto list = run({"subscriptions", "list"});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_NE(list.out.find(R"({"name":"audit",)"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find(R"({"name":"audit2",)"), std::string::npos) << list.out;

  const auto clash = run({"subscriptions", "create", R"({"name":"audit","pattern":"cli.other"})"});
  EXPECT_EQ(clash.code, 1);
  EXPECT_EQ(clash.err.rfind("switchboard-cli: conflict: ", 0), 0u) << clash.err;

  const auto del = run({"subscriptions", "delete", "audit"});
  ASSERT_EQ(del.code, 0) << del.err;
  EXPECT_EQ(del.out, "");
  const auto gone = run({"subscriptions", "get", "audit"});
  EXPECT_EQ(gone.code, 1);
  EXPECT_EQ(gone.err.rfind("switchboard-cli: not_found: ", 0), 0u) << gone.err;

  const auto dead = run({"dead-letters", "list"});
  EXPECT_EQ(dead.code, 0) << dead.err;
  const auto redrive = run({"dead-letters", "redrive", "no-such-id"});
  EXPECT_EQ(redrive.code, 1);
  EXPECT_EQ(redrive.err.rfind("switchboard-cli: not_found: ", 0), 0u) << redrive.err;
}

TEST_F(cli_admin_test, admin_usage_errors_exit_2) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"channels"},
           {"channels", "frob"},
           {"channels", "get"},
           {"channels", "put", "a.b"},
           {"channels", "list", "extra"},
           {"subscriptions", "create"},
           {"dead-letters", "redrive"},
           {"history"},
           {"history", "a.b", "--limit", "0"},
           {"history", "a.b", "--from-seq", "x"},
           {"sub", "a.b", "--ack", "at_least_once"},
           {"sub", "a.b", "--durable", "d", "--ack", "sometimes"},
       }) {
    const auto r = run(args);
    EXPECT_EQ(r.code, 2) << args.front() << " " << (args.size() > 1 ? args[1] : "") << ": " << r.err;
    EXPECT_EQ(r.out, "");
  }
}

// A broker with tokens and a small payload limit, so that `pub` meets each refusal (issue 19).
class cli_refusal_test : public ::testing::Test {
 protected:
  void SetUp() override {
    server::options o;
    o.bind = "tcp://127.0.0.1:*";
    o.memory = true;
    o.admin_port = 0;
    o.admin_token = "adm1n";
    o.tokens = {"reader:r3ader:*:subscribe", "acme-app:acm3:acme:publish,subscribe"};
    o.max_payload_bytes = 64;
    o.shards = 1;
    o.log_level = "off";
    auto s = server::server::start(o);
    ASSERT_TRUE(s) << s.error().message;
    _server = std::move(*s);
  }

  struct result {
    int code = -1;
    std::string out;
    std::string err;
  };
  result pub(const std::string& token, const std::vector<std::string>& args, const std::string& input = {}) {
    std::vector<std::string> argv = {cli, "--url", _server->endpoint(), "--token", token, "pub"};
    argv.insert(argv.end(), args.begin(), args.end());
    child_process p(argv, input);
    result r;
    r.code = p.wait(20s);
    r.out = std::move(p.stdout_text);
    r.err = std::move(p.stderr_text);
    return r;
  }

  std::unique_ptr<server::server> _server;
};

TEST_F(cli_refusal_test, pub_without_publish_scope_exits_1_forbidden) {
  const auto r = pub("r3ader", {"ops.x", "{}"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "switchboard-cli: publish to ops.x refused: forbidden: token \"reader\" has no publish scope\n");
}

TEST_F(cli_refusal_test, pub_outside_the_tenant_exits_1_forbidden) {
  const auto r = pub("acm3", {"globex.calls", "{}"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "switchboard-cli: publish to globex.calls refused: forbidden: tenant \"acme\" may not use \"globex.calls\"\n");
}

TEST_F(cli_refusal_test, pub_to_an_invalid_channel_exits_1_invalid_channel) {
  const auto r = pub("adm1n", {"ops..x", "{}"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "switchboard-cli: publish to ops..x refused: invalid_channel: channel \"ops..x\" has an empty token at position 2\n");
}

TEST_F(cli_refusal_test, pub_above_the_payload_limit_exits_1_payload_too_large) {
  const auto r = pub("adm1n", {"ops.big", std::string(65, 'x')});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "switchboard-cli: publish to ops.big refused: payload_too_large: payload of 65 bytes on channel "
                   "\"ops.big\" exceeds the limit of 64 bytes\n");
}

TEST_F(cli_refusal_test, pub_with_a_wrong_token_exits_1_unauthorized) {
  const auto r = pub("nope", {"ops.x", "{}"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "switchboard-cli: broker at " + _server->endpoint() +
                       " refused the connection: unauthorized (invalid token)\n");
}

TEST_F(cli_refusal_test, pub_count_reports_the_refusal_once_and_delivers_nothing) {
  client_options o;
  o.url = _server->endpoint();
  o.token = "adm1n";
  auto c = client::connect(o);
  ASSERT_TRUE(c) << c.error().message;
  auto s = (*c)->subscribe("ops.>");
  ASSERT_TRUE(s);
  const auto r = pub("r3ader", {"ops.many", "{}", "--count", "5"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "switchboard-cli: publish to ops.many refused: forbidden: token \"reader\" has no publish scope\n");
  // An accepted publish behind it arrives first: nothing of the refused ones was delivered.
  const auto ok = pub("adm1n", {"ops.after", "{}"});
  ASSERT_EQ(ok.code, 0) << ok.err;
  auto m = (*s)->next(5s);
  ASSERT_TRUE(m && m->has_value());
  EXPECT_EQ((*m)->channel, "ops.after");
}

TEST_F(cli_refusal_test, pub_accepted_exits_0_and_stdin_loses_its_trailing_newline) {
  client_options o;
  o.url = _server->endpoint();
  o.token = "adm1n";
  auto c = client::connect(o);
  ASSERT_TRUE(c) << c.error().message;
  auto s = (*c)->subscribe("ops.in");
  ASSERT_TRUE(s);
  const auto r = pub("adm1n", {"ops.in", "-"}, "{\"a\":1}\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  auto m = (*s)->next(5s);
  ASSERT_TRUE(m && m->has_value());
  EXPECT_EQ((*m)->payload, "{\"a\":1}");
}

TEST_F(cli_refusal_test, broker_url_comes_from_switchboard_url) {
  child_process p({"/usr/bin/env", "SWITCHBOARD_URL=" + _server->endpoint(), "SWITCHBOARD_TOKEN=adm1n", cli, "pub",
                   "ops.env", "{}"});
  EXPECT_EQ(p.wait(20s), 0) << p.stderr_text;
  // --url wins over the environment.
  child_process flag({"/usr/bin/env", "SWITCHBOARD_URL=" + _server->endpoint(), "SWITCHBOARD_TOKEN=adm1n", cli,
                      "--url", "tcp://127.0.0.1:1", "--connect-timeout", "0.3", "pub", "ops.env", "{}"});
  EXPECT_EQ(flag.wait(20s), 1);
  EXPECT_EQ(flag.stderr_text, "switchboard-cli: cannot reach broker at tcp://127.0.0.1:1\n");
}

}  // namespace
}  // namespace switchboard
