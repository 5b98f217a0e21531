// switchboard-cli: publish and subscribe from a shell.
//
//   switchboard-cli [--url U] [--token T] [--connect-timeout S] pub TOPIC [PAYLOAD|-] [--count N]
//   switchboard-cli [--url U] [--token T] [--connect-timeout S] sub PATTERN [--count N] [--timeout S]
//
// `pub` publishes PAYLOAD (`-` reads it from stdin; none = empty payload) N times, then flushes, so
// exit 0 means the broker has processed every event. `sub` prints one JSON object per event,
// `{"channel":"…","seq":N,"data":…}`, where data is the payload itself when it is JSON (minified when
// it spans lines, so one event stays one line) and a JSON string otherwise.
//
// Exit codes: 0 success; 1 runtime failure (unreachable broker, timeout, rejection), with one line
// on stderr; 2 usage error.
#include <switchboard/client.h>

#include <simdjson.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <cstdio>
#include <type_traits>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

namespace po = boost::program_options;

namespace {

// Concatenates strings and numbers (g++ 12's libstdc++ has no <format>).
template <typename T>
void cat_one(std::string& out, const T& v) {
  if constexpr (std::is_floating_point_v<T>) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", static_cast<double>(v));
    out += buf;
  } else if constexpr (std::is_arithmetic_v<T>) {
    out += std::to_string(v);
  } else {
    out += std::string_view(v);
  }
}
template <typename... Args>
std::string cat(const Args&... args) {
  std::string out;
  (cat_one(out, args), ...);
  return out;
}

constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

struct global_options {
  std::string url = "tcp://127.0.0.1:7400";
  std::string token;
  double connect_timeout_s = 2.0;
};

// A one-line failure on stderr; returns the exit code.
int fail(const std::string& message) {
  std::fprintf(stderr, "switchboard-cli: %s\n", message.c_str());
  return exit_failure;
}

struct usage_error {
  std::string message;
};

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

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
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

 private:
  simdjson::dom::parser _parser;
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
    po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw usage_error{std::string("pub: ") + e.what()};
  }
  if (!vm.count("topic")) throw usage_error{"pub: missing TOPIC"};
  const long count = vm["count"].as<long>();
  if (count < 0) throw usage_error{"pub: --count must be >= 0"};
  const std::string topic = vm["topic"].as<std::string>();
  std::string payload = vm.count("payload") ? vm["payload"].as<std::string>() : std::string();
  if (payload == "-") payload.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());

  auto c = connect(g);
  if (!c) return c.error();
  auto& client = *c;
  for (long i = 0; i < count; ++i) {
    if (auto ok = client->publish(topic, payload); !ok) return fail("publish failed: " + ok.error().message);
  }
  if (auto ok = client->flush(std::chrono::seconds(30)); !ok) return fail("flush failed: " + ok.error().message);
  client->close();
  return 0;
}

int run_sub(const global_options& g, const std::vector<std::string>& args) {
  po::options_description desc("sub options");
  desc.add_options()("count,n", po::value<long>()->default_value(0), "exit after N events (0 = never)")(
      "timeout,t", po::value<double>()->default_value(0), "exit 1 if the events have not arrived after S seconds (0 = never)");
  po::options_description hidden;
  hidden.add_options()("pattern", po::value<std::string>());
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description pos;
  pos.add("pattern", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw usage_error{std::string("sub: ") + e.what()};
  }
  if (!vm.count("pattern")) throw usage_error{"sub: missing PATTERN"};
  const long count = vm["count"].as<long>();
  const double timeout_s = vm["timeout"].as<double>();
  if (count < 0 || timeout_s < 0) throw usage_error{"sub: --count and --timeout must be >= 0"};
  const std::string pattern = vm["pattern"].as<std::string>();

  auto c = connect(g);
  if (!c) return c.error();
  auto& client = *c;
  auto sub = client->subscribe(pattern);
  if (!sub) {
    const auto& e = sub.error();
    if (e.code == switchboard::errc::rejected) return fail(cat("subscribe ", pattern, ": ", e.broker_code, " (", e.message, ")"));
    return fail(cat("subscribe ", pattern, ": ", e.message));
  }
  event_printer printer;
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
    if (!*m) continue;
    const std::string out = printer.line(**m);
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    ++received;
  }
  (*sub)->unsubscribe();
  client->close();
  return 0;
}

const char* usage_text =
    "usage: switchboard-cli [--url U] [--token T] [--connect-timeout S] COMMAND ...\n"
    "  pub TOPIC [PAYLOAD|-] [--count N]          publish (PAYLOAD '-' = stdin), then flush\n"
    "  sub PATTERN [--count N] [--timeout S]      print events as JSON lines\n";

}  // namespace

int main(int argc, char** argv) {
  using command_fn = std::function<int(const global_options&, const std::vector<std::string>&)>;
  // Subcommand dispatch; channels, subscriptions and history join here.
  const std::map<std::string, command_fn> commands = {{"pub", run_pub}, {"sub", run_sub}};

  global_options g;
  po::options_description desc("global options");
  desc.add_options()("help,h", "show this help")("url", po::value(&g.url)->default_value(g.url), "broker endpoint")(
      "token", po::value(&g.token), "HELLO token")(
      "connect-timeout", po::value(&g.connect_timeout_s)->default_value(g.connect_timeout_s), "seconds to wait for the broker");
  po::options_description hidden;
  hidden.add_options()("command", po::value<std::string>())("args", po::value<std::vector<std::string>>());
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description pos;
  pos.add("command", 1).add("args", -1);
  try {
    po::variables_map vm;
    auto parsed = po::command_line_parser(argc, argv).options(all).positional(pos).allow_unregistered().run();
    po::store(parsed, vm);
    po::notify(vm);
    if (vm.count("help")) {
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
