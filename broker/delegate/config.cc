// The `delegate` attribute: parsing (simdjson DOM), validation and JSON writing (RapidJSON Writer).
// Contracts and exact messages: config.h.
#include "broker/delegate/config.h"

#include <algorithm>
#include <array>
#include <optional>
#include <span>
#include <utility>

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>

#include "broker/common/json_error.h"
#include "broker/router/topic.h"

namespace switchboard::delegate {
namespace {

namespace dom = simdjson::dom;

constexpr std::array<std::string_view, 2> mode_names = {"sequential", "parallel"};
constexpr std::array<std::string_view, 3> policy_names = {"pass", "drop", "dead_letter"};
constexpr std::array<std::string_view, 5> known_keys = {"uris", "mode", "timeout_ms", "on_failure", "secret"};

std::unexpected<error> invalid(std::string_view path, std::string_view what) {
  return std::unexpected(
      error{"invalid_attribute", fmt::format("attribute {} {}", router::quote_name(path), what)});
}

template <std::size_t N>
std::expected<std::size_t, error> read_enum(dom::element el, std::string_view path,
                                            const std::array<std::string_view, N>& names) {
  std::string_view v;
  if (el.get(v) == simdjson::SUCCESS) {
    if (const auto it = std::ranges::find(names, v); it != names.end()) {
      return static_cast<std::size_t>(it - names.begin());
    }
  }
  return invalid(path, fmt::format("must be one of {}", fmt::join(names, ", ")));
}

std::expected<std::vector<std::string>, error> read_uris(dom::element el) {
  dom::array arr;
  if (el.get(arr) != simdjson::SUCCESS) return invalid("delegate.uris", "must be an array");
  if (arr.size() == 0) return invalid("delegate.uris", "must not be empty");
  std::vector<std::string> out;
  std::size_t i = 0;
  for (const dom::element item : arr) {
    std::string_view v;
    if (item.get(v) != simdjson::SUCCESS || !is_http_url(v)) {
      return invalid(fmt::format("delegate.uris[{}]", i), "must be an http:// or https:// URL");
    }
    out.emplace_back(v);
    ++i;
  }
  return out;
}

std::expected<std::chrono::milliseconds, error> read_timeout(dom::element el) {
  std::uint64_t v = 0;
  if (el.type() == dom::element_type::INT64) {
    std::int64_t s = 0;
    if (el.get(s) != simdjson::SUCCESS || s < 0)
      return invalid("delegate.timeout_ms", "must be a non-negative integer");
    v = static_cast<std::uint64_t>(s);
  } else if (el.type() != dom::element_type::UINT64 || el.get(v) != simdjson::SUCCESS) {
    return invalid("delegate.timeout_ms", "must be a non-negative integer");
  }
  if (v < static_cast<std::uint64_t>(min_timeout.count()) ||
      v > static_cast<std::uint64_t>(max_timeout.count())) {
    return invalid("delegate.timeout_ms",
                   fmt::format("must be between {} and {}", min_timeout.count(), max_timeout.count()));
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(v));
}

std::expected<void, error> read_member(config& c, std::string_view key, dom::element v) {
  if (key == "uris") {
    auto uris = read_uris(v);
    if (!uris) return std::unexpected(std::move(uris.error()));
    c.uris = std::move(*uris);
  } else if (key == "mode") {
    auto m = read_enum(v, "delegate.mode", mode_names);
    if (!m) return std::unexpected(std::move(m.error()));
    c.how = static_cast<mode>(*m);
  } else if (key == "timeout_ms") {
    auto t = read_timeout(v);
    if (!t) return std::unexpected(std::move(t.error()));
    c.timeout = *t;
  } else if (key == "on_failure") {
    auto p = read_enum(v, "delegate.on_failure", policy_names);
    if (!p) return std::unexpected(std::move(p.error()));
    c.on_failure = static_cast<failure_policy>(*p);
  } else {  // secret
    std::string_view s;
    if (v.get(s) != simdjson::SUCCESS) return invalid("delegate.secret", "must be a string");
    c.secret = std::string(s);
  }
  return {};
}

void write_string(rapidjson::Writer<rapidjson::StringBuffer>& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

bool iequals_prefix(std::string_view s, std::string_view lower_prefix) noexcept {
  if (s.size() < lower_prefix.size()) return false;
  for (std::size_t i = 0; i < lower_prefix.size(); ++i) {
    const char c = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] - 'A' + 'a') : s[i];
    if (c != lower_prefix[i]) return false;
  }
  return true;
}

}  // namespace

std::string_view to_string(mode m) noexcept { return mode_names[static_cast<std::size_t>(m)]; }
std::string_view to_string(failure_policy p) noexcept { return policy_names[static_cast<std::size_t>(p)]; }

bool is_http_url(std::string_view uri) noexcept {
  std::size_t rest = 0;
  if (iequals_prefix(uri, "http://"))
    rest = 7;
  else if (iequals_prefix(uri, "https://"))
    rest = 8;
  else
    return false;
  if (uri.size() == rest || uri[rest] == '/' || uri[rest] == '?' || uri[rest] == '#') return false;
  return std::ranges::none_of(uri, [](char ch) {
    const auto b = static_cast<unsigned char>(ch);
    return b <= 0x20 || b == 0x7f;
  });
}

std::expected<config, error> parse_config(std::string_view json) {
  if (json.data() == nullptr) json = std::string_view("", 0);  // simdjson memcpy()s from it
  dom::parser parser;  // per call: configs are parsed rarely (admin API, start-up)
  dom::element root;
  if (const auto err = parser.parse(json.data(), json.size(), true).get(root); err != simdjson::SUCCESS) {
    if (const auto at = common::locate_json_error(json)) {
      const std::string reason = at->too_deep ? std::string("nested deeper than 1024 levels") : at->reason;
      return std::unexpected(
          error{"invalid_json", fmt::format("invalid JSON at byte {}: {}", at->offset, reason)});
    }
    return std::unexpected(
        error{"invalid_json", fmt::format("invalid JSON: {}", simdjson::error_message(err))});
  }
  dom::object obj;
  if (root.get(obj) != simdjson::SUCCESS) return invalid("delegate", "must be an object");

  config c;
  bool have_uris = false;
  std::vector<std::string_view> seen;
  for (const dom::key_value_pair member : obj) {
    const std::string path = fmt::format("delegate.{}", member.key);
    if (std::ranges::find(known_keys, member.key) == known_keys.end()) {
      return std::unexpected(
          error{"unknown_attribute", fmt::format("unknown attribute {}", router::quote_name(path))});
    }
    if (std::ranges::find(seen, member.key) != seen.end()) return invalid(path, "appears more than once");
    seen.push_back(member.key);
    if (member.key == "uris") have_uris = true;
    if (auto r = read_member(c, member.key, member.value); !r) return std::unexpected(std::move(r.error()));
  }
  if (!have_uris) return invalid("delegate.uris", "is required");
  return c;
}

std::string to_json(const config& c) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  w.StartObject();
  w.Key("uris");
  w.StartArray();
  for (const std::string& u : c.uris) write_string(w, u);
  w.EndArray();
  w.Key("mode");
  write_string(w, to_string(c.how));
  w.Key("timeout_ms");
  w.Int64(c.timeout.count());
  w.Key("on_failure");
  write_string(w, to_string(c.on_failure));
  if (!c.secret.empty()) {
    w.Key("secret");
    write_string(w, c.secret);
  }
  w.EndObject();
  return {out.GetString(), out.GetSize()};
}

}  // namespace switchboard::delegate
