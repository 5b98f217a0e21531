// switchboard-cli: publish, subscribe and administer a broker from a shell.
//
//   switchboard-cli [GLOBAL OPTIONS] pub TOPIC [PAYLOAD|-] [--count N]
//   switchboard-cli [GLOBAL OPTIONS] sub PATTERN [--count N] [--timeout S]
//                   [--durable NAME [--ack none|at_least_once] [--start new|all|seq:N|time:T]]
//                   [--filter JSON]
//   switchboard-cli [GLOBAL OPTIONS] channels list|get|put|patch|delete ...
//   switchboard-cli [GLOBAL OPTIONS] subscriptions list|get|create|delete ...
//   switchboard-cli [GLOBAL OPTIONS] history CHANNEL [--from-seq N] [--limit N]
//   switchboard-cli [GLOBAL OPTIONS] dead-letters list|redrive ...
//   switchboard-cli [GLOBAL OPTIONS] media get URL|--say TEXT ...
//
// Global options: --url (broker endpoint; env SWITCHBOARD_URL), --admin-url (admin HTTP API; env SWITCHBOARD_ADMIN_URL),
// --token (HELLO token and admin bearer token; env SWITCHBOARD_TOKEN), --connect-timeout.
//
// `pub` publishes PAYLOAD (`-` reads it from stdin, without one trailing newline; none = empty
// payload) N times and waits for the broker's answer to each (PUBACK or ERR), so exit 0 means the
// broker accepted every event, and a refusal (`forbidden`, `invalid_channel`, `payload_too_large`, …)
// exits 1 with `switchboard-cli: publish to TOPIC refused: CODE: MESSAGE` on stderr. `sub` prints one JSON object per event,
// `{"channel":"…","seq":N,"data":…}`, where data is the payload itself when it is JSON (minified when
// it spans lines, so one event stays one line) and a JSON string otherwise. `sub --durable NAME`
// attaches to the durable subscription NAME (created with PATTERN, --ack and --start when it does not
// exist yet) and acknowledges every event after printing it (an ACK for a subscription whose policy
// is `none` is ignored by the broker). The admin commands are in admin_commands.cc.
//
// Exit codes: 0 success; 1 runtime failure (unreachable broker or admin API, timeout, rejection,
// error answer), with one line on stderr; 2 usage error.
#include <switchboard/client.h>

#include <simdjson.h>

#include <unistd.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <switchboard/build_info.h>
#include <switchboard/protocol.h>

#include "cli_common.h"
#include "client/cloudevent/cloudevent.h"

namespace po = boost::program_options;
using namespace switchboard::cli;

namespace {

// Concatenates strings and numbers (g++ 12's libstdc++ has no <format>).
template <typename... Args>
std::string cat(const Args&... args) {
  std::string out;
  ((out += fmt::format("{}", args)), ...);
  return out;
}

std::chrono::milliseconds seconds_to_ms(double s) {
  return std::chrono::milliseconds(static_cast<long long>(s * 1000.0));
}

std::expected<std::shared_ptr<switchboard::client>, int> connect(const global_options& g) {
  switchboard::client_options o;
  o.url = g.url;
  o.token = g.token;
  o.connect_timeout = seconds_to_ms(g.connect_timeout_s);
  o.reconnect = true;
  o.on_error = [](const switchboard::error& e) {
    if (!e.broker_code.empty()) {
      std::fprintf(stderr, "switchboard-cli: broker error %s: %s\n", e.broker_code.c_str(), e.message.c_str());
    }
  };
  auto c = switchboard::client::connect(std::move(o));
  if (c) return *c;
  const auto& e = c.error();
  if (e.code == switchboard::errc::unreachable) return std::unexpected(fail("cannot reach broker at " + g.url));
  if (e.code == switchboard::errc::rejected) {
    return std::unexpected(fail(cat("broker at ", g.url, " refused the connection: ", e.broker_code, " (", e.message, ")")));
  }
  return std::unexpected(fail(cat("cannot connect to ", g.url, ": ", e.message)));
}

// Formats one event as a JSON line. Owns its simdjson parser (one per printer, one thread).
class event_printer {
 public:
  std::string line(const switchboard::message& m) {
    std::string out = "{\"channel\":";
    append_json_string(out, m.channel);
    out += cat(",\"seq\":", m.seq, ",\"data\":");
    const simdjson::padded_string padded(m.payload);
    simdjson::dom::element doc;
    if (!m.payload.empty() && _parser.parse(padded).get(doc) == simdjson::SUCCESS) {
      if (m.payload.find_first_of("\r\n") == std::string::npos) {
        out += m.payload;
      } else {
        std::string minified(m.payload.size(), '\0');
        std::size_t len = 0;
        if (simdjson::minify(m.payload.data(), m.payload.size(), minified.data(), len) == simdjson::SUCCESS) {
          minified.resize(len);
          out += minified;
        } else {
          append_json_string(out, m.payload);
        }
      }
    } else {
      append_json_string(out, m.payload);
    }
    out += "}\n";
    return out;
  }

  // `demo.hello #1  {"msg":"hi"}`: channel, seq, then the payload as it came (one line).
  std::string human_line(const switchboard::message& m) {
    std::string payload = m.payload;
    for (char& c : payload) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    return cat(m.channel, " #", m.seq, "  ", payload, "\n");
  }

 private:
  simdjson::dom::parser _parser;
};

// Payload read from stdin for `pub TOPIC -`, without one trailing newline ("\n" or "\r\n"), so that
// `echo '{"a":1}' | switchboard-cli pub t -` publishes exactly {"a":1}.
std::string read_stdin_payload() {
  std::string s(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>{});
  if (s.ends_with('\n')) s.pop_back();
  if (s.ends_with('\r')) s.pop_back();
  return s;
}

// Counts the broker's answers (PUBACK or ERR) to acknowledged publishes; keeps the first refusal.
// Answers arrive on the client's I/O thread, the waiter is the main thread.
class publish_tally {
 public:
  void sent() {
    std::lock_guard lk(_mu);
    ++_sent;
  }
  void answer(std::optional<switchboard::error> e) {
    std::lock_guard lk(_mu);
    ++_answered;
    if (e && !_first_error) _first_error = std::move(e);
    _cv.notify_all();
  }
  // True once every sent publish was answered, false after `timeout`.
  bool wait(std::chrono::milliseconds timeout) {
    std::unique_lock lk(_mu);
    return _cv.wait_for(lk, timeout, [&] { return _answered >= _sent; });
  }
  [[nodiscard]] long missing() {
    std::lock_guard lk(_mu);
    return _sent - _answered;
  }
  [[nodiscard]] std::optional<switchboard::error> first_error() {
    std::lock_guard lk(_mu);
    return _first_error;
  }

 private:
  std::mutex _mu;
  std::condition_variable _cv;
  long _sent = 0;      // guarded by _mu
  long _answered = 0;  // guarded by _mu
  std::optional<switchboard::error> _first_error;  // guarded by _mu
};

int run_pub(const global_options& g, const std::vector<std::string>& args) {
  po::options_description desc("pub options");
  desc.add_options()("count,n", po::value<long>()->default_value(1), "publish N copies");
  po::options_description hidden;
  hidden.add_options()("topic", po::value<std::string>())("payload", po::value<std::string>());
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description pos;
  pos.add("topic", 1).add("payload", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(pos).style(flag_style).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw usage_error{std::string("pub: ") + e.what()};
  }
  if (!vm.count("topic")) throw usage_error{"pub: missing TOPIC"};
  const long count = vm["count"].as<long>();
  if (count < 0) throw usage_error{"pub: --count must be >= 0"};
  const std::string topic = vm["topic"].as<std::string>();
  std::string payload = vm.count("payload") ? vm["payload"].as<std::string>() : std::string();
  if (payload == "-") payload = read_stdin_payload();

  auto c = connect(g);
  if (!c) return c.error();
  auto& client = *c;
  // Every publish asks for an answer, so a refusal (forbidden, invalid_channel,
  // payload_too_large, ...) is seen and turned into exit 1; PUBACKs of one channel arrive in order.
  // Shared with the callbacks, which may outlive this frame until the client's I/O thread stops.
  auto tally = std::make_shared<publish_tally>();
  for (long i = 0; i < count; ++i) {
    auto ok = client->publish_async(topic, payload, [tally](std::expected<switchboard::publish_ack, switchboard::error> r) {
      tally->answer(r ? std::nullopt : std::optional(r.error()));
    });
    if (!ok) return fail("publish failed: " + ok.error().message);
    tally->sent();
  }
  if (!tally->wait(std::chrono::seconds(30))) {
    return fail(cat("no answer from the broker within 30 s for ", tally->missing(), " of ", count, " events"));
  }
  if (auto e = tally->first_error()) {
    client->close();
    if (e->code == switchboard::errc::rejected) {
      return fail(cat("publish to ", topic, " refused: ", e->broker_code, ": ", e->message));
    }
    return fail(cat("publish to ", topic, " failed: ", e->message));
  }
  client->close();
  return 0;
}

int run_sub(const global_options& g, const std::vector<std::string>& args) {
  po::options_description desc("sub options");
  desc.add_options()("count,n", po::value<long>()->default_value(0), "exit after N events (0 = never)")(
      "timeout,t", po::value<double>()->default_value(0), "exit 1 if the events have not arrived after S seconds (0 = never)")(
      "durable", po::value<std::string>(), "attach to (or create) the durable subscription NAME")(
      "ack", po::value<std::string>(), "ack policy when --durable creates it: none | at_least_once")(
      "start", po::value<std::string>(), "start when --durable creates it: new | all | seq:N | time:RFC3339")(
      "filter", po::value<std::string>(),
      "only events whose JSON payload matches, e.g. '{\"data.call_sid\":\"CA1\"}' (docs/PIPELINE.md)");
  po::options_description hidden;
  hidden.add_options()("pattern", po::value<std::string>());
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description pos;
  pos.add("pattern", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(pos).style(flag_style).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw usage_error{std::string("sub: ") + e.what()};
  }
  if (!vm.count("pattern")) throw usage_error{"sub: missing PATTERN"};
  const long count = vm["count"].as<long>();
  const double timeout_s = vm["timeout"].as<double>();
  if (count < 0 || timeout_s < 0) throw usage_error{"sub: --count and --timeout must be >= 0"};
  const std::string pattern = vm["pattern"].as<std::string>();
  // Durable: SUB options {"durable":NAME[,"ack":{"policy":…}][,"start":…]}; the broker creates the
  // subscription from them when NAME does not exist yet.
  switchboard::subscribe_options sub_options;
  const bool durable = vm.count("durable") > 0;
  if (durable) {
    const std::string name = vm["durable"].as<std::string>();
    if (name.empty()) throw usage_error{"sub: --durable needs a NAME"};
    std::string& extra = sub_options.extra_json;
    extra = "\"durable\":";
    append_json_string(extra, name);
    if (vm.count("ack")) {
      const std::string policy = vm["ack"].as<std::string>();
      if (policy != "none" && policy != "at_least_once") throw usage_error{"sub: --ack must be none or at_least_once"};
      extra += ",\"ack\":{\"policy\":";
      append_json_string(extra, policy);
      extra += '}';
    }
    if (vm.count("start")) {
      extra += ",\"start\":";
      append_json_string(extra, vm["start"].as<std::string>());
    }
  } else if (vm.count("ack") || vm.count("start")) {
    throw usage_error{"sub: --ack and --start need --durable"};
  }
  if (vm.count("filter")) {
    // A JSON object given by the user, passed as the value of the "filter" option: the broker
    // parses and checks it (a bad one is refused with ERR invalid_options and the reason).
    std::string filter = vm["filter"].as<std::string>();
    const auto first = filter.find_first_not_of(" \t\r\n");
    if (first == std::string::npos || filter[first] != '{') throw usage_error{"sub: --filter must be a JSON object"};
    std::string& extra = sub_options.extra_json;
    if (!extra.empty()) extra += ',';
    extra += "\"filter\":";
    extra += filter;
  }

  auto c = connect(g);
  if (!c) return c.error();
  auto& client = *c;
  auto sub = client->subscribe(pattern, nullptr, sub_options);
  if (!sub) {
    const auto& e = sub.error();
    if (e.code == switchboard::errc::rejected) return fail(cat("subscribe ", pattern, ": ", e.broker_code, " (", e.message, ")"));
    return fail(cat("subscribe ", pattern, ": ", e.message));
  }
  event_printer printer;
  bool connected = true;
  // JSON lines when piped (or with --json); one readable line per event on a terminal.
  const bool human = !g.json && ::isatty(STDOUT_FILENO) == 1;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + seconds_to_ms(timeout_s);
  long received = 0;
  while (count == 0 || received < count) {
    auto wait = std::chrono::milliseconds(500);
    if (timeout_s > 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        return fail(cat("timed out after ", timeout_s, " s with ", received, " of ", count, " events"));
      }
      wait = std::min(wait, left);
    }
    auto m = (*sub)->next(wait);
    if (!m) {
      const auto& e = m.error();
      return fail(cat("subscription ended: ", (e.broker_code.empty() ? "" : e.broker_code + ": "), e.message));
    }
    // Say so when the broker goes away (the client keeps trying) and when it is back.
    if (const bool up = client->connected(); up != connected) {
      connected = up;
      std::fprintf(stderr, up ? "switchboard-cli: reconnected to %s; subscribed again\n"
                              : "switchboard-cli: connection lost to %s; reconnecting (Ctrl-C to stop)\n",
                   g.url.c_str());
    }
    if (!*m) continue;
    const std::string out = human ? printer.human_line(**m) : printer.line(**m);
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    // Printed, so done: acknowledge (the broker ignores ACKs of subscriptions without acks).
    if (durable) client->ack(**m);
    ++received;
  }
  // The client sends UNSUB ahead of queued records, and the broker ignores an ACK that arrives
  // after the detach, so wait until the broker has the last ACK before unsubscribing.
  if (durable) {
    if (auto ok = client->flush(std::chrono::seconds(10)); !ok) {
      return fail("acknowledgements not confirmed: " + ok.error().message);
    }
  }
  (*sub)->unsubscribe();
  client->close();
  return 0;
}

// `tail PATTERN`: the same view as the broker's GET /v1/stream (docs/STREAMING.md), over the
// ZeroMQ protocol: one CloudEvents JSON line per event, formatted by the code the SSE proxy uses.
int run_tail(const global_options& g, const std::vector<std::string>& args) {
  po::options_description desc("tail options");
  desc.add_options()("count,n", po::value<long>()->default_value(0), "exit after N events (0 = never)")(
      "filter", po::value<std::string>(), "only events whose JSON payload matches (docs/PIPELINE.md)");
  po::options_description hidden;
  hidden.add_options()("pattern", po::value<std::string>());
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description pos;
  pos.add("pattern", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(pos).style(flag_style).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw usage_error{std::string("tail: ") + e.what()};
  }
  if (!vm.count("pattern")) throw usage_error{"tail: missing PATTERN"};
  const long count = vm["count"].as<long>();
  if (count < 0) throw usage_error{"tail: --count must be >= 0"};
  const std::string pattern = vm["pattern"].as<std::string>();
  switchboard::subscribe_options sub_options;
  sub_options.slow_consumer = "disconnect";  // a loss ends the tail with an error, never a silent gap
  if (vm.count("filter")) {
    const std::string filter = vm["filter"].as<std::string>();
    const auto first = filter.find_first_not_of(" \t\r\n");
    if (first == std::string::npos || filter[first] != '{') throw usage_error{"tail: --filter must be a JSON object"};
    sub_options.extra_json = "\"filter\":" + filter;
  }
  auto c = connect(g);
  if (!c) return c.error();
  auto& client = *c;
  auto sub = client->subscribe(pattern, nullptr, sub_options);
  if (!sub) {
    const auto& e = sub.error();
    if (e.code == switchboard::errc::rejected) return fail(cat("tail ", pattern, ": ", e.broker_code, " (", e.message, ")"));
    return fail(cat("tail ", pattern, ": ", e.message));
  }
  long received = 0;
  while (count == 0 || received < count) {
    auto m = (*sub)->next(std::chrono::milliseconds(500));
    if (!m) {
      const auto& e = m.error();
      return fail(cat("subscription ended: ", (e.broker_code.empty() ? "" : e.broker_code + ": "), e.message));
    }
    if (!*m) continue;
    const auto& ev = **m;
    std::string line = switchboard::cloudevent::format_event(ev.channel, ev.epoch, ev.seq, ev.time_ns, ev.payload);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
    ++received;
  }
  (*sub)->unsubscribe();
  client->close();
  return 0;
}

const char* usage_text =
    "usage: switchboard-cli [--url U] [--admin-url A] [--token T] [--connect-timeout S] [--json] COMMAND ...\n"
    "  pub TOPIC [PAYLOAD|-] [--count N]             publish (PAYLOAD '-' = stdin) and wait for the answers\n"
    "  sub PATTERN [--count N] [--timeout S]         print events (JSON lines when piped or --json)\n"
    "      [--durable NAME [--ack none|at_least_once] [--start new|all|seq:N|time:T]] [--filter JSON]\n"
    "  tail PATTERN [--count N] [--filter JSON]      print events as CloudEvents JSON lines (as GET /v1/stream)\n"
    "  channels list | get NAME | delete NAME        channel configs and stats (admin API)\n"
    "  channels put|patch NAME JSON|-                set a channel or pattern config\n"
    "  subscriptions list | get NAME | delete NAME   durable subscriptions\n"
    "  subscriptions create JSON|-\n"
    "  history CHANNEL [--from-seq N] [--limit N]    stored events as JSON lines\n"
    "  dead-letters list | redrive ID\n"
    "  media get URL | --say TEXT [--voice V] [--rate R] [--format F]   fetch or speak, convert, cache\n";

// `switchboard-cli COMMAND --help`.
const std::map<std::string, std::string> command_help = {
    {"pub",
     "usage: switchboard-cli [GLOBAL OPTIONS] pub TOPIC [PAYLOAD|-] [--count N]\n"
     "Publishes PAYLOAD on channel TOPIC (none = an empty payload; '-' = stdin without its trailing\n"
     "newline) N times (default 1) and waits for the broker's answer to each.\n"
     "Exit 0: every event was accepted. Exit 1: the broker refused one (forbidden, invalid_channel,\n"
     "payload_too_large, ...; the first refusal is printed), or it could not be reached. Exit 2: usage.\n"},
    {"sub",
     "usage: switchboard-cli [GLOBAL OPTIONS] sub PATTERN [--count N] [--timeout S]\n"
     "           [--durable NAME [--ack none|at_least_once] [--start new|all|seq:N|time:RFC3339]]\n"
     "           [--filter JSON]   only events whose payload matches (docs/PIPELINE.md)\n"
     "Prints one JSON line per event: {\"channel\":...,\"seq\":N,\"data\":...}. PATTERN may use '*' (one\n"
     "token) and '>' (the rest). --count N exits after N events; --timeout S exits 1 when they have not\n"
     "arrived after S seconds. --durable NAME attaches to (or creates) a durable subscription and\n"
     "acknowledges each event after printing it; a new one is created with --ack (default none: no\n"
     "redelivery; use at_least_once for acknowledged delivery) and --start (default new).\n"},
    {"tail",
     "usage: switchboard-cli [GLOBAL OPTIONS] tail PATTERN [--count N] [--filter JSON]\n"
     "Prints one CloudEvents 1.0 JSON line per event matching PATTERN, exactly as the broker's\n"
     "Server-Sent Events stream (GET /v1/stream, docs/STREAMING.md) carries it in each data: line;\n"
     "its id is the event's position CHANNEL@EPOCH:SEQ. Uses the ZeroMQ protocol (--url, --token).\n"
     "--count N exits after N events. Exit 1: refused (forbidden, invalid_pattern, invalid_options).\n"},
    {"channels",
     "usage: switchboard-cli [GLOBAL OPTIONS] channels list | get NAME | delete NAME | put NAME JSON|- | patch NAME JSON|-\n"
     "Channel and pattern configurations through the admin API (--admin-url, --token).\n"},
    {"subscriptions",
     "usage: switchboard-cli [GLOBAL OPTIONS] subscriptions list | get NAME | delete NAME | create JSON|-\n"
     "Durable subscriptions through the admin API (admin scope, tenant *).\n"},
    {"history",
     "usage: switchboard-cli [GLOBAL OPTIONS] history CHANNEL [--from-seq N] [--limit N]\n"
     "Prints the stored events of a durable channel as JSON lines, oldest first.\n"},
    {"dead-letters",
     "usage: switchboard-cli [GLOBAL OPTIONS] dead-letters list | redrive ID\n"
     "Dead letters of at_least_once subscriptions; ID looks like billing-acme.calls.CA1-17.\n"},
    {"media",
     "usage: switchboard-cli [GLOBAL OPTIONS] media get URL | --say TEXT [--voice V] [--rate R] [--format F]\n"
     "Asks the broker for telephony audio (POST /v1/media): fetches URL (or speaks TEXT), converts it to\n"
     "F (ulaw_8k, default; pcm16_8k; pcm16_16k) and caches it. Prints the media's URL on the first line\n"
     "and {\"id\",\"address\",\"duration_ms\",\"format\",\"bytes\",\"cached\"} on the second.\n"
     "Exit 1 with the broker's error (e.g. media_invalid: not audio: ...). Needs the publish scope.\n"},
};

// The value of environment variable `name`, or `fallback` when it is unset or empty.
std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  using command_fn = std::function<int(const global_options&, const std::vector<std::string>&)>;
  const std::map<std::string, command_fn> commands = {
      {"pub", run_pub},           {"sub", run_sub},         {"tail", run_tail},         {"channels", run_channels},
      {"subscriptions", run_subscriptions}, {"history", run_history}, {"dead-letters", run_dead_letters},
      {"media", run_media}};

  // Flags override the environment, which overrides the defaults.
  global_options g;
  g.url = env_or("SWITCHBOARD_URL", g.url);
  g.admin_url = env_or("SWITCHBOARD_ADMIN_URL", g.admin_url);
  g.token = env_or("SWITCHBOARD_TOKEN", g.token);
  po::options_description desc("global options");
  desc.add_options()("help,h", "show this help (after a COMMAND: that command's help)")(
      "version", "print the version and exit")("json", po::bool_switch(&g.json),
                                                 "JSON lines even on a terminal (the default when piped)")("url", po::value(&g.url)->default_value(g.url), "broker endpoint (env SWITCHBOARD_URL)")(
      "admin-url", po::value(&g.admin_url)->default_value(g.admin_url), "admin API base URL (env SWITCHBOARD_ADMIN_URL)")(
      "token", po::value(&g.token), "HELLO and admin bearer token (env SWITCHBOARD_TOKEN)")(
      "connect-timeout", po::value(&g.connect_timeout_s)->default_value(g.connect_timeout_s), "seconds to wait for the broker");
  po::options_description hidden;
  hidden.add_options()("command", po::value<std::string>())("args", po::value<std::vector<std::string>>());
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description pos;
  pos.add("command", 1).add("args", -1);
  try {
    po::variables_map vm;
    auto parsed =
        po::command_line_parser(argc, argv).options(all).positional(pos).style(flag_style).allow_unregistered().run();
    po::store(parsed, vm);
    po::notify(vm);
    if (vm.count("version")) {
      std::cout << fmt::format("switchboard-cli {} (commit {}, {} build, protocol version {})\n",
                               switchboard::build_info::version, switchboard::build_info::commit,
                               switchboard::build_info::build_type, switchboard::protocol::version);
      return 0;
    }
    if (vm.count("help")) {
      // `switchboard-cli COMMAND --help` (or `--help COMMAND`): that command's usage.
      if (vm.count("command")) {
        const auto c = command_help.find(vm["command"].as<std::string>());
        if (c != command_help.end()) {
          std::cout << c->second;
          return 0;
        }
      }
      std::cout << usage_text << desc;
      return 0;
    }
    if (!vm.count("command")) throw usage_error{"missing COMMAND"};
    const std::string command = vm["command"].as<std::string>();
    auto it = commands.find(command);
    if (it == commands.end()) throw usage_error{"unknown command '" + command + "'"};
    // Everything after the command name (positional and unrecognised options) goes to the command.
    std::vector<std::string> rest = po::collect_unrecognized(parsed.options, po::include_positional);
    rest.erase(rest.begin());  // the command itself
    if (g.connect_timeout_s <= 0) throw usage_error{"--connect-timeout must be > 0"};
    return it->second(g, rest);
  } catch (const usage_error& e) {
    std::fprintf(stderr, "switchboard-cli: %s\n%s", e.message.c_str(), usage_text);
    return exit_usage;
  } catch (const po::error& e) {
    std::fprintf(stderr, "switchboard-cli: %s\n%s", e.what(), usage_text);
    return exit_usage;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}
