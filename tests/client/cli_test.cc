// Runs the real switchboard-cli binary against an in-process broker.
#include <gtest/gtest.h>
#include <switchboard/client.h>

#include <chrono>
#include <string>
#include <thread>

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
    o.shards = 1;
    o.log_level = "warn";
    auto s = server::server::start(o);
    ASSERT_TRUE(s) << s.error().message;
    _server = std::move(*s);
    _endpoint = _server->endpoint();
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
    return o;
  }

  std::unique_ptr<server::server> _server;
  std::string _endpoint;
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

}  // namespace
}  // namespace switchboard
