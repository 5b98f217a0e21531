#include "broker/admin/admin_api.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <exception>
#include <optional>

#include "broker/admin/json_check.h"
#include "broker/common/epoch_text.h"
#include "broker/router/topic.h"

namespace switchboard::admin {
namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr std::chrono::milliseconds publish_timeout{10'000};
constexpr std::size_t max_idempotency_key_bytes = 256;
constexpr std::size_t default_history_limit = 100;
constexpr std::size_t max_history_limit = 1000;

// Writes `s` as a JSON string. Names and payloads are bytes, not necessarily UTF-8: invalid UTF-8
// would make the document invalid, so each byte >= 0x80 is then replaced by U+FFFD (lossy, rare).
void write_string(json_writer& w, std::string_view s) {
  if (simdjson::validate_utf8(s.data(), s.size())) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    return;
  }
  std::string fixed;
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x80) {
      fixed += c;
    } else {
      fixed += "\xef\xbf\xbd";
    }
  }
  w.String(fixed.data(), static_cast<rapidjson::SizeType>(fixed.size()));
}

void write_key(json_writer& w, std::string_view key) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
}

std::string status_json(std::string_view status) {
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  write_key(w, "status");
  write_string(w, status);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string publish_json(const publish_result& r) {
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  write_key(w, "seq");
  w.Uint64(r.seq);
  write_key(w, "epoch");
  write_string(w, common::epoch_text(r.epoch));
  write_key(w, "duplicate");
  w.Bool(r.duplicate);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

// "2024-05-01T12:34:56.789Z".
std::string rfc3339_ms(std::uint64_t time_ns) {
  const auto secs = static_cast<std::time_t>(time_ns / 1'000'000'000u);
  const auto ms = static_cast<unsigned>((time_ns / 1'000'000u) % 1000u);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

// Percent-decodes one path segment; nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    unsigned v = 0;
    const auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
    if (ec != std::errc{} || p != s.data() + i + 3) return std::nullopt;
    out += static_cast<char>(v);
    i += 2;
  }
  return out;
}

std::optional<std::uint64_t> parse_uint(std::string_view s) {
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The routes, by path shape.
enum class route {
  healthz, readyz, metrics,
  channels, channel, channel_events,
  subscriptions, subscription,
  dead_letters, dead_letter_redrive,
  stream,
};

struct matched_route {
  route which;
  std::string name;                       // {name} or {id}, percent-decoded
  std::vector<std::string_view> methods;  // allowed methods
  const stream_route* stream = nullptr;   // route::stream only
};

// The error response, logged (warn for 5xx, debug for 4xx) with the request line.
http_response fail(const http_request& req, int status, std::string_view code, std::string_view message,
                   std::string_view detail_json = {}) {
  if (status >= 500) {
    spdlog::warn("admin {} {} -> {} {}: {}", req.method, auth::quote(req.path()), status, code, message);
  } else {
    spdlog::debug("admin {} {} -> {} {}: {}", req.method, auth::quote(req.path()), status, code, message);
  }
  return error_response(status, code, message, detail_json);
}
http_response fail(const http_request& req, const api_error& e) {
  return fail(req, e.status, e.code, e.message, e.detail_json);
}

http_response no_content() {
  http_response r;
  r.status = 204;
  return r;
}

// Routes `req` to a route; an error response for 404 and malformed paths.
std::expected<matched_route, http_response> match(const http_request& req, const std::vector<stream_route>& streams) {
  std::string_view raw = req.path();
  for (const stream_route& s : streams) {
    if (raw == s.path) {
      return matched_route{route::stream, {}, s.browser_auth ? std::vector<std::string_view>{"GET", "OPTIONS"}
                                                             : std::vector<std::string_view>{"GET"},
                           &s};
    }
  }
  std::vector<std::string> seg;
  if (raw.empty() || raw.front() != '/') return std::unexpected(fail(req, 404, "not_found", "no such endpoint"));
  raw.remove_prefix(1);
  while (true) {
    const std::size_t slash = raw.find('/');
    auto decoded = percent_decode(raw.substr(0, slash));
    if (!decoded) {
      return std::unexpected(fail(req, 400, "invalid_path", "malformed percent-escape in the request path"));
    }
    seg.push_back(std::move(*decoded));
    if (slash == std::string_view::npos) break;
    raw.remove_prefix(slash + 1);
  }
  const auto is = [&](std::size_t n, std::initializer_list<std::string_view> fixed) {
    if (seg.size() != n) return false;
    std::size_t i = 0;
    for (const std::string_view f : fixed) {
      if (!f.empty() && seg[i] != f) return false;
      if (f.empty() && seg[i].empty()) return false;  // a {name} segment must not be empty
      ++i;
    }
    return true;
  };
  using v = std::vector<std::string_view>;
  if (is(1, {"healthz"})) return matched_route{route::healthz, {}, v{"GET"}};
  if (is(1, {"readyz"})) return matched_route{route::readyz, {}, v{"GET"}};
  if (is(1, {"metrics"})) return matched_route{route::metrics, {}, v{"GET"}};
  if (is(2, {"v1", "channels"})) return matched_route{route::channels, {}, v{"GET"}};
  if (is(3, {"v1", "channels", ""})) return matched_route{route::channel, seg[2], v{"GET", "PUT", "PATCH", "DELETE"}};
  if (is(4, {"v1", "channels", "", "events"})) {
    return matched_route{route::channel_events, seg[2], v{"GET", "POST", "DELETE"}};
  }
  if (is(2, {"v1", "subscriptions"})) return matched_route{route::subscriptions, {}, v{"GET", "POST"}};
  if (is(3, {"v1", "subscriptions", ""})) return matched_route{route::subscription, seg[2], v{"GET", "DELETE"}};
  if (is(2, {"v1", "dead-letters"})) return matched_route{route::dead_letters, {}, v{"GET"}};
  if (is(4, {"v1", "dead-letters", "", "redrive"})) return matched_route{route::dead_letter_redrive, seg[2], v{"POST"}};
  return std::unexpected(fail(req, 404, "not_found", "no such endpoint"));
}

std::expected<auth::principal, http_response> authenticate(const http_request& req, const auth::token_table& tokens) {
  if (tokens.open()) return auth::anonymous_principal();
  const std::string_view header = req.header("Authorization");
  constexpr std::string_view scheme = "bearer ";
  if (header.size() <= scheme.size() || lower(header.substr(0, scheme.size())) != scheme) {
    auto r = fail(req, 401, "unauthorized", "missing bearer token");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return std::unexpected(std::move(r));
  }
  std::string_view secret = header.substr(scheme.size());
  while (!secret.empty() && secret.front() == ' ') secret.remove_prefix(1);
  while (!secret.empty() && secret.back() == ' ') secret.remove_suffix(1);
  auto who = tokens.authenticate(secret);
  if (!who) {
    auto r = fail(req, 401, "unauthorized", "invalid token");
    r.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    return std::unexpected(std::move(r));
  }
  return std::move(*who);
}

http_response get_channels(const http_request& req, control& ctl, const auth::principal& who) {
  auto list = ctl.list_channels();
  if (!list) return fail(req, list.error());
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  write_key(w, "channels");
  w.StartArray();
  for (const channel_stats& c : *list) {
    if (!auth::may_use(who, c.name)) continue;
    w.StartObject();
    write_key(w, "name");
    write_string(w, c.name);
    write_key(w, "durable");
    w.Bool(c.durable);
    write_key(w, "published");
    w.Uint64(c.published);
    write_key(w, "delivered");
    w.Uint64(c.delivered);
    write_key(w, "subscribers");
    w.Uint64(c.subscribers);
    write_key(w, "last_seq");
    w.Uint64(c.last_seq);
    write_key(w, "dropped");
    w.Uint64(c.dropped);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return json_response(200, {buf.GetString(), buf.GetSize()});
}

http_response channel(const http_request& req, control& ctl, const auth::principal& who, const std::string& name) {
  // A config may name a channel or a pattern.
  if (!router::validate_channel(name) && !router::validate_pattern(name)) {
    const bool looks_like_pattern = name.find_first_of("*>") != std::string::npos;
    const router::topic_error e =
        looks_like_pattern ? router::validate_pattern(name).error() : router::validate_channel(name).error();
    return fail(req, 400, e.code, e.message);
  }
  const std::string& method = req.method;
  if (method != "GET" && method != "HEAD" && !who.admin) {
    return fail(req, 403, "forbidden", fmt::format("token {} lacks the admin scope", auth::quote(who.name)));
  }
  if (auto ok = auth::may_use(who, name); !ok) return fail(req, 403, "forbidden", ok.error());

  std::expected<std::string, api_error> doc;
  if (method == "PUT") {
    doc = ctl.put_channel(name, req.body);
  } else if (method == "PATCH") {
    doc = ctl.patch_channel(name, req.body);
  } else if (method == "DELETE") {
    if (auto r = ctl.delete_channel(name); !r) return fail(req, r.error());
    return no_content();
  } else {
    doc = ctl.get_channel(name);
  }
  if (!doc) return fail(req, doc.error());
  return json_response(200, std::move(*doc));
}

http_response history_json(const history_page& page) {
  thread_local simdjson::dom::parser parser;
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  write_key(w, "epoch");
  write_string(w, common::epoch_text(page.epoch));
  write_key(w, "events");
  w.StartArray();
  for (const history_event& e : page.events) {
    w.StartObject();
    write_key(w, "seq");
    w.Uint64(e.seq);
    write_key(w, "time");
    write_string(w, rfc3339_ms(e.time_ns));
    write_key(w, "data");
    simdjson::dom::element el;
    if (parser.parse(e.payload.data(), e.payload.size(), true).get(el) == simdjson::SUCCESS) {
      const std::string minified = simdjson::minify(el);
      w.RawValue(minified.data(), minified.size(), rapidjson::kObjectType);
    } else {
      write_string(w, e.payload);
    }
    w.EndObject();
  }
  w.EndArray();
  write_key(w, "next_seq");
  w.Uint64(page.next_seq);
  write_key(w, "first_seq");
  w.Uint64(page.first_seq);
  w.EndObject();
  return json_response(200, {buf.GetString(), buf.GetSize()});
}

http_response channel_events(const http_request& req, control& ctl, const auth::principal& who,
                             const std::string& name) {
  if (auto v = router::validate_channel(name); !v) return fail(req, 400, v.error().code, v.error().message);
  if (req.method == "DELETE") {  // purge the history: an operator's action
    if (!who.admin) return fail(req, 403, "forbidden", fmt::format("token {} lacks the admin scope", auth::quote(who.name)));
    if (auto ok = auth::may_use(who, name); !ok) return fail(req, 403, "forbidden", ok.error());
    auto epoch = ctl.wipe_history(name);
    if (!epoch) return fail(req, epoch.error());
    spdlog::info("admin: history of channel {} purged by {}; new epoch {}", auth::quote(name), auth::quote(who.name),
                 common::epoch_text(*epoch));
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    write_key(w, "channel");
    write_string(w, name);
    write_key(w, "epoch");
    write_string(w, common::epoch_text(*epoch));
    w.EndObject();
    return json_response(200, {buf.GetString(), buf.GetSize()});
  }
  const bool post = req.method == "POST";
  if (post ? !who.publish : !(who.subscribe || who.admin)) {
    return fail(req, 403, "forbidden",
                fmt::format("token {} lacks the {} scope", auth::quote(who.name), post ? "publish" : "subscribe"));
  }
  if (auto ok = auth::may_use(who, name); !ok) return fail(req, 403, "forbidden", ok.error());
  // The channel's `permissions`, exactly as the protocol applies them (PUB / SUB).
  const auto perms = ctl.permissions(name);
  const auto& allowed = post ? perms.publish : perms.subscribe;
  if (std::ranges::find(allowed, "*") == allowed.end() && std::ranges::find(allowed, who.tenant) == allowed.end() &&
      std::ranges::find(allowed, who.name) == allowed.end()) {
    return fail(req, 403, "forbidden",
                fmt::format("{} may not {} channel {}", auth::quote(who.name), post ? "publish on" : "subscribe to",
                            auth::quote(name)));
  }

  if (post) {
    const std::string_view key = req.header("Idempotency-Key");
    if (key.size() > max_idempotency_key_bytes) {
      return fail(req, 400, "invalid_idempotency_key",
                  fmt::format("Idempotency-Key is {} bytes (limit {})", key.size(), max_idempotency_key_bytes));
    }
    if (auto ok = check_json(req.body); !ok) return fail(req, 400, "invalid_json", ok.error());
    auto r = ctl.publish(name, req.body, key, publish_timeout);
    if (!r) return fail(req, r.error());
    return json_response(202, publish_json(*r));
  }

  std::optional<std::uint64_t> epoch;
  if (const auto p = req.query("epoch")) {
    epoch = common::parse_epoch_text(*p);
    if (!epoch) return fail(req, 400, "invalid_parameter", "epoch must be 1 to 16 hex digits, as the API returns it");
  }
  std::uint64_t from_seq = 0;
  std::size_t limit = default_history_limit;
  if (const auto p = req.query("from_seq")) {
    const auto v = parse_uint(*p);
    if (!v) return fail(req, 400, "invalid_parameter", "from_seq must be a non-negative integer");
    from_seq = *v;
  }
  if (const auto p = req.query("limit")) {
    const auto v = parse_uint(*p);
    if (!v || *v == 0 || *v > max_history_limit) {
      return fail(req, 400, "invalid_parameter", fmt::format("limit must be an integer from 1 to {}", max_history_limit));
    }
    limit = static_cast<std::size_t>(*v);
  }
  auto page = ctl.history(name, from_seq, limit);
  if (!page) return fail(req, page.error());
  if (epoch && *epoch != page->epoch) {
    // The positions the client holds belong to another history: never answer them by seq.
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    write_key(w, "epoch");
    write_string(w, common::epoch_text(page->epoch));
    write_key(w, "first_seq");
    w.Uint64(page->first_seq);
    w.EndObject();
    return fail(req, 409, "epoch_changed",
                fmt::format("channel {} has a new history (epoch {}, first seq {}); epoch {} is gone", auth::quote(name),
                            common::epoch_text(page->epoch), page->first_seq, common::epoch_text(*epoch)),
                std::string_view(buf.GetString(), buf.GetSize()));
  }
  return history_json(*page);
}

http_response subscriptions(const http_request& req, control& ctl, route r, const std::string& name) {
  if (r == route::subscriptions && req.method == "POST") {
    if (auto ok = check_json(req.body); !ok) return fail(req, 400, "invalid_json", ok.error());
    auto doc = ctl.create_subscription(req.body);
    if (!doc) return fail(req, doc.error());
    return json_response(201, std::move(*doc));
  }
  if (r == route::subscription && req.method == "DELETE") {
    if (auto ok = ctl.delete_subscription(name); !ok) return fail(req, ok.error());
    return no_content();
  }
  auto doc = r == route::subscriptions ? ctl.list_subscriptions() : ctl.get_subscription(name);
  if (!doc) return fail(req, doc.error());
  return json_response(200, std::move(*doc));
}

http_response dead_letters(const http_request& req, control& ctl, route r, const std::string& id) {
  if (r == route::dead_letters) {
    auto doc = ctl.list_dead_letters();
    if (!doc) return fail(req, doc.error());
    return json_response(200, std::move(*doc));
  }
  auto res = ctl.redrive_dead_letter(id);
  if (!res) return fail(req, res.error());
  return json_response(202, publish_json(*res));
}

}  // namespace

http_response error_response(int status, std::string_view code, std::string_view message,
                             std::string_view detail_json) {
  if (status < 400 || status > 599) status = 500;
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  write_key(w, "error");
  w.StartObject();
  write_key(w, "code");
  write_string(w, code);
  write_key(w, "message");
  write_string(w, message);
  if (!detail_json.empty()) {
    write_key(w, "detail");
    w.RawValue(detail_json.data(), detail_json.size(), rapidjson::kObjectType);
  }
  w.EndObject();
  w.EndObject();
  return json_response(status, {buf.GetString(), buf.GetSize()});
}

http_response json_response(int status, std::string body) {
  http_response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

admin_api::admin_api(const auth::token_table& tokens, control& ctl, std::vector<stream_route> streams,
                     std::function<std::string()> server_metrics, std::vector<route_module> modules)
    : _tokens(tokens),
      _ctl(ctl),
      _streams(std::move(streams)),
      _server_metrics(std::move(server_metrics)),
      _modules(std::move(modules)) {}

const route_module* admin_api::find_module(const http_request& req) const {
  const std::string_view path = req.path();
  for (const route_module& m : _modules) {
    if (path.starts_with(m.prefix) && (path.size() == m.prefix.size() || path[m.prefix.size()] == '/')) return &m;
  }
  return nullptr;
}

http_response admin_api::run_module(const http_request& req, const route_module& m) const {
  const std::string_view method = req.method == "HEAD" ? std::string_view("GET") : std::string_view(req.method);
  if (std::ranges::find(m.methods, method) == m.methods.end()) {
    std::string allow;
    for (const std::string& a : m.methods) allow += (allow.empty() ? "" : ", ") + a;
    auto r = fail(req, 405, "method_not_allowed", fmt::format("{} is not allowed here; allowed: {}", req.method, allow));
    r.headers.emplace_back("Allow", allow);
    return r;
  }
  static const auth::principal nobody{.name = "public", .tenant = ""};
  std::optional<auth::principal> who;
  if (!m.is_public) {
    auto found = authenticate(req, _tokens);
    if (!found) return std::move(found.error());
    who = std::move(*found);
  }
  auto r = m.handle(module_request{req, who ? *who : nobody, req.path().substr(m.prefix.size())});
  if (!r) return fail(req, r.error());
  return std::move(*r);
}

http_response admin_api::open_browser_stream(const http_request& req, const stream_route& route) const {
  static const auth::principal nobody{.name = "unauthenticated", .tenant = ""};
  std::optional<auth::principal> who;
  if (req.method != "OPTIONS") {
    if (!req.header("Authorization").empty()) {
      auto found = authenticate(req, _tokens);
      if (!found) return std::move(found.error());
      who = std::move(*found);
    } else if (const auto token = req.query("token")) {
      if (_tokens.open()) {
        who = auth::anonymous_principal();
      } else if (auto found = _tokens.authenticate(*token)) {
        who = std::move(*found);
      } else {
        return fail(req, 401, "unauthorized", "invalid token");
      }
    } else if (_tokens.open()) {
      who = auth::anonymous_principal();
    }
  }
  auto r = route.open(stream_request{req, who ? *who : nobody, who.has_value()});
  if (!r) return fail(req, r.error());
  return std::move(*r);
}

std::optional<http_response> admin_api::handle_on_io(const http_request& req) const {
  if (is_health_probe(req)) return health();
  const route_module* m = find_module(req);
  if (m == nullptr || !m->on_io_thread) return std::nullopt;
  try {
    return run_module(req, *m);
  } catch (const std::exception& e) {
    spdlog::error("admin {} {}: handler threw: {}", req.method, auth::quote(req.path()), e.what());
  } catch (...) {
    spdlog::error("admin {} {}: handler threw", req.method, auth::quote(req.path()));
  }
  return error_response(500, "internal_error", "internal error");
}

bool admin_api::is_health_probe(const http_request& req) {
  return (req.method == "GET" || req.method == "HEAD") && req.path() == "/healthz";
}

http_response admin_api::health() { return json_response(200, status_json("ok")); }

http_response admin_api::handle(const http_request& req) const {
  try {
    return dispatch(req);
  } catch (const std::exception& e) {
    spdlog::error("admin {} {}: handler threw: {}", req.method, auth::quote(req.path()), e.what());
  } catch (...) {
    spdlog::error("admin {} {}: handler threw", req.method, auth::quote(req.path()));
  }
  return error_response(500, "internal_error", "internal error");
}

http_response admin_api::dispatch(const http_request& req) const {
  if (const route_module* module = find_module(req)) return run_module(req, *module);
  auto m = match(req, _streams);
  if (!m) return std::move(m.error());
  const std::string_view method = req.method == "HEAD" ? std::string_view("GET") : std::string_view(req.method);
  if (std::find(m->methods.begin(), m->methods.end(), method) == m->methods.end()) {
    std::string allow;
    for (const std::string_view a : m->methods) allow += (allow.empty() ? "" : ", ") + std::string(a);
    auto r = fail(req, 405, "method_not_allowed", fmt::format("{} is not allowed here; allowed: {}", req.method, allow));
    r.headers.emplace_back("Allow", allow);
    return r;
  }
  switch (m->which) {
    case route::healthz:
      return health();
    case route::readyz: {
      auto ready = _ctl.ready();
      if (ready) return json_response(200, status_json("ready"));
      return fail(req, ready.error());
    }
    case route::metrics: {
      std::string text = _ctl.metrics();
      if (!text.empty() && text.back() != '\n') text += '\n';
      for (const route_module& module : _modules) {
        if (!module.metrics) continue;
        text += module.metrics();
        if (!text.empty() && text.back() != '\n') text += '\n';
      }
      if (_server_metrics) text += _server_metrics();
      http_response r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = std::move(text);
      return r;
    }
    default:
      break;
  }
  if (m->which == route::stream && m->stream->browser_auth) return open_browser_stream(req, *m->stream);
  auto who = authenticate(req, _tokens);
  if (!who) return std::move(who.error());
  switch (m->which) {
    case route::channels:
      return get_channels(req, _ctl, *who);
    case route::channel:
      return channel(req, _ctl, *who, m->name);
    case route::channel_events:
      return channel_events(req, _ctl, *who, m->name);
    case route::stream: {
      auto r = m->stream->open(stream_request{req, *who});
      if (!r) return fail(req, r.error());
      return std::move(*r);
    }
    case route::subscriptions:
    case route::subscription:
    case route::dead_letters:
    case route::dead_letter_redrive: {
      const bool subs = m->which == route::subscriptions || m->which == route::subscription;
      if (!who->admin) {
        return fail(req, 403, "forbidden", fmt::format("token {} lacks the admin scope", auth::quote(who->name)));
      }
      if (who->tenant != "*") {
        return fail(req, 403, "forbidden", fmt::format("tenant {} may not manage {}", auth::quote(who->tenant),
                                                       subs ? "subscriptions" : "dead letters"));
      }
      return subs ? subscriptions(req, _ctl, m->which, m->name) : dead_letters(req, _ctl, m->which, m->name);
    }
    default:
      return fail(req, 500, "internal_error", "internal error");
  }
}

}  // namespace switchboard::admin
