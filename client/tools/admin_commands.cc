// switchboard-cli subcommands that talk to the broker's admin HTTP API (docs/ADMIN_API.md):
//
//   channels list | get NAME | put NAME JSON|- | patch NAME JSON|- | delete NAME
//   subscriptions list | get NAME | create JSON|- | delete NAME
//   history CHANNEL [--from-seq N] [--limit N]
//   dead-letters list | redrive ID
//   media get URL | --say TEXT [--voice V] [--rate R] [--format F]
//
// Each request goes to --admin-url with `Authorization: Bearer <--token>` (when a token is given).
// A 2xx answer's body is printed on stdout as one line (nothing for an empty body, e.g. 204); an
// error answer prints `switchboard-cli: <code>: <message>` from the JSON error body on stderr and
// exits 1, as does an unreachable API (`switchboard-cli: cannot reach admin API at <url>`).
// `history` prints one JSON object per event, `{"channel":…,"seq":…,"time":…,"data":…}`, paging
// through next_seq until the end of the log (or until --limit events were printed).
#include <fmt/format.h>
#include <httplib.h>
#include <simdjson.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <expected>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli_common.h"

namespace po = boost::program_options;

namespace switchboard::cli {
namespace {

// Largest `limit` the history endpoint accepts per page.
constexpr std::uint64_t history_page_limit = 1000;

// Percent-encodes a path segment: everything but the RFC 3986 unreserved characters, so `>` becomes
// %3E, `*` %2A and `/` %2F.
std::string encode_segment(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

// A JSON argument, or stdin for "-".
std::string body_argument(const std::string& arg) {
  if (arg != "-") return arg;
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

// One line of output for a JSON body: as is when it is one line already, else minified (and as is
// if it is not JSON after all).
std::string one_line(std::string body) {
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  if (body.find_first_of("\r\n") == std::string::npos) return body;
  std::string minified(body.size(), '\0');
  std::size_t len = 0;
  if (simdjson::minify(body.data(), body.size(), minified.data(), len) != simdjson::SUCCESS) return body;
  minified.resize(len);
  return minified;
}

// The error line for a non-2xx answer: `<code>: <message>` from {"error":{"code","message"}}, else
// `HTTP <status>` (plus the body's first line when there is one).
std::string error_line(int status, const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc) == simdjson::SUCCESS) {
    std::string_view code, message;
    if (doc["error"]["code"].get(code) == simdjson::SUCCESS &&
        doc["error"]["message"].get(message) == simdjson::SUCCESS) {
      return fmt::format("{}: {}", code, message);
    }
  }
  std::string_view first(body);
  first = first.substr(0, std::min(first.find_first_of("\r\n"), std::size_t{200}));
  if (first.empty()) return fmt::format("HTTP {}", status);
  return fmt::format("HTTP {}: {}", status, first);
}

// The admin API at --admin-url. Every call returns the 2xx body, or the exit code after reporting
// the failure on stderr.
class admin_api {
 public:
  explicit admin_api(const global_options& g) : _url(g.admin_url) {
    // scheme://host[:port][/prefix]; the prefix is prepended to every request path.
    std::string base = g.admin_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    const auto scheme_end = base.find("://");
    if (scheme_end == std::string::npos) base = "http://" + base;
    const auto host_begin = base.find("://") + 3;
    const auto path_begin = base.find('/', host_begin);
    if (path_begin != std::string::npos) {
      _prefix = base.substr(path_begin);
      base.resize(path_begin);
    }
    const std::string scheme = base.substr(0, base.find("://"));
    if ((scheme != "http" && scheme != "https") || host_begin >= base.size()) {
      throw usage_error{fmt::format("--admin-url must look like http://HOST:PORT, not \"{}\"", g.admin_url)};
    }
    _client.emplace(base);
    if (!_client->is_valid()) {
      throw usage_error{fmt::format("--admin-url must look like http://HOST:PORT, not \"{}\"", g.admin_url)};
    }
    const auto timeout_us = static_cast<long long>(g.connect_timeout_s * 1e6);
    _client->set_connection_timeout(static_cast<time_t>(timeout_us / 1000000), static_cast<time_t>(timeout_us % 1000000));
    _client->set_read_timeout(60, 0);
    _client->set_write_timeout(60, 0);
    _client->set_keep_alive(true);
    if (!g.token.empty()) _client->set_bearer_token_auth(g.token);
  }

  std::expected<std::string, int> get(const std::string& path) { return finish(_client->Get(_prefix + path)); }
  std::expected<std::string, int> del(const std::string& path) { return finish(_client->Delete(_prefix + path)); }
  std::expected<std::string, int> put(const std::string& path, const std::string& body) {
    return finish(_client->Put(_prefix + path, body, "application/json"));
  }
  std::expected<std::string, int> patch(const std::string& path, const std::string& body) {
    return finish(_client->Patch(_prefix + path, body, "application/json"));
  }
  std::expected<std::string, int> post(const std::string& path, const std::string& body) {
    return finish(_client->Post(_prefix + path, body, "application/json"));
  }

 private:
  std::expected<std::string, int> finish(const httplib::Result& r) {
    if (!r) {
      const httplib::Error e = r.error();
      if (e == httplib::Error::Connection || e == httplib::Error::ConnectionTimeout ||
          e == httplib::Error::SSLConnection) {
        return std::unexpected(fail(fmt::format("cannot reach admin API at {}", _url)));
      }
      return std::unexpected(fail(fmt::format("admin API at {}: {}", _url, httplib::to_string(e))));
    }
    if (r->status < 200 || r->status > 299) return std::unexpected(fail(error_line(r->status, r->body)));
    return r->body;
  }

  std::string _url;
  std::string _prefix;
  std::optional<httplib::Client> _client;
};

// Prints a 2xx body (one line; nothing when empty) and returns the exit code of the call.
int print_result(const std::expected<std::string, int>& r) {
  if (!r) return r.error();
  const std::string line = one_line(*r);
  if (!line.empty()) {
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
  }
  std::fflush(stdout);
  return 0;
}

// Splits `args` (after the command name) into the verb and its positional arguments; a verb with a
// different number of arguments than `expected` lists (their names, for the message) is a usage error.
std::vector<std::string> verb_arguments(std::string_view command, const std::vector<std::string>& args,
                                        std::size_t first, const std::vector<std::string_view>& expected) {
  std::vector<std::string> out;
  for (std::size_t i = first; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() > 1 && a[0] == '-' && a[1] == '-') {
      throw usage_error{fmt::format("{}: unknown option '{}'", command, a)};
    }
    out.push_back(a);
  }
  if (out.size() < expected.size()) throw usage_error{fmt::format("{}: missing {}", command, expected[out.size()])};
  if (out.size() > expected.size()) throw usage_error{fmt::format("{}: unexpected argument '{}'", command, out[expected.size()])};
  return out;
}

std::string verb_of(std::string_view command, const std::vector<std::string>& args, std::string_view verbs) {
  if (args.empty()) throw usage_error{fmt::format("{}: missing subcommand ({})", command, verbs)};
  return args.front();
}

// Prints one history page's events as JSON lines and returns (events printed, next_seq), or the
// exit code when the page cannot be read.
struct page_result {
  std::uint64_t events = 0;
  std::uint64_t next_seq = 0;
};
std::expected<page_result, int> print_history_page(const std::string& channel, const std::string& body) {
  simdjson::ondemand::parser parser;
  const simdjson::padded_string padded(body);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object root;
  simdjson::ondemand::array events;
  if (parser.iterate(padded).get(doc) || doc.get_object().get(root) || root.find_field_unordered("events").get(events)) {
    return std::unexpected(fail("admin API answered history with an unexpected document"));
  }
  std::string prefix = "{\"channel\":";
  append_json_string(prefix, channel);
  page_result out;
  std::string lines;
  for (auto element : events) {
    simdjson::ondemand::object ev;
    std::string_view raw;
    if (element.get_object().get(ev) || ev.raw_json().get(raw)) {
      return std::unexpected(fail("admin API answered history with an unexpected document"));
    }
    while (!raw.empty() && std::isspace(static_cast<unsigned char>(raw.back()))) raw.remove_suffix(1);
    raw.remove_prefix(1);  // '{'
    while (!raw.empty() && std::isspace(static_cast<unsigned char>(raw.front()))) raw.remove_prefix(1);
    lines += prefix;
    if (!raw.empty() && raw.front() != '}') lines += ',';
    lines += raw;
    lines += '\n';
    ++out.events;
  }
  if (root.find_field_unordered("next_seq").get(out.next_seq)) {
    return std::unexpected(fail("admin API answered history with an unexpected document"));
  }
  std::fwrite(lines.data(), 1, lines.size(), stdout);
  std::fflush(stdout);
  return out;
}

std::optional<std::uint64_t> parse_uint(const std::string& s) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

int run_channels(const global_options& g, const std::vector<std::string>& args) {
  const std::string verb = verb_of("channels", args, "list, get, put, patch, delete");
  const std::string cmd = "channels " + verb;
  if (verb == "list") {
    verb_arguments(cmd, args, 1, {});
    return print_result(admin_api(g).get("/v1/channels"));
  }
  if (verb == "get" || verb == "delete") {
    const auto a = verb_arguments(cmd, args, 1, {"NAME"});
    admin_api api(g);
    const std::string path = "/v1/channels/" + encode_segment(a[0]);
    return print_result(verb == "get" ? api.get(path) : api.del(path));
  }
  if (verb == "put" || verb == "patch") {
    const auto a = verb_arguments(cmd, args, 1, {"NAME", "JSON"});
    admin_api api(g);
    const std::string path = "/v1/channels/" + encode_segment(a[0]);
    const std::string body = body_argument(a[1]);
    return print_result(verb == "put" ? api.put(path, body) : api.patch(path, body));
  }
  throw usage_error{fmt::format("channels: unknown subcommand '{}' (list, get, put, patch, delete)", verb)};
}

int run_subscriptions(const global_options& g, const std::vector<std::string>& args) {
  const std::string verb = verb_of("subscriptions", args, "list, get, create, delete");
  const std::string cmd = "subscriptions " + verb;
  if (verb == "list") {
    verb_arguments(cmd, args, 1, {});
    return print_result(admin_api(g).get("/v1/subscriptions"));
  }
  if (verb == "get" || verb == "delete") {
    const auto a = verb_arguments(cmd, args, 1, {"NAME"});
    admin_api api(g);
    const std::string path = "/v1/subscriptions/" + encode_segment(a[0]);
    return print_result(verb == "get" ? api.get(path) : api.del(path));
  }
  if (verb == "create") {
    const auto a = verb_arguments(cmd, args, 1, {"JSON"});
    admin_api api(g);
    return print_result(api.post("/v1/subscriptions", body_argument(a[0])));
  }
  throw usage_error{fmt::format("subscriptions: unknown subcommand '{}' (list, get, create, delete)", verb)};
}

int run_dead_letters(const global_options& g, const std::vector<std::string>& args) {
  const std::string verb = verb_of("dead-letters", args, "list, redrive");
  const std::string cmd = "dead-letters " + verb;
  if (verb == "list") {
    verb_arguments(cmd, args, 1, {});
    return print_result(admin_api(g).get("/v1/dead-letters"));
  }
  if (verb == "redrive") {
    const auto a = verb_arguments(cmd, args, 1, {"ID"});
    return print_result(admin_api(g).post("/v1/dead-letters/" + encode_segment(a[0]) + "/redrive", ""));
  }
  throw usage_error{fmt::format("dead-letters: unknown subcommand '{}' (list, redrive)", verb)};
}

int run_history(const global_options& g, const std::vector<std::string>& args) {
  po::options_description desc("history options");
  desc.add_options()("from-seq", po::value<std::string>(), "first seq (default: the oldest stored)")(
      "limit", po::value<std::string>(), "print at most N events (default: all)");
  po::options_description hidden;
  hidden.add_options()("channel", po::value<std::string>());
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description pos;
  pos.add("channel", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(pos).style(flag_style).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw usage_error{std::string("history: ") + e.what()};
  }
  if (!vm.count("channel")) throw usage_error{"history: missing CHANNEL"};
  const std::string channel = vm["channel"].as<std::string>();
  std::uint64_t from = 0;
  if (vm.count("from-seq")) {
    const auto v = parse_uint(vm["from-seq"].as<std::string>());
    if (!v) throw usage_error{"history: --from-seq must be a non-negative integer"};
    from = *v;
  }
  std::optional<std::uint64_t> remaining;
  if (vm.count("limit")) {
    const auto v = parse_uint(vm["limit"].as<std::string>());
    if (!v || *v == 0) throw usage_error{"history: --limit must be a positive integer"};
    remaining = *v;
  }

  admin_api api(g);
  const std::string path = "/v1/channels/" + encode_segment(channel) + "/events";
  for (;;) {
    const std::uint64_t limit = remaining ? std::min(*remaining, history_page_limit) : history_page_limit;
    auto body = api.get(fmt::format("{}?from_seq={}&limit={}", path, from, limit));
    if (!body) return body.error();
    auto page = print_history_page(channel, *body);
    if (!page) return page.error();
    if (remaining) *remaining -= std::min(*remaining, page->events);
    // The end: an empty page, no progress (defensive), or --limit reached.
    if (page->events == 0 || page->next_seq <= from || (remaining && *remaining == 0)) return 0;
    from = page->next_seq;
  }
}

// `media get`: POST /v1/media, then prints the media's full URL (--admin-url + address) on the first
// line and the answer ({"id","address","duration_ms","format","bytes","cached"}) on the second.
int run_media(const global_options& g, const std::vector<std::string>& args) {
  const std::string verb = verb_of("media", args, "get");
  if (verb != "get") throw usage_error{fmt::format("media: unknown subcommand '{}' (get)", verb)};
  po::options_description desc("media get options");
  desc.add_options()("say", po::value<std::string>(), "speak TEXT instead of fetching a URL")(
      "voice", po::value<std::string>(), "espeak-ng voice (with --say; default en)")(
      "rate", po::value<int>(), "words per minute, 80..450 (with --say; default 175)")(
      "format", po::value<std::string>(), "ulaw_8k (default), pcm16_8k or pcm16_16k");
  po::options_description hidden;
  hidden.add_options()("url", po::value<std::string>());
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description pos;
  pos.add("url", 1);
  po::variables_map vm;
  try {
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    po::store(po::command_line_parser(rest).options(all).positional(pos).style(flag_style).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw usage_error{std::string("media get: ") + e.what()};
  }
  const bool say = vm.count("say") > 0;
  if (say == (vm.count("url") > 0)) throw usage_error{"media get: give either URL or --say TEXT"};
  if (!say && (vm.count("voice") || vm.count("rate"))) throw usage_error{"media get: --voice and --rate need --say"};

  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  const auto field = [&w](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  w.StartObject();
  if (say) {
    field("text", vm["say"].as<std::string>());
    if (vm.count("voice")) field("voice", vm["voice"].as<std::string>());
    if (vm.count("rate")) {
      w.Key("rate");
      w.Int(vm["rate"].as<int>());
    }
  } else {
    field("url", vm["url"].as<std::string>());
  }
  if (vm.count("format")) field("format", vm["format"].as<std::string>());
  w.EndObject();

  auto body = admin_api(g).post("/v1/media", std::string(buf.GetString(), buf.GetSize()));
  if (!body) return body.error();
  simdjson::dom::parser parser;
  std::string_view address;
  if (parser.parse(*body).at_key("address").get(address) != simdjson::SUCCESS) {
    return fail("admin API answered media get with an unexpected document");
  }
  std::string base = g.admin_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::printf("%s%.*s\n", base.c_str(), static_cast<int>(address.size()), address.data());
  return print_result(body);
}

}  // namespace switchboard::cli
