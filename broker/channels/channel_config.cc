// Channel config: parsing (simdjson DOM), validation, JSON writing (rapidjson Writer) and PATCH
// merging. Contracts and the exact error messages are documented in channel_config.h.
#include "broker/channels/channel_config.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <span>
#include <utility>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>

#include "broker/pipeline/translate.h"
#include "broker/pipeline/validate.h"
#include "broker/router/topic.h"

namespace switchboard::channels {
namespace {

namespace dom = simdjson::dom;
using std::chrono::milliseconds;

constexpr std::array<std::string_view, attribute_count> attribute_names = {
    "durable",   "retention", "slow_consumer", "conflate_key", "dedupe_window",
    "max_payload_bytes", "permissions", "validate", "translate", "delegate",
    "route",     "webhook",   "publish_to_parent", "order",
};
constexpr std::array<std::string_view, 4> slow_consumer_names = {"disconnect", "drop_oldest", "conflate", "spill"};
// The attribute names a config may use: every attribute, and `schema`, the older name of `validate`.
constexpr std::array<std::string_view, attribute_count + 1> accepted_names = {
    "durable",   "retention", "slow_consumer", "conflate_key", "dedupe_window",
    "max_payload_bytes", "permissions", "validate", "translate", "delegate",
    "route",     "webhook",   "publish_to_parent", "order", "schema",
};
constexpr std::array<std::string_view, 2> delegate_mode_names = {"sequential", "parallel"};
constexpr std::array<std::string_view, 3> failure_policy_names = {"pass", "drop", "dead_letter"};
constexpr std::array<std::string_view, 6> stage_names = {"validate", "translate", "delegate",
                                                        "route",    "webhook",   "publish_to_parent"};

constexpr std::string_view duration_hint =
    "must be a duration (non-negative integer seconds or a string such as \"500ms\", \"90s\", \"30m\", \"24h\")";

constexpr char hex_digits[] = "0123456789abcdef";

using router::quote_name;

std::string joined(std::span<const std::string_view> names) {
  std::string out;
  for (const std::string_view n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

std::unexpected<config_error> invalid(std::string_view path, std::string_view what) {
  return std::unexpected(config_error{422, "invalid_attribute", "attribute " + quote_name(path) + " " + std::string(what)});
}

std::unexpected<config_error> one_of(std::string_view path, std::span<const std::string_view> names) {
  return invalid(path, "must be one of " + joined(names));
}

std::unexpected<config_error> invalid_json(std::string message) {
  return std::unexpected(config_error{400, "invalid_json", std::move(message)});
}

template <std::size_t N>
std::optional<std::size_t> index_of(const std::array<std::string_view, N>& names, std::string_view name) {
  const auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end()) return std::nullopt;
  return static_cast<std::size_t>(it - names.begin());
}

// ---------------------------------------------------------------------------------------------
// Locating a syntax error. simdjson says *whether* a document is valid; this RFC 8259 scanner says
// *where* the first problem is. It is only run on documents simdjson rejected.

class syntax_locator {
 public:
  explicit syntax_locator(std::string_view s) : _s(s) {}

  // The 0-based offset and reason of the first grammar error, or nullopt if the grammar holds
  // (then simdjson rejected something else: a number out of range, say).
  std::optional<std::pair<std::size_t, std::string>> run() {
    skip_ws();
    if (value(0)) {
      skip_ws();
      if (_i < _s.size()) fail("unexpected " + describe(_i) + " after the JSON value");
    }
    return _error;
  }

 private:
  static constexpr int max_depth = 1024;  // simdjson's default

  bool fail(std::string reason) {
    if (!_error) _error.emplace(_i, std::move(reason));
    return false;
  }
  std::string describe(std::size_t i) const {
    const auto b = static_cast<unsigned char>(_s[i]);
    if (b > 0x20 && b < 0x7f) return std::string("character '") + _s[i] + "'";
    return std::string("byte 0x") + hex_digits[b >> 4] + hex_digits[b & 0xf];
  }
  bool at_end() const { return _i >= _s.size(); }
  bool unexpected() { return fail(at_end() ? std::string("unexpected end of input") : "unexpected " + describe(_i)); }
  void skip_ws() {
    while (!at_end() && (_s[_i] == ' ' || _s[_i] == '\t' || _s[_i] == '\n' || _s[_i] == '\r')) ++_i;
  }

  bool value(int depth) {
    if (at_end()) return unexpected();
    switch (_s[_i]) {
      case '{': return object(depth + 1);
      case '[': return array(depth + 1);
      case '"': return string();
      case 't': return literal("true");
      case 'f': return literal("false");
      case 'n': return literal("null");
      default:
        if (_s[_i] == '-' || (_s[_i] >= '0' && _s[_i] <= '9')) return number();
        return unexpected();
    }
  }

  bool literal(std::string_view word) {
    for (const char c : word) {
      if (at_end() || _s[_i] != c) return unexpected();
      ++_i;
    }
    return true;
  }

  bool digits() {
    if (at_end() || _s[_i] < '0' || _s[_i] > '9') return unexpected();
    while (!at_end() && _s[_i] >= '0' && _s[_i] <= '9') ++_i;
    return true;
  }

  bool number() {
    if (_s[_i] == '-') ++_i;
    if (!at_end() && _s[_i] == '0') {
      ++_i;
    } else if (!digits()) {
      return false;
    }
    if (!at_end() && _s[_i] == '.') {
      ++_i;
      if (!digits()) return false;
    }
    if (!at_end() && (_s[_i] == 'e' || _s[_i] == 'E')) {
      ++_i;
      if (!at_end() && (_s[_i] == '+' || _s[_i] == '-')) ++_i;
      if (!digits()) return false;
    }
    return true;
  }

  bool hex4() {
    for (int k = 0; k < 4; ++k, ++_i) {
      if (at_end() || !std::isxdigit(static_cast<unsigned char>(_s[_i]))) return fail("invalid \\u escape");
    }
    return true;
  }

  // One UTF-8 sequence starting at _i (a byte >= 0x80); RFC 3629 ranges.
  bool utf8() {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(_s[_i + k]); };
    const unsigned char lead = b(0);
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) {
      len = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      len = 3;
      if (lead == 0xe0) lo = 0xa0;
      if (lead == 0xed) hi = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      len = 4;
      if (lead == 0xf0) lo = 0x90;
      if (lead == 0xf4) hi = 0x8f;
    } else {
      return fail("invalid UTF-8");
    }
    if (_i + len > _s.size()) return fail("invalid UTF-8");
    if (b(1) < lo || b(1) > hi) return fail("invalid UTF-8");
    for (std::size_t k = 2; k < len; ++k) {
      if (b(k) < 0x80 || b(k) > 0xbf) return fail("invalid UTF-8");
    }
    _i += len;
    return true;
  }

  bool string() {
    ++_i;  // opening quote
    for (;;) {
      if (at_end()) return fail("unterminated string");
      const auto c = static_cast<unsigned char>(_s[_i]);
      if (c == '"') {
        ++_i;
        return true;
      }
      if (c < 0x20) return fail("control character in a string");
      if (c == '\\') {
        ++_i;
        if (at_end()) return fail("unterminated string");
        const char e = _s[_i];
        if (e == 'u') {
          ++_i;
          if (!hex4()) return false;
        } else if (std::string_view("\"\\/bfnrt").find(e) != std::string_view::npos) {
          ++_i;
        } else {
          return fail("invalid escape sequence");
        }
      } else if (c >= 0x80) {
        if (!utf8()) return false;
      } else {
        ++_i;
      }
    }
  }

  bool object(int depth) {
    if (depth > max_depth) return fail("nesting deeper than 1024 levels");
    ++_i;  // {
    skip_ws();
    if (!at_end() && _s[_i] == '}') {
      ++_i;
      return true;
    }
    for (;;) {
      if (at_end() || _s[_i] != '"') return at_end() ? unexpected() : fail("expected a string key");
      if (!string()) return false;
      skip_ws();
      if (at_end() || _s[_i] != ':') return at_end() ? unexpected() : fail("expected ':' after an object key");
      ++_i;
      skip_ws();
      if (!value(depth)) return false;
      skip_ws();
      if (at_end()) return unexpected();
      if (_s[_i] == '}') {
        ++_i;
        return true;
      }
      if (_s[_i] != ',') return fail("expected ',' or '}'");
      ++_i;
      skip_ws();
    }
  }

  bool array(int depth) {
    if (depth > max_depth) return fail("nesting deeper than 1024 levels");
    ++_i;  // [
    skip_ws();
    if (!at_end() && _s[_i] == ']') {
      ++_i;
      return true;
    }
    for (;;) {
      if (!value(depth)) return false;
      skip_ws();
      if (at_end()) return unexpected();
      if (_s[_i] == ']') {
        ++_i;
        return true;
      }
      if (_s[_i] != ',') return fail("expected ',' or ']'");
      ++_i;
      skip_ws();
    }
  }

  std::string_view _s;
  std::size_t _i = 0;
  std::optional<std::pair<std::size_t, std::string>> _error;
};

// ---------------------------------------------------------------------------------------------
// Typed readers. Each returns the value or the invalid_attribute error naming `path`.

std::string join_path(std::string_view prefix, std::string_view key) {
  if (prefix.empty()) return std::string(key);
  std::string out(prefix);
  out += '.';
  out += key;
  return out;
}

std::expected<bool, config_error> read_bool(dom::element el, std::string_view path) {
  bool v = false;
  if (el.get(v) != simdjson::SUCCESS) return invalid(path, "must be a boolean");
  return v;
}

std::expected<std::uint64_t, config_error> read_uint(dom::element el, std::string_view path) {
  if (el.type() == dom::element_type::INT64) {
    std::int64_t v = 0;
    if (el.get(v) == simdjson::SUCCESS && v >= 0) return static_cast<std::uint64_t>(v);
  } else if (el.type() == dom::element_type::UINT64) {
    std::uint64_t v = 0;
    if (el.get(v) == simdjson::SUCCESS) return v;
  }
  return invalid(path, "must be a non-negative integer");
}

enum class duration_problem : std::uint8_t { syntax, overflow };

std::expected<milliseconds, duration_problem> duration_from_text(std::string_view text) noexcept {
  std::size_t i = 0;
  std::uint64_t n = 0;
  constexpr auto max_ms = static_cast<std::uint64_t>(std::numeric_limits<milliseconds::rep>::max());
  bool overflow = false;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    const auto d = static_cast<std::uint64_t>(text[i] - '0');
    if (n > (max_ms - d) / 10) overflow = true;
    else n = n * 10 + d;
    ++i;
  }
  if (i == 0) return std::unexpected(duration_problem::syntax);
  const std::string_view unit = text.substr(i);
  std::uint64_t scale = 0;
  if (unit == "ms") scale = 1;
  else if (unit == "s") scale = 1000;
  else if (unit == "m") scale = 60'000;
  else if (unit == "h") scale = 3'600'000;
  else if (unit == "d") scale = 86'400'000;
  else return std::unexpected(duration_problem::syntax);
  if (overflow || n > max_ms / scale) return std::unexpected(duration_problem::overflow);
  return milliseconds(static_cast<milliseconds::rep>(n * scale));
}

std::expected<milliseconds, config_error> read_duration(dom::element el, std::string_view path) {
  switch (el.type()) {
    case dom::element_type::INT64: {
      std::int64_t v = 0;
      if (el.get(v) != simdjson::SUCCESS || v < 0) return invalid(path, duration_hint);
      if (v > std::numeric_limits<milliseconds::rep>::max() / 1000) return invalid(path, "is out of range");
      return milliseconds(v * 1000);
    }
    case dom::element_type::UINT64:
      return invalid(path, "is out of range");
    case dom::element_type::STRING: {
      std::string_view text;
      if (el.get(text) != simdjson::SUCCESS) return invalid(path, duration_hint);
      const auto d = duration_from_text(text);
      if (d) return *d;
      return invalid(path, d.error() == duration_problem::overflow ? std::string_view("is out of range") : duration_hint);
    }
    default:
      return invalid(path, duration_hint);
  }
}

std::expected<std::string, config_error> read_string(dom::element el, std::string_view path, bool non_empty) {
  std::string_view v;
  if (el.get(v) != simdjson::SUCCESS || (non_empty && v.empty())) {
    return invalid(path, non_empty ? "must be a non-empty string" : "must be a string");
  }
  return std::string(v);
}

std::expected<std::vector<std::string>, config_error> read_names(dom::element el, std::string_view path) {
  dom::array arr;
  if (el.get(arr) != simdjson::SUCCESS) return invalid(path, "must be an array of non-empty strings");
  std::vector<std::string> out;
  for (const dom::element item : arr) {
    std::string_view v;
    if (item.get(v) != simdjson::SUCCESS || v.empty()) return invalid(path, "must be an array of non-empty strings");
    out.emplace_back(v);
  }
  return out;
}

template <std::size_t N>
std::expected<std::size_t, config_error> read_enum(dom::element el, std::string_view path,
                                                   const std::array<std::string_view, N>& names) {
  std::string_view v;
  if (el.get(v) == simdjson::SUCCESS) {
    if (const auto i = index_of(names, v)) return *i;
  }
  return one_of(path, names);
}

// Calls on_member(key, path, value) for each member of `el` (which must be an object), rejecting
// keys not in `known` and repeated keys.
template <typename F>
std::expected<void, config_error> each_member(dom::element el, std::string_view path,
                                              std::span<const std::string_view> known, F&& on_member) {
  dom::object obj;
  if (el.get(obj) != simdjson::SUCCESS) return invalid(path, "must be an object");
  std::vector<std::string_view> seen;
  for (const dom::key_value_pair member : obj) {
    const std::string member_path = join_path(path, member.key);
    if (std::find(known.begin(), known.end(), member.key) == known.end()) {
      return std::unexpected(config_error{422, "unknown_attribute", "unknown attribute " + quote_name(member_path)});
    }
    if (std::find(seen.begin(), seen.end(), member.key) != seen.end()) {
      return invalid(member_path, "appears more than once");
    }
    seen.push_back(member.key);
    if (auto r = on_member(member.key, member_path, member.value); !r) return r;
  }
  return {};
}

template <typename T, typename U>
std::expected<void, config_error> assign_to(T& slot, std::expected<U, config_error> r) {
  if (!r) return std::unexpected(std::move(r.error()));
  slot = std::move(*r);
  return {};
}

std::expected<retention_policy, config_error> read_retention(dom::element el) {
  static constexpr std::array<std::string_view, 3> known = {"max_age", "max_events", "max_bytes"};
  retention_policy out;
  auto r = each_member(el, "retention", known,
                       [&](std::string_view key, const std::string& path, dom::element v) -> std::expected<void, config_error> {
                         if (key == "max_age") return assign_to(out.max_age, read_duration(v, path));
                         if (key == "max_events") return assign_to(out.max_events, read_uint(v, path));
                         return assign_to(out.max_bytes, read_uint(v, path));
                       });
  if (!r) return std::unexpected(std::move(r.error()));
  return out;
}

std::expected<permission_lists, config_error> read_permissions(dom::element el) {
  static constexpr std::array<std::string_view, 2> known = {"publish", "subscribe"};
  permission_lists out;
  auto r = each_member(el, "permissions", known,
                       [&](std::string_view key, const std::string& path, dom::element v) {
                         return assign_to(key == "publish" ? out.publish : out.subscribe, read_names(v, path));
                       });
  if (!r) return std::unexpected(std::move(r.error()));
  return out;
}

// A pipeline spec error as a channel attribute error (same message; `unknown …` keeps its code).
std::unexpected<config_error> spec_error(const pipeline::error& e) {
  const bool unknown = e.message.starts_with("unknown ");
  return std::unexpected(config_error{422, unknown ? "unknown_attribute" : "invalid_attribute", e.message});
}

std::expected<validate_spec, config_error> read_validate(dom::element el, std::string_view name) {
  std::string json = simdjson::minify(el);
  if (auto ok = pipeline::validate_spec::compile(json, name); !ok) return spec_error(ok.error());
  return validate_spec{std::move(json)};
}

std::expected<translate_spec, config_error> read_translate(dom::element el) {
  if (!el.is_object()) return invalid("translate", "must be an object");
  std::string json = simdjson::minify(el);
  if (auto ok = pipeline::translate_spec::compile(json, "translate"); !ok) return spec_error(ok.error());
  return translate_spec{std::move(json)};
}

bool is_http_url(std::string_view url) {
  return (url.starts_with("http://") && url.size() > 7) || (url.starts_with("https://") && url.size() > 8);
}

std::expected<std::string, config_error> read_url(dom::element el, std::string_view path) {
  auto url = read_string(el, path, true);
  if (!url) return url;
  if (!is_http_url(*url)) return invalid(path, "must be an http:// or https:// URL");
  return url;
}

std::expected<std::uint64_t, config_error> read_bounded(dom::element el, std::string_view path, std::uint64_t lo,
                                                         std::uint64_t hi) {
  auto v = read_uint(el, path);
  if (v && (*v < lo || *v > hi)) return invalid(path, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return v;
}

std::expected<delegate_spec, config_error> read_delegate(dom::element el) {
  static constexpr std::array<std::string_view, 5> known = {"uris", "mode", "timeout_ms", "on_failure", "secret"};
  delegate_spec out;
  bool have_uris = false;
  auto r = each_member(el, "delegate", known,
                       [&](std::string_view key, const std::string& path, dom::element v) -> std::expected<void, config_error> {
                         if (key == "uris") {
                           have_uris = true;
                           if (auto names = read_names(v, path); !names) return std::unexpected(std::move(names.error()));
                           dom::array arr = v.get_array().value_unsafe();
                           std::size_t i = 0;
                           for (const dom::element item : arr) {
                             auto url = read_url(item, path + "[" + std::to_string(i++) + "]");
                             if (!url) return std::unexpected(std::move(url.error()));
                             out.uris.push_back(std::move(*url));
                           }
                           if (out.uris.empty()) return invalid(path, "must not be empty");
                           return {};
                         }
                         if (key == "timeout_ms") return assign_to(out.timeout_ms, read_bounded(v, path, 1, 60'000));
                         if (key == "secret") return assign_to(out.secret, read_string(v, path, false));
                         if (key == "on_failure") {
                           auto p = read_enum(v, path, failure_policy_names);
                           if (!p) return std::unexpected(std::move(p.error()));
                           out.on_failure = static_cast<failure_policy>(*p);
                           return {};
                         }
                         auto mode = read_enum(v, path, delegate_mode_names);
                         if (!mode) return std::unexpected(std::move(mode.error()));
                         out.mode = static_cast<delegate_mode>(*mode);
                         return {};
                       });
  if (!r) return std::unexpected(std::move(r.error()));
  if (!have_uris) return invalid("delegate.uris", "is required");
  return out;
}

std::expected<webhook_sink, config_error> read_sink(dom::element el, const std::string& at) {
  static constexpr std::array<std::string_view, 6> known = {"name", "url", "secret", "headers", "max_in_flight",
                                                            "timeout_ms"};
  webhook_sink out;
  auto r = each_member(
      el, at, known, [&](std::string_view key, const std::string& path, dom::element v) -> std::expected<void, config_error> {
        if (key == "name") return assign_to(out.name, read_string(v, path, true));
        if (key == "url") return assign_to(out.url, read_url(v, path));
        if (key == "secret") return assign_to(out.secret, read_string(v, path, false));
        if (key == "max_in_flight") return assign_to(out.max_in_flight, read_bounded(v, path, 1, 1024));
        if (key == "timeout_ms") return assign_to(out.timeout_ms, read_bounded(v, path, 1, 300'000));
        dom::object headers;
        if (v.get(headers) != simdjson::SUCCESS) return invalid(path, "must be an object of header names to strings");
        for (const dom::key_value_pair h : headers) {
          std::string_view value;
          const std::string hpath = join_path(path, h.key);
          if (h.key.empty() || h.key.find_first_of(" :\r\n\t") != std::string_view::npos) {
            return invalid(hpath, "is not a valid header name");
          }
          if (h.value.get(value) != simdjson::SUCCESS || value.find_first_of("\r\n") != std::string_view::npos) {
            return invalid(hpath, "must be a string without line breaks");
          }
          out.headers.emplace_back(std::string(h.key), std::string(value));
        }
        return {};
      });
  if (!r) return std::unexpected(std::move(r.error()));
  if (out.name.empty()) return invalid(at + ".name", "is required");
  if (out.url.empty()) return invalid(at + ".url", "is required");
  return out;
}

// An array of sinks; the older form {"uris": [...], "secret": …} is read as sinks named "0", "1", ….
std::expected<webhook_spec, config_error> read_webhook(dom::element el) {
  webhook_spec out;
  dom::array arr;
  if (el.is_object()) {
    static constexpr std::array<std::string_view, 2> known = {"uris", "secret"};
    std::optional<std::vector<std::string>> uris_given;
    std::optional<std::string> secret;
    auto r = each_member(el, "webhook", known,
                         [&](std::string_view key, const std::string& path, dom::element v) -> std::expected<void, config_error> {
                           if (key == "uris") return assign_to(uris_given, read_names(v, path));
                           return assign_to(secret, read_string(v, path, false));
                         });
    if (!r) return std::unexpected(std::move(r.error()));
    if (!uris_given) return invalid("webhook.uris", "is required");
    const auto& uris = *uris_given;
    for (std::size_t i = 0; i < uris.size(); ++i) {
      if (!is_http_url(uris[i])) return invalid("webhook.uris[" + std::to_string(i) + "]", "must be an http:// or https:// URL");
      out.sinks.push_back(webhook_sink{.name = std::to_string(i), .url = uris[i], .secret = secret, .headers = {},
                                       .max_in_flight = std::nullopt, .timeout_ms = std::nullopt});
    }
    return out;
  }
  if (el.get(arr) != simdjson::SUCCESS) return invalid("webhook", "must be an array of sinks");
  for (const dom::element item : arr) {
    const std::string at = "webhook[" + std::to_string(out.sinks.size()) + "]";
    auto sink = read_sink(item, at);
    if (!sink) return std::unexpected(std::move(sink.error()));
    for (const auto& other : out.sinks) {
      if (other.name == sink->name) return invalid(at + ".name", "repeats sink " + quote_name(sink->name));
    }
    out.sinks.push_back(std::move(*sink));
  }
  return out;
}

std::expected<std::vector<std::string>, config_error> read_route(dom::element el) {
  dom::array arr;
  if (el.get(arr) != simdjson::SUCCESS) return invalid("route", "must be an array");
  std::vector<std::string> out;
  for (const dom::element item : arr) {
    const std::string path = "route[" + std::to_string(out.size()) + "]";
    std::string_view name;
    if (item.get(name) != simdjson::SUCCESS) return invalid(path, "must be a channel name");
    if (auto ok = router::validate_channel(name); !ok) {
      return invalid(path, "must be a channel name: " + ok.error().message);
    }
    out.emplace_back(name);
  }
  return out;
}

std::expected<void, config_error> check_order(const std::vector<stage>& order) {
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (std::find(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(i), order[i]) !=
        order.begin() + static_cast<std::ptrdiff_t>(i)) {
      return invalid("order[" + std::to_string(i) + "]", "repeats stage " + quote_name(to_string(order[i])));
    }
  }
  return {};
}

std::expected<std::vector<stage>, config_error> read_order(dom::element el) {
  dom::array arr;
  if (el.get(arr) != simdjson::SUCCESS) return invalid("order", "must be an array");
  std::vector<stage> out;
  for (const dom::element item : arr) {
    auto s = read_enum(item, "order[" + std::to_string(out.size()) + "]", stage_names);
    if (!s) return std::unexpected(std::move(s.error()));
    out.push_back(static_cast<stage>(*s));
    if (auto r = check_order(out); !r) return std::unexpected(std::move(r.error()));
  }
  return out;
}

std::expected<void, config_error> read_attribute(channel_config& c, attribute a, dom::element v,
                                                 const std::string& path) {
  switch (a) {
    case attribute::durable: return assign_to(c.durable, read_bool(v, path));
    case attribute::retention: return assign_to(c.retention, read_retention(v));
    case attribute::slow_consumer: {
      auto p = read_enum(v, path, slow_consumer_names);
      if (!p) return std::unexpected(std::move(p.error()));
      c.slow_consumer = static_cast<slow_consumer_policy>(*p);
      return {};
    }
    case attribute::conflate_key: return assign_to(c.conflate_key, read_string(v, path, true));
    case attribute::dedupe_window: return assign_to(c.dedupe_window, read_duration(v, path));
    case attribute::max_payload_bytes: return assign_to(c.max_payload_bytes, read_uint(v, path));
    case attribute::permissions: return assign_to(c.permissions, read_permissions(v));
    case attribute::validate: return assign_to(c.validate, read_validate(v, path));
    case attribute::translate: return assign_to(c.translate, read_translate(v));
    case attribute::delegate: return assign_to(c.delegate, read_delegate(v));
    case attribute::route: return assign_to(c.route, read_route(v));
    case attribute::webhook: return assign_to(c.webhook, read_webhook(v));
    case attribute::publish_to_parent: return assign_to(c.publish_to_parent, read_bool(v, path));
    case attribute::order: return assign_to(c.order, read_order(v));
  }
  std::unreachable();
}

// A JSON null outside a patch (or a typed config with `cleared` bits where none may be).
std::unexpected<config_error> null_in_full_mode(attribute a) {
  return invalid(attribute_name(a), "is null; null unsets an attribute only in a patch");
}

// Applies `f` to the member for attribute `a` of each config in `cs` (all the same attribute).
template <typename F, typename... C>
decltype(auto) with_member(attribute a, F&& f, C&... cs) {
  switch (a) {
    case attribute::durable: return f(cs.durable...);
    case attribute::retention: return f(cs.retention...);
    case attribute::slow_consumer: return f(cs.slow_consumer...);
    case attribute::conflate_key: return f(cs.conflate_key...);
    case attribute::dedupe_window: return f(cs.dedupe_window...);
    case attribute::max_payload_bytes: return f(cs.max_payload_bytes...);
    case attribute::permissions: return f(cs.permissions...);
    case attribute::validate: return f(cs.validate...);
    case attribute::translate: return f(cs.translate...);
    case attribute::delegate: return f(cs.delegate...);
    case attribute::route: return f(cs.route...);
    case attribute::webhook: return f(cs.webhook...);
    case attribute::publish_to_parent: return f(cs.publish_to_parent...);
    case attribute::order: return f(cs.order...);
  }
  std::unreachable();
}

// ---------------------------------------------------------------------------------------------
// Writing.

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write_string(json_writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
void write_key(json_writer& w, std::string_view s) { w.Key(s.data(), static_cast<rapidjson::SizeType>(s.size())); }
void write_names(json_writer& w, const std::vector<std::string>& names) {
  w.StartArray();
  for (const std::string& n : names) write_string(w, n);
  w.EndArray();
}

void write_value(json_writer& w, bool v) { w.Bool(v); }
void write_value(json_writer& w, std::uint64_t v) { w.Uint64(v); }
void write_value(json_writer& w, milliseconds v) { write_string(w, format_duration(v)); }
void write_value(json_writer& w, const std::string& v) { write_string(w, v); }
void write_value(json_writer& w, slow_consumer_policy v) { write_string(w, to_string(v)); }
void write_value(json_writer& w, const std::vector<std::string>& v) { write_names(w, v); }
void write_value(json_writer& w, const std::vector<stage>& v) {
  w.StartArray();
  for (const stage s : v) write_string(w, to_string(s));
  w.EndArray();
}
void write_value(json_writer& w, const retention_policy& v) {
  w.StartObject();
  if (v.max_age) {
    write_key(w, "max_age");
    write_value(w, *v.max_age);
  }
  if (v.max_events) {
    write_key(w, "max_events");
    w.Uint64(*v.max_events);
  }
  if (v.max_bytes) {
    write_key(w, "max_bytes");
    w.Uint64(*v.max_bytes);
  }
  w.EndObject();
}
void write_value(json_writer& w, const permission_lists& v) {
  w.StartObject();
  write_key(w, "publish");
  write_names(w, v.publish);
  write_key(w, "subscribe");
  write_names(w, v.subscribe);
  w.EndObject();
}
void write_value(json_writer& w, const validate_spec& v) {
  w.RawValue(v.json.data(), v.json.size(), rapidjson::kObjectType);
}
void write_value(json_writer& w, const translate_spec& v) {
  w.RawValue(v.json.data(), v.json.size(), rapidjson::kObjectType);
}
void write_value(json_writer& w, const delegate_spec& v) {
  w.StartObject();
  write_key(w, "uris");
  write_names(w, v.uris);
  write_key(w, "mode");
  write_string(w, to_string(v.mode));
  if (v.timeout_ms) {
    write_key(w, "timeout_ms");
    w.Uint64(*v.timeout_ms);
  }
  write_key(w, "on_failure");
  write_string(w, failure_policy_names[static_cast<std::size_t>(v.on_failure)]);
  if (v.secret) {
    write_key(w, "secret");
    write_string(w, *v.secret);
  }
  w.EndObject();
}
void write_value(json_writer& w, const webhook_spec& v) {
  w.StartArray();
  for (const auto& sink : v.sinks) {
    w.StartObject();
    write_key(w, "name");
    write_string(w, sink.name);
    write_key(w, "url");
    write_string(w, sink.url);
    if (sink.secret) {
      write_key(w, "secret");
      write_string(w, *sink.secret);
    }
    if (!sink.headers.empty()) {
      write_key(w, "headers");
      w.StartObject();
      for (const auto& [name, value] : sink.headers) {
        write_key(w, name);
        write_string(w, value);
      }
      w.EndObject();
    }
    if (sink.max_in_flight) {
      write_key(w, "max_in_flight");
      w.Uint64(*sink.max_in_flight);
    }
    if (sink.timeout_ms) {
      write_key(w, "timeout_ms");
      w.Uint64(*sink.timeout_ms);
    }
    w.EndObject();
  }
  w.EndArray();
}

bool has_empty(const std::vector<std::string>& names) {
  return std::any_of(names.begin(), names.end(), [](const std::string& n) { return n.empty(); });
}

bool contains_name(const std::vector<std::string>& names, std::string_view principal) noexcept {
  return std::any_of(names.begin(), names.end(),
                     [&](const std::string& n) { return n == "*" || n == principal; });
}

}  // namespace

std::string_view attribute_name(attribute a) noexcept { return attribute_names[static_cast<std::size_t>(a)]; }

std::optional<attribute> attribute_from_name(std::string_view name) noexcept {
  if (const auto i = index_of(attribute_names, name)) return static_cast<attribute>(*i);
  return std::nullopt;
}

std::string_view to_string(slow_consumer_policy p) noexcept { return slow_consumer_names[static_cast<std::size_t>(p)]; }
std::string_view to_string(delegate_mode m) noexcept { return delegate_mode_names[static_cast<std::size_t>(m)]; }
std::string_view to_string(stage s) noexcept { return stage_names[static_cast<std::size_t>(s)]; }

std::vector<stage> default_stage_order() {
  return {stage::validate, stage::delegate, stage::translate, stage::route, stage::webhook, stage::publish_to_parent};
}

bool permission_lists::may_publish(std::string_view principal) const noexcept {
  return contains_name(publish, principal);
}
bool permission_lists::may_subscribe(std::string_view principal) const noexcept {
  return contains_name(subscribe, principal);
}

bool channel_config::has(attribute a) const noexcept {
  return with_member(a, [](const auto& m) { return m.has_value(); }, *this);
}

void channel_config::reset(attribute a) noexcept {
  with_member(a, [](auto& m) { m.reset(); }, *this);
  cleared.reset(static_cast<std::size_t>(a));
}

void channel_config::assign(attribute a, const channel_config& from) {
  with_member(a, [](auto& to, const auto& src) { to = src; }, *this, from);
}

bool channel_config::empty() const noexcept {
  for (std::size_t i = 0; i < attribute_count; ++i) {
    if (has(static_cast<attribute>(i))) return false;
  }
  return cleared.none();
}

std::optional<milliseconds> parse_duration(std::string_view text) noexcept {
  const auto d = duration_from_text(text);
  if (!d) return std::nullopt;
  return *d;
}

std::string format_duration(milliseconds d) {
  const auto ms = d.count();
  if (ms == 0) return "0s";
  static constexpr std::array<std::pair<std::int64_t, std::string_view>, 4> units = {
      {{86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}}};
  for (const auto& [scale, unit] : units) {
    if (ms % scale == 0) return std::to_string(ms / scale) + std::string(unit);
  }
  return std::to_string(ms) + "ms";
}

std::expected<channel_config, config_error> parse_config(std::string_view json, parse_mode mode) {
  dom::parser parser;  // per call: parsing configs is rare (admin API, start-up), threads share nothing
  dom::element root;
  if (const auto err = parser.parse(json.data(), json.size(), true).get(root); err != simdjson::SUCCESS) {
    if (auto where = syntax_locator(json).run()) {
      return invalid_json("invalid JSON at byte " + std::to_string(where->first) + ": " + where->second);
    }
    return invalid_json(std::string("invalid JSON: ") + simdjson::error_message(err));
  }
  if (!root.is_object()) return invalid_json("config must be a JSON object");

  channel_config config;
  bool named_validate = false;
  auto r = each_member(root, "", accepted_names,
                       [&](std::string_view key, const std::string& path, dom::element v) -> std::expected<void, config_error> {
                         const attribute a = key == "schema" ? attribute::validate : *attribute_from_name(key);
                         if (a == attribute::validate) {
                           if (named_validate) {
                             return invalid(key, "repeats \"validate\" (\"schema\" is its older name): give one");
                           }
                           named_validate = true;
                         }
                         if (v.is_null()) {
                           if (mode == parse_mode::full) return null_in_full_mode(a);
                           config.cleared.set(static_cast<std::size_t>(a));
                           return {};
                         }
                         return read_attribute(config, a, v, path);
                       });
  if (!r) return std::unexpected(std::move(r.error()));
  if (mode == parse_mode::full) {
    if (auto ok = validate_config(config); !ok) return std::unexpected(std::move(ok.error()));
  }
  return config;
}

std::expected<void, config_error> validate_config(const channel_config& c) {
  for (std::size_t i = 0; i < attribute_count; ++i) {
    if (c.cleared.test(i)) return null_in_full_mode(static_cast<attribute>(i));
  }
  if (c.retention && c.retention->max_age && c.retention->max_age->count() < 0) {
    return invalid("retention.max_age", duration_hint);
  }
  if (c.conflate_key && c.conflate_key->empty()) return invalid("conflate_key", "must be a non-empty string");
  if (c.slow_consumer == slow_consumer_policy::conflate && !c.conflate_key) {
    return invalid("conflate_key", "is required when slow_consumer is \"conflate\"");
  }
  if (c.dedupe_window && c.dedupe_window->count() < 0) return invalid("dedupe_window", duration_hint);
  if (c.permissions) {
    if (has_empty(c.permissions->publish)) return invalid("permissions.publish", "must be an array of non-empty strings");
    if (has_empty(c.permissions->subscribe)) {
      return invalid("permissions.subscribe", "must be an array of non-empty strings");
    }
  }
  if (c.validate) {
    if (auto ok = pipeline::validate_spec::compile(c.validate->json, "validate"); !ok) return spec_error(ok.error());
  }
  if (c.translate) {
    if (auto ok = pipeline::translate_spec::compile(c.translate->json, "translate"); !ok) return spec_error(ok.error());
  }
  if (c.delegate && (c.delegate->uris.empty() || !std::all_of(c.delegate->uris.begin(), c.delegate->uris.end(),
                                                              [](const std::string& u) { return is_http_url(u); }))) {
    return invalid("delegate.uris", "must be a non-empty array of http:// or https:// URLs");
  }
  if (c.route) {
    for (std::size_t i = 0; i < c.route->size(); ++i) {
      if (auto ok = router::validate_channel((*c.route)[i]); !ok) {
        return invalid("route[" + std::to_string(i) + "]", "must be a channel name: " + ok.error().message);
      }
    }
  }
  if (c.webhook) {
    for (std::size_t i = 0; i < c.webhook->sinks.size(); ++i) {
      const auto& sink = c.webhook->sinks[i];
      const std::string at = "webhook[" + std::to_string(i) + "]";
      if (sink.name.empty()) return invalid(at + ".name", "is required");
      if (!is_http_url(sink.url)) return invalid(at + ".url", "must be an http:// or https:// URL");
      for (std::size_t j = 0; j < i; ++j) {
        if (c.webhook->sinks[j].name == sink.name) return invalid(at + ".name", "repeats sink " + quote_name(sink.name));
      }
    }
  }
  if (c.order) return check_order(*c.order);
  return {};
}

std::string to_json(const channel_config& config) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  for (std::size_t i = 0; i < attribute_count; ++i) {
    const auto a = static_cast<attribute>(i);
    if (config.has(a)) {
      write_key(w, attribute_name(a));
      with_member(a, [&](const auto& m) { write_value(w, *m); }, config);
    } else if (config.cleared.test(i)) {
      write_key(w, attribute_name(a));
      w.Null();
    }
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::expected<channel_config, config_error> merge_patch(const channel_config& base, const channel_config& patch) {
  channel_config out = base;
  out.cleared.reset();
  for (std::size_t i = 0; i < attribute_count; ++i) {
    const auto a = static_cast<attribute>(i);
    if (patch.has(a)) {
      out.assign(a, patch);
    } else if (patch.cleared.test(i)) {
      out.reset(a);
    }
  }
  if (auto ok = validate_config(out); !ok) return std::unexpected(std::move(ok.error()));
  return out;
}

}  // namespace switchboard::channels
