// The real `switchboard` binary as an operator meets it (issue 19): --version on every binary,
// abbreviated flags refused like unknown config keys, --check-config, GET /v1/info and the
// build-info metric, JSON logs that name the session, and SIGHUP reloading tokens and the log level.
#include <gtest/gtest.h>
#include <httplib.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <switchboard/protocol.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "support/broker_process.h"
#include "support/child_process.h"
#include "support/raw_client.h"

namespace switchboard {
namespace {

namespace proto = switchboard::protocol;
using namespace std::chrono_literals;
using test::child_process;
using test::temp_dir;
using testing::raw_client;

const std::string broker = SWITCHBOARD_BROKER_PATH;

// A broker started from argv, with its stderr (the log) readable while it runs.
class running_broker {
 public:
  explicit running_broker(std::vector<std::string> args) {
    args.insert(args.begin(), broker);
    _child = std::make_unique<child_process>(args);
    auto line = _child->read_line(20s);
    static const std::regex ready(R"(switchboard listening on (tcp://\S+) \(admin (http://\S+)\))");
    std::smatch m;
    if (line && std::regex_match(*line, m, ready)) {
      endpoint = m[1];
      admin_url = m[2];
    }
  }
  [[nodiscard]] bool ok() const { return !endpoint.empty(); }
  // Waits (reading the log as it comes) until the log holds `needle`.
  bool wait_log(const std::string& needle, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (_child->stderr_text.find(needle) == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      (void)_child->read_line(20ms);  // drains stderr while it waits for a stdout line that never comes
    }
    return true;
  }
  [[nodiscard]] const std::string& log() const { return _child->stderr_text; }
  void signal(int sig) { _child->signal(sig); }
  int terminate() {
    _child->signal(SIGTERM);
    return _child->wait(20s);
  }
  std::string endpoint;
  std::string admin_url;

 private:
  std::unique_ptr<child_process> _child;
};

struct result {
  int code = -1;
  std::string out;
  std::string err;
};
result run(const std::vector<std::string>& argv) {
  child_process p(argv);
  result r;
  r.code = p.wait(20s);
  r.out = p.stdout_text;
  r.err = p.stderr_text;
  return r;
}

std::string write_file(const temp_dir& dir, const std::string& name, const std::string& text) {
  const auto path = dir.path() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(main_test, every_binary_prints_its_version) {
  const std::regex line(
      R"((switchboard|switchboard-cli|switchboard-bench) \d+\.\d+\.\d+ \(commit ([0-9a-f]{7,}(-dirty)?|unknown), \w+ build, protocol version 1\)
)");
  for (const std::string& bin :
       {broker, std::string(SWITCHBOARD_CLI_PATH), std::string(SWITCHBOARD_BENCH_PATH)}) {
    SCOPED_TRACE(bin);
    const auto r = run({bin, "--version"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_TRUE(std::regex_match(r.out, line)) << r.out;
    EXPECT_EQ(r.out.substr(0, r.out.find(' ')), std::filesystem::path(bin).filename().string());
  }
}

TEST(main_test, abbreviated_flags_are_refused_like_unknown_config_keys) {
  const auto flag =
      run({broker, "--memory", "--bind", "tcp://127.0.0.1:*", "--admin-port", "0", "--shard", "2"});
  EXPECT_EQ(flag.code, 2);
  EXPECT_EQ(flag.out, "");
  EXPECT_EQ(flag.err, "switchboard: unrecognised option '--shard'\n");

  temp_dir dir;
  const auto conf = write_file(dir, "abbrev.conf", "memory = true\nshard = 2\n");
  const auto file = run({broker, "--config", conf, "--bind", "tcp://127.0.0.1:*", "--admin-port", "0"});
  EXPECT_EQ(file.code, 2);
  EXPECT_EQ(file.err, "switchboard: unrecognised option 'shard'\n");

  // The CLI refuses them too (`--cou` is not `--count`, `--tok` not `--token`).
  auto cli = run({SWITCHBOARD_CLI_PATH, "pub", "a.b", "c", "--cou", "3"});
  EXPECT_EQ(cli.code, 2);
  EXPECT_EQ(cli.err.substr(0, cli.err.find('\n')), "switchboard-cli: pub: unrecognised option '--cou'");
  cli = run({SWITCHBOARD_CLI_PATH, "pub", "a.b", "c", "--tok", "x"});
  EXPECT_EQ(cli.code, 2);
  EXPECT_EQ(cli.err.substr(0, cli.err.find('\n')), "switchboard-cli: pub: unrecognised option '--tok'");
}

TEST(main_test, check_config_validates_a_file_and_exits_0_or_2) {
  temp_dir dir;
  const auto good = write_file(dir, "good.conf",
                               "# comment\nbind = tcp://127.0.0.1:7400\nshards = 2\nlog-format = json\n"
                               "token = acme-app:s3cret:acme:publish,subscribe\n");
  const auto ok = run({broker, "--check-config", good});
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(ok.out, "switchboard: configuration file " + good + " is valid\n");
  EXPECT_EQ(ok.err, "");

  const auto typo = write_file(dir, "typo.conf", "shardz = 2\n");
  auto r = run({broker, "--check-config", typo});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "switchboard: unrecognised option 'shardz'\n");

  const auto bad_token = write_file(dir, "token.conf", "token = acme-app:s3cret:acme:publish,fly\n");
  r = run({broker, "--check-config", bad_token});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err.rfind("switchboard: " + bad_token + ": ", 0), 0u) << r.err;

  const auto bad_policy = write_file(dir, "policy.conf", "slow-consumer = explode\n");
  r = run({broker, "--check-config", bad_policy});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "switchboard: " + bad_policy +
                       ": slow-consumer must be \"disconnect\" or \"drop_oldest\", not \"explode\"\n");

  const auto bad_format = write_file(dir, "format.conf", "log-format = xml\n");
  r = run({broker, "--check-config", bad_format});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "switchboard: the argument ('xml') for option '--log-format' is invalid: text or json\n");

  r = run({broker, "--check-config", dir.path() + "/missing.conf"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "switchboard: cannot read config file " + dir.path() + "/missing.conf\n");
}

TEST(main_test, info_route_and_build_info_metric_name_the_version) {
  temp_dir dir;
  running_broker b({"--memory", "--bind", "tcp://127.0.0.1:*", "--admin-port", "0", "--admin-token", "t0k",
                    "--log-level", "info"});
  ASSERT_TRUE(b.ok()) << b.log();
  const auto version = run({broker, "--version"}).out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(version, m, std::regex(R"(switchboard (\S+) \(commit (\S+), (\w+) build)")));
  const std::string v = m[1];
  const std::string commit = m[2];
  // The start-up log says the same.
  EXPECT_TRUE(b.wait_log(version.substr(0, version.size() - 1) + " starting")) << b.log();

  httplib::Client http(b.admin_url);
  auto no_token = http.Get("/v1/info");
  ASSERT_TRUE(no_token);
  EXPECT_EQ(no_token->status, 401);
  http.set_bearer_token_auth("t0k");
  auto info = http.Get("/v1/info");
  ASSERT_TRUE(info);
  ASSERT_EQ(info->status, 200) << info->body;
  EXPECT_EQ(info->get_header_value("Content-Type"), "application/json");
  ASSERT_FALSE(info->body.empty());
  EXPECT_EQ(info->body.back(), '\n');
  rapidjson::Document doc;
  ASSERT_FALSE(doc.Parse(info->body.c_str()).HasParseError()) << info->body;
  EXPECT_STREQ(doc["name"].GetString(), "switchboard");
  EXPECT_EQ(doc["version"].GetString(), v);
  EXPECT_EQ(doc["commit"].GetString(), commit);
  EXPECT_EQ(doc["protocol_version"].GetInt(), 1);
  EXPECT_STREQ(doc["store"].GetString(), "memory");
  EXPECT_GE(doc["shards"].GetUint(), 1u);
  EXPECT_TRUE(doc["uptime_seconds"].IsUint64());
  EXPECT_TRUE(std::regex_match(std::string(doc["started_at"].GetString()),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));

  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("switchboard_build_info{version=\"" + v + "\",commit=\"" + commit + "\"} 1\n"),
            std::string::npos)
      << metrics->body;
  for (const char* name :
       {"process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ",
        "process_start_time_seconds ", "switchboard_uptime_seconds "}) {
    EXPECT_NE(metrics->body.find(std::string("\n") + name), std::string::npos) << name;
  }
  EXPECT_EQ(b.terminate(), 0);
}

// `promtool check metrics` (Prometheus's own linter: names, units, HELP/TYPE, duplicates) on the real
// /metrics output after some traffic of every kind.
TEST(main_test, metrics_pass_promtool_check) {
  const std::string promtool = SWITCHBOARD_PROMTOOL_PATH;
  if (promtool.empty())
    GTEST_SKIP() << "promtool not found (Debian package prometheus; scripts/deps.sh installs it)";
  running_broker b({"--memory", "--bind", "tcp://127.0.0.1:*", "--admin-port", "0", "--log-level", "off"});
  ASSERT_TRUE(b.ok()) << b.log();
  {
    raw_client sub(b.endpoint);
    ASSERT_TRUE(sub.hello());
    sub.send(proto::subscribe{.sub_id = 1, .pattern = "m.>", .options = {}});
    ASSERT_TRUE(sub.expect<proto::suback>());
    raw_client pub(b.endpoint);
    ASSERT_TRUE(pub.hello());
    pub.send(proto::publish{
        .request_id = 1, .ack_requested = true, .channel = "m.x", .key = {}, .payload = "12345"});
    ASSERT_TRUE(pub.expect<proto::puback>());
    ASSERT_TRUE(sub.expect<proto::event>());
    pub.send_bytes("garbage!");
    ASSERT_TRUE(pub.expect<proto::error>());
  }
  httplib::Client http(b.admin_url);
  ASSERT_TRUE(http.Get("/v1/nothing"));
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  ASSERT_EQ(metrics->status, 200);
  child_process check({promtool, "check", "metrics"}, metrics->body);
  EXPECT_EQ(check.wait(30s), 0) << check.stdout_text << check.stderr_text;
  EXPECT_EQ(check.stdout_text + check.stderr_text, "");
  // Bytes in and out count the records of both clients.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(metrics->body, m,
                                std::regex(R"(\nswitchboard_client_received_bytes_total (\d+)\n)")));
  EXPECT_GT(std::stoull(m[1]), 0u);
  ASSERT_TRUE(
      std::regex_search(metrics->body, m, std::regex(R"(\nswitchboard_client_sent_bytes_total (\d+)\n)")));
  EXPECT_GT(std::stoull(m[1]), 0u);
  EXPECT_EQ(b.terminate(), 0);
}

TEST(main_test, json_logs_are_one_escaped_object_per_line_naming_the_session) {
  running_broker b({"--memory", "--bind", "tcp://127.0.0.1:*", "--admin-port", "0", "--log-level", "info",
                    "--log-format", "json", "--token", "we\"ird:s3cret:*:publish,subscribe"});
  ASSERT_TRUE(b.ok()) << b.log();
  {
    raw_client good(b.endpoint);
    ASSERT_TRUE(good.hello(0, "s3cret"));
    ASSERT_TRUE(b.wait_log("opened (heartbeat")) << b.log();
    good.send(proto::bye{});
    ASSERT_TRUE(b.wait_log("closed: the client said BYE")) << b.log();
    raw_client bad(b.endpoint);
    bad.send(proto::hello{.version = proto::version, .heartbeat_ms = 0, .token = "nope"});
    ASSERT_TRUE(bad.expect<proto::error>());
    ASSERT_TRUE(b.wait_log("HELLO with an invalid token rejected")) << b.log();
  }
  EXPECT_EQ(b.terminate(), 0);
  std::size_t lines = 0;
  std::string opened;
  std::string rejected;
  std::size_t pos = 0;
  const std::string& log = b.log();
  while (pos < log.size()) {
    const auto nl = log.find('\n', pos);
    ASSERT_NE(nl, std::string::npos) << "unterminated log line";
    const std::string line = log.substr(pos, nl - pos);
    pos = nl + 1;
    rapidjson::Document doc;
    ASSERT_FALSE(doc.Parse(line.c_str()).HasParseError()) << line;
    ASSERT_TRUE(doc.IsObject());
    for (const char* key : {"time", "level", "logger", "message"})
      ASSERT_TRUE(doc[key].IsString()) << key << ": " << line;
    EXPECT_TRUE(std::regex_match(std::string(doc["time"].GetString()),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
    const std::string message = doc["message"].GetString();
    if (message.find(" opened (heartbeat") != std::string::npos) opened = message;
    if (message.find("invalid token") != std::string::npos)
      rejected = std::string(doc["level"].GetString()) + " " + message;
    ++lines;
  }
  EXPECT_GE(lines, 4u);
  // A client-caused line names the session, its token (quoted even when odd) and its peer address.
  EXPECT_TRUE(std::regex_match(
      opened,
      std::regex(R"(session \d+ \(token "we\\"ird", peer 127\.0\.0\.1\) opened \(heartbeat 5000 ms\))")))
      << opened;
  EXPECT_EQ(rejected, "warning HELLO with an invalid token rejected (peer 127.0.0.1)");
}

TEST(main_test, sighup_reloads_tokens_and_log_level_without_dropping_sessions) {
  temp_dir dir;
  const std::string base = "memory = true\nbind = tcp://127.0.0.1:*\nadmin-port = 0\nadmin-token = adm1n\n";
  const auto conf = write_file(dir, "sb.conf",
                               base +
                                   "log-level = warn\ntoken = keep:k33p:*:publish,subscribe\n"
                                   "token = gone:g0ne:*:publish,subscribe\n");
  running_broker b({"--config", conf});
  ASSERT_TRUE(b.ok()) << b.log();

  raw_client keep(b.endpoint);
  ASSERT_TRUE(keep.hello(0, "k33p"));
  keep.send(proto::subscribe{.sub_id = 1, .pattern = "hup.x", .options = {}});
  ASSERT_TRUE(keep.expect<proto::suback>());
  raw_client gone(b.endpoint);
  ASSERT_TRUE(gone.hello(0, "g0ne"));
  gone.send(proto::subscribe{.sub_id = 1, .pattern = "hup.>", .options = {}});
  ASSERT_TRUE(gone.expect<proto::suback>());
  EXPECT_EQ(b.log().find("opened"), std::string::npos) << "info lines at log-level warn";

  write_file(dir, "sb.conf", base + "log-level = info\ntoken = keep:k33p:*:publish,subscribe\n");
  b.signal(SIGHUP);
  auto e = gone.expect<proto::error>();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->ref, 0u);
  EXPECT_EQ(e->code, "unauthorized");
  EXPECT_EQ(e->message, "token \"gone\" was removed or changed; say HELLO with a valid token");
  ASSERT_TRUE(b.wait_log("SIGHUP: reloaded " + conf + " by signal: 2 token(s), log level info")) << b.log();
  EXPECT_TRUE(
      b.wait_log("session 2 (token \"gone\", peer 127.0.0.1) closed: its token was removed or changed"))
      << b.log();

  // The kept session and its subscription were not touched.
  raw_client pub(b.endpoint);
  ASSERT_TRUE(pub.hello(0, "k33p"));
  pub.send(proto::publish{
      .request_id = 1, .ack_requested = true, .channel = "hup.x", .key = {}, .payload = "still"});
  ASSERT_TRUE(pub.expect<proto::puback>());
  auto ev = keep.expect<proto::event>();
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->payload, "still");
  // The removed token no longer opens a session nor calls the admin API.
  gone.send(proto::hello{.version = proto::version, .heartbeat_ms = 0, .token = "g0ne"});
  e = gone.expect<proto::error>();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "unauthorized");
  EXPECT_EQ(e->message, "invalid token");
  httplib::Client http(b.admin_url);
  http.set_bearer_token_auth("g0ne");
  auto r = http.Get("/v1/channels");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  // The new log level is in force: the HELLO above was logged at info.
  EXPECT_TRUE(b.wait_log("(token \"keep\", peer 127.0.0.1) opened")) << b.log();

  // A broken file changes nothing.
  write_file(dir, "sb.conf", base + "token = broken\n");
  b.signal(SIGHUP);
  ASSERT_TRUE(b.wait_log("tokens unchanged")) << b.log();
  raw_client still(b.endpoint);
  ASSERT_TRUE(still.hello(0, "k33p"));
  EXPECT_EQ(b.terminate(), 0);
}

}  // namespace
}  // namespace switchboard
