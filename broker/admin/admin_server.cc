#include "broker/admin/admin_server.h"

#include <fmt/format.h>
#include <httplib.h>
#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <atomic>
#include <functional>
#include <charconv>
#include <ctime>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "broker/router/topic.h"

namespace switchboard::admin {
namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr std::chrono::milliseconds publish_timeout{10'000};
constexpr std::size_t max_idempotency_key_bytes = 256;
constexpr std::size_t default_history_limit = 100;
constexpr std::size_t max_history_limit = 1000;
constexpr const char* json_type = "application/json";

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

std::string error_json(std::string_view code, std::string_view message) {
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  write_key(w, "error");
  w.StartObject();
  write_key(w, "code");
  write_string(w, code);
  write_key(w, "message");
  write_string(w, message);
  w.EndObject();
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
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

// Is `text` one JSON value? Returns nothing, or the invalid_json message. simdjson decides validity
// (one parser per worker thread); on failure RapidJSON's reader locates the first error's offset.
std::expected<void, std::string> check_json(std::string_view text) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  const auto err = parser.parse(text.data(), text.size(), true).get(root);
  if (err == simdjson::SUCCESS) return {};
  rapidjson::Reader reader;
  rapidjson::BaseReaderHandler<> ignore;
  rapidjson::MemoryStream ms(text.data(), text.size());
  const rapidjson::ParseResult r = reader.Parse<rapidjson::kParseValidateEncodingFlag>(ms, ignore);
  if (r.IsError()) {
    std::string reason = rapidjson::GetParseError_En(r.Code());  // "Invalid value." -> "invalid value"
    if (!reason.empty() && reason.back() == '.') reason.pop_back();
    if (!reason.empty()) reason[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(reason[0])));
    return std::unexpected(fmt::format("invalid JSON at byte {}: {}", r.Offset(), reason));
  }
  return std::unexpected(fmt::format("invalid JSON: {}", simdjson::error_message(err)));
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
};

struct matched_route {
  route which;
  std::string name;                      // {name} or {id}, percent-decoded
  std::vector<std::string_view> methods; // allowed methods
};

// One request being handled: the request, the response, and the error helpers.
struct exchange {
  const httplib::Request& req;
  httplib::Response& res;

  void json(int status, std::string body) {
    res.status = status;
    res.set_content(std::move(body), json_type);
  }
  void error(int status, std::string_view code, std::string_view message) {
    if (status < 400 || status > 599) status = 500;
    if (status >= 500) {
      spdlog::warn("admin {} {} -> {} {}: {}", req.method, auth::quote(req.path), status, code, message);
    } else {
      spdlog::debug("admin {} {} -> {} {}: {}", req.method, auth::quote(req.path), status, code, message);
    }
    json(status, error_json(code, message));
  }
  void error(const api_error& e) { error(e.status, e.code, e.message); }
};

std::string publish_json(const publish_result& r) {
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  write_key(w, "seq");
  w.Uint64(r.seq);
  write_key(w, "epoch");
  write_string(w, fmt::format("{:016x}", r.epoch));
  write_key(w, "duplicate");
  w.Bool(r.duplicate);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

// Which admin worker the current thread is: set on the first task a pool thread runs.
thread_local const void* worker_owner = nullptr;
thread_local unsigned worker_slot = 0;

// httplib's ThreadPool, with each of its threads numbered 0..n-1 per server (see current_worker()).
class numbered_pool : public httplib::TaskQueue {
 public:
  explicit numbered_pool(std::size_t n) : _pool(n) {}
  void enqueue(std::function<void()> fn) override {
    _pool.enqueue([this, fn = std::move(fn)] {
      if (worker_owner != this) {
        worker_owner = this;
        worker_slot = _next.fetch_add(1);
      }
      fn();
    });
  }
  void shutdown() override { _pool.shutdown(); }

 private:
  httplib::ThreadPool _pool;
  std::atomic<unsigned> _next{0};  // slots handed out; at most the pool's thread count
};

}  // namespace

std::optional<unsigned> admin_server::current_worker() noexcept {
  if (worker_owner == nullptr) return std::nullopt;
  return worker_slot;
}

struct admin_server::impl {
  impl(admin_options o, const auth::token_table& t, control& c) : opts(std::move(o)), tokens(t), ctl(c) {}

  admin_options opts;
  const auth::token_table tokens;  // immutable copy
  control& ctl;
  httplib::Server svr;
  std::thread listener;
  std::atomic<bool> listener_done{false};
  std::uint16_t bound_port = 0;
  std::mutex stop_mutex;  // serialises stop()
  bool stopped = false;   // guarded by stop_mutex
  std::array<std::atomic<std::uint64_t>, 5> by_class{};  // 1xx..5xx responses

  void install();
  void dispatch(const httplib::Request& req, httplib::Response& res);
  std::optional<matched_route> match(exchange& x);
  std::optional<auth::principal> authenticate(exchange& x);

  void get_channels(exchange& x, const auth::principal& who);
  void channel(exchange& x, const auth::principal& who, const std::string& name);
  void channel_events(exchange& x, const auth::principal& who, const std::string& name);
  void subscriptions(exchange& x, route r, const std::string& name);
  void dead_letters(exchange& x, route r, const std::string& id);
};

std::optional<matched_route> admin_server::impl::match(exchange& x) {
  std::string_view raw = x.req.target;
  raw = raw.substr(0, raw.find('?'));
  std::vector<std::string> seg;
  if (raw.empty() || raw.front() != '/') {
    x.error(404, "not_found", "no such endpoint");
    return std::nullopt;
  }
  raw.remove_prefix(1);
  while (true) {
    const std::size_t slash = raw.find('/');
    auto decoded = percent_decode(raw.substr(0, slash));
    if (!decoded) {
      x.error(400, "invalid_path", "malformed percent-escape in the request path");
      return std::nullopt;
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
  if (is(4, {"v1", "channels", "", "events"})) return matched_route{route::channel_events, seg[2], v{"GET", "POST"}};
  if (is(2, {"v1", "subscriptions"})) return matched_route{route::subscriptions, {}, v{"GET", "POST"}};
  if (is(3, {"v1", "subscriptions", ""})) return matched_route{route::subscription, seg[2], v{"GET", "DELETE"}};
  if (is(2, {"v1", "dead-letters"})) return matched_route{route::dead_letters, {}, v{"GET"}};
  if (is(4, {"v1", "dead-letters", "", "redrive"})) return matched_route{route::dead_letter_redrive, seg[2], v{"POST"}};
  x.error(404, "not_found", "no such endpoint");
  return std::nullopt;
}

std::optional<auth::principal> admin_server::impl::authenticate(exchange& x) {
  if (tokens.open()) return auth::anonymous_principal();
  const std::string header = x.req.get_header_value("Authorization");
  constexpr std::string_view scheme = "bearer ";
  if (header.size() <= scheme.size() || lower(std::string_view(header).substr(0, scheme.size())) != scheme) {
    x.res.set_header("WWW-Authenticate", "Bearer");
    x.error(401, "unauthorized", "missing bearer token");
    return std::nullopt;
  }
  std::string_view secret = std::string_view(header).substr(scheme.size());
  while (!secret.empty() && secret.front() == ' ') secret.remove_prefix(1);
  while (!secret.empty() && secret.back() == ' ') secret.remove_suffix(1);
  auto who = tokens.authenticate(secret);
  if (!who) {
    x.res.set_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    x.error(401, "unauthorized", "invalid token");
    return std::nullopt;
  }
  return who;
}

void admin_server::impl::dispatch(const httplib::Request& req, httplib::Response& res) {
  exchange x{req, res};
  auto m = match(x);
  if (!m) return;
  const std::string_view method = req.method == "HEAD" ? std::string_view("GET") : std::string_view(req.method);
  if (std::find(m->methods.begin(), m->methods.end(), method) == m->methods.end()) {
    std::string allow;
    for (const std::string_view a : m->methods) allow += (allow.empty() ? "" : ", ") + std::string(a);
    res.set_header("Allow", allow);
    x.error(405, "method_not_allowed", fmt::format("{} is not allowed here; allowed: {}", req.method, allow));
    return;
  }
  switch (m->which) {
    case route::healthz:
      x.json(200, status_json("ok"));
      return;
    case route::readyz:
      if (ctl.ready()) {
        x.json(200, status_json("ready"));
      } else {
        x.error(503, "not_ready", "broker is not ready");
      }
      return;
    case route::metrics: {
      std::string text = ctl.metrics();
      if (!text.empty() && text.back() != '\n') text += '\n';
      text += fmt::format("# HELP switchboard_admin_requests_total Admin API responses by status class.\n"
                          "# TYPE switchboard_admin_requests_total counter\n");
      for (std::size_t i = 0; i < by_class.size(); ++i) {
        text += fmt::format("switchboard_admin_requests_total{{status=\"{}xx\"}} {}\n", i + 1, by_class[i].load());
      }
      res.status = 200;
      res.set_content(std::move(text), "text/plain; version=0.0.4; charset=utf-8");
      return;
    }
    default:
      break;
  }
  const auto who = authenticate(x);
  if (!who) return;
  switch (m->which) {
    case route::channels: get_channels(x, *who); return;
    case route::channel: channel(x, *who, m->name); return;
    case route::channel_events: channel_events(x, *who, m->name); return;
    case route::subscriptions:
    case route::subscription:
    case route::dead_letters:
    case route::dead_letter_redrive: {
      if (!who->admin) {
        x.error(403, "forbidden", fmt::format("token {} lacks the admin scope", auth::quote(who->name)));
        return;
      }
      if (who->tenant != "*") {
        x.error(403, "forbidden", fmt::format("tenant {} may not manage {}", auth::quote(who->tenant),
                                              m->which == route::subscriptions || m->which == route::subscription
                                                  ? "subscriptions" : "dead letters"));
        return;
      }
      if (m->which == route::subscriptions || m->which == route::subscription) {
        subscriptions(x, m->which, m->name);
      } else {
        dead_letters(x, m->which, m->name);
      }
      return;
    }
    default:
      return;
  }
}

void admin_server::impl::get_channels(exchange& x, const auth::principal& who) {
  auto list = ctl.list_channels();
  if (!list) return x.error(list.error());
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
  x.json(200, {buf.GetString(), buf.GetSize()});
}

void admin_server::impl::channel(exchange& x, const auth::principal& who, const std::string& name) {
  // A config may name a channel or a pattern.
  if (!router::validate_channel(name) && !router::validate_pattern(name)) {
    const bool looks_like_pattern = name.find_first_of("*>") != std::string::npos;
    const router::topic_error e =
        looks_like_pattern ? router::validate_pattern(name).error() : router::validate_channel(name).error();
    return x.error(400, e.code, e.message);
  }
  const std::string& method = x.req.method;
  if (method != "GET" && method != "HEAD" && !who.admin) {
    return x.error(403, "forbidden", fmt::format("token {} lacks the admin scope", auth::quote(who.name)));
  }
  if (auto ok = auth::may_use(who, name); !ok) return x.error(403, "forbidden", ok.error());

  std::expected<std::string, api_error> doc;
  if (method == "PUT") {
    doc = ctl.put_channel(name, x.req.body);
  } else if (method == "PATCH") {
    doc = ctl.patch_channel(name, x.req.body);
  } else if (method == "DELETE") {
    if (auto r = ctl.delete_channel(name); !r) return x.error(r.error());
    x.res.status = 204;
    return;
  } else {
    doc = ctl.get_channel(name);
  }
  if (!doc) return x.error(doc.error());
  x.json(200, std::move(*doc));
}

void admin_server::impl::channel_events(exchange& x, const auth::principal& who, const std::string& name) {
  if (auto v = router::validate_channel(name); !v) return x.error(400, v.error().code, v.error().message);
  const bool post = x.req.method == "POST";
  if (post ? !who.publish : !(who.subscribe || who.admin)) {
    return x.error(403, "forbidden", fmt::format("token {} lacks the {} scope", auth::quote(who.name),
                                                 post ? "publish" : "subscribe"));
  }
  if (auto ok = auth::may_use(who, name); !ok) return x.error(403, "forbidden", ok.error());

  if (post) {
    const std::string key = x.req.get_header_value("Idempotency-Key");
    if (key.size() > max_idempotency_key_bytes) {
      return x.error(400, "invalid_idempotency_key",
                     fmt::format("Idempotency-Key is {} bytes (limit {})", key.size(), max_idempotency_key_bytes));
    }
    if (auto ok = check_json(x.req.body); !ok) return x.error(400, "invalid_json", ok.error());
    auto r = ctl.publish(name, x.req.body, key, publish_timeout);
    if (!r) return x.error(r.error());
    return x.json(202, publish_json(*r));
  }

  std::uint64_t from_seq = 0;
  std::size_t limit = default_history_limit;
  if (x.req.has_param("from_seq")) {
    const auto v = parse_uint(x.req.get_param_value("from_seq"));
    if (!v) return x.error(400, "invalid_parameter", "from_seq must be a non-negative integer");
    from_seq = *v;
  }
  if (x.req.has_param("limit")) {
    const auto v = parse_uint(x.req.get_param_value("limit"));
    if (!v || *v == 0 || *v > max_history_limit) {
      return x.error(400, "invalid_parameter", fmt::format("limit must be an integer from 1 to {}", max_history_limit));
    }
    limit = static_cast<std::size_t>(*v);
  }
  auto page = ctl.history(name, from_seq, limit);
  if (!page) return x.error(page.error());

  thread_local simdjson::dom::parser parser;
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  write_key(w, "events");
  w.StartArray();
  for (const history_event& e : page->events) {
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
  w.Uint64(page->next_seq);
  write_key(w, "first_seq");
  w.Uint64(page->first_seq);
  w.EndObject();
  x.json(200, {buf.GetString(), buf.GetSize()});
}

void admin_server::impl::subscriptions(exchange& x, route r, const std::string& name) {
  const std::string& method = x.req.method;
  if (r == route::subscriptions && method == "POST") {
    if (auto ok = check_json(x.req.body); !ok) return x.error(400, "invalid_json", ok.error());
    auto doc = ctl.create_subscription(x.req.body);
    if (!doc) return x.error(doc.error());
    return x.json(201, std::move(*doc));
  }
  if (r == route::subscription && method == "DELETE") {
    if (auto ok = ctl.delete_subscription(name); !ok) return x.error(ok.error());
    x.res.status = 204;
    return;
  }
  auto doc = r == route::subscriptions ? ctl.list_subscriptions() : ctl.get_subscription(name);
  if (!doc) return x.error(doc.error());
  x.json(200, std::move(*doc));
}

void admin_server::impl::dead_letters(exchange& x, route r, const std::string& id) {
  if (r == route::dead_letters) {
    auto doc = ctl.list_dead_letters();
    if (!doc) return x.error(doc.error());
    return x.json(200, std::move(*doc));
  }
  auto res = ctl.redrive_dead_letter(id);
  if (!res) return x.error(res.error());
  x.json(202, publish_json(*res));
}

void admin_server::impl::install() {
  svr.new_task_queue = [] { return new numbered_pool(worker_threads); };
  svr.set_payload_max_length(opts.max_body_bytes);
  svr.set_keep_alive_timeout(2);
  const auto handler = [this](const httplib::Request& req, httplib::Response& res) { dispatch(req, res); };
  // Our own router (dispatch) decides 404/405, so every method sees every path.
  const std::string any = "[\\s\\S]*";
  svr.Get(any, handler);
  svr.Post(any, handler);
  svr.Put(any, handler);
  svr.Patch(any, handler);
  svr.Delete(any, handler);
  svr.Options(any, handler);
  // Errors httplib answers itself (413 before any handler, 400 malformed request, 414 …) get the JSON
  // error body too. Responses that already have a body are ours.
  svr.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    exchange x{req, res};
    switch (res.status) {
      case 413:
        x.error(413, "payload_too_large", fmt::format("request body exceeds {} bytes", opts.max_body_bytes));
        break;
      case 404:
        x.error(404, "not_found", "no such endpoint");
        break;
      case 414:
        x.error(414, "uri_too_long", "request URI is too long");
        break;
      default:
        x.error(res.status, res.status >= 500 ? "internal_error" : "bad_request",
                res.status == 400 ? std::string("malformed HTTP request (a body needs Content-Length or chunked "
                                                "encoding; send Content-Length: 0 for none)")
                                  : fmt::format("HTTP {}", res.status));
        break;
    }
    return httplib::Server::HandlerResponse::Handled;
  }));
  svr.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("admin {} {}: handler threw: {}", req.method, auth::quote(req.path), what);
    res.status = 500;
    res.set_content(error_json("internal_error", "internal error"), json_type);
  });
  svr.set_logger([this](const httplib::Request&, const httplib::Response& res) {
    if (res.status >= 100 && res.status <= 599) by_class[static_cast<std::size_t>(res.status / 100 - 1)]++;
  });
}

std::expected<std::unique_ptr<admin_server>, std::string> admin_server::start(admin_options opts,
                                                                              const auth::token_table& tokens,
                                                                              control& ctl) {
  auto p = std::make_unique<impl>(std::move(opts), tokens, ctl);
  p->install();
  const std::string& host = p->opts.bind;
  if (p->opts.port == 0) {
    const int port = p->svr.bind_to_any_port(host);
    if (port <= 0) return std::unexpected(fmt::format("admin API cannot listen on {} (any port)", host));
    p->bound_port = static_cast<std::uint16_t>(port);
  } else {
    if (!p->svr.bind_to_port(host, p->opts.port)) {
      return std::unexpected(fmt::format("admin API cannot listen on {}:{} (in use or not a local address)", host,
                                         p->opts.port));
    }
    p->bound_port = p->opts.port;
  }
  impl* raw = p.get();
  p->listener = std::thread([raw] {
    raw->svr.listen_after_bind();
    raw->listener_done = true;
  });
  // Return only once the accept loop runs, so that stop() always finds it running.
  while (!raw->svr.is_running() && !raw->listener_done) std::this_thread::yield();
  if (raw->listener_done) {
    raw->listener.join();
    return std::unexpected(fmt::format("admin API on {}:{} stopped at start-up", host, raw->bound_port));
  }
  spdlog::info("admin API listening on {}:{} ({} workers, auth {})", host, raw->bound_port, worker_threads,
               raw->tokens.open() ? "off" : "on");
  return std::unique_ptr<admin_server>(new admin_server(std::move(p)));
}

admin_server::admin_server(std::unique_ptr<impl> p) : _impl(std::move(p)) {}

admin_server::~admin_server() { stop(); }

std::uint16_t admin_server::port() const noexcept { return _impl->bound_port; }

std::string admin_server::url() const {
  std::string host = _impl->opts.bind;
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return fmt::format("http://{}:{}", host, _impl->bound_port);
}

std::string admin_server::metrics_text() const {
  std::string text;
  for (std::size_t i = 0; i < _impl->by_class.size(); ++i) {
    text += fmt::format("switchboard_admin_requests_total{{status=\"{}xx\"}} {}\n", i + 1, _impl->by_class[i].load());
  }
  return text;
}

void admin_server::stop() {
  const std::lock_guard lock(_impl->stop_mutex);
  if (_impl->stopped) return;
  _impl->stopped = true;
  _impl->svr.stop();
  if (_impl->listener.joinable()) _impl->listener.join();
}

}  // namespace switchboard::admin
