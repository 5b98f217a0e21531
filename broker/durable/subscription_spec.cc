#include "broker/durable/subscription_spec.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <span>
#include <utility>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>

#include "broker/common/epoch_text.h"
#include "broker/router/topic.h"

namespace switchboard::durable {
namespace {

namespace dom = simdjson::dom;


constexpr std::string_view start_rule =
    "must be one of new, all, seq:<N>, time:<RFC3339>, or a position {\"epoch\": \"<hex>\", \"seq\": N}";

std::unexpected<spec_error> invalid(std::string_view path, std::string_view what) {
  return std::unexpected(
      spec_error{422, "invalid_attribute", "attribute " + quote_name(path) + " " + std::string(what)});
}

std::string join_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string out(parent);
  out.push_back('.');
  out.append(key);
  return out;
}

// Calls on_member(key, path, value) for each member of `obj`, rejecting keys not in `known` (when
// `known` is not empty) and repeated keys.
template <typename F>
std::expected<void, spec_error> each_member(dom::object obj, std::string_view path,
                                            std::span<const std::string_view> known, F&& on_member) {
  std::vector<std::string_view> seen;
  for (const dom::key_value_pair member : obj) {
    const std::string member_path = join_path(path, member.key);
    if (!known.empty() && std::find(known.begin(), known.end(), member.key) == known.end()) {
      return std::unexpected(
          spec_error{422, "unknown_attribute", "unknown attribute " + quote_name(member_path)});
    }
    if (std::find(seen.begin(), seen.end(), member.key) != seen.end()) {
      return invalid(member_path, "appears more than once");
    }
    seen.push_back(member.key);
    if (auto r = on_member(member.key, member_path, member.value); !r) return r;
  }
  return {};
}

bool valid_name_part(std::string_view part) {
  return !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// NAME, or TENANT/NAME: the form a tenant-scoped token's names take (see tenant_scoped_name()).
bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > max_subscription_name) return false;
  const auto slash = name.find('/');
  if (slash == std::string_view::npos) return valid_name_part(name);
  return valid_name_part(name.substr(0, slash)) && valid_name_part(name.substr(slash + 1));
}

std::expected<std::uint32_t, spec_error> read_positive(dom::element v, std::string_view path) {
  std::uint64_t n = 0;
  if (v.get(n) != simdjson::SUCCESS || n == 0 || n > std::numeric_limits<std::uint32_t>::max()) {
    return invalid(path, "must be a positive integer");
  }
  return static_cast<std::uint32_t>(n);
}

std::expected<ack_options, spec_error> read_ack(dom::element el) {
  dom::object obj;
  if (el.get(obj) != simdjson::SUCCESS) return invalid("ack", "must be an object");
  static constexpr std::array<std::string_view, 4> names = {"policy", "ack_wait_ms", "max_deliveries",
                                                            "max_ack_pending"};
  ack_options ack;
  auto r = each_member(
      obj, "ack", names,
      [&](std::string_view key, const std::string& path, dom::element v) -> std::expected<void, spec_error> {
        if (key == "policy") {
          std::string_view s;
          if (v.get(s) == simdjson::SUCCESS && s == "none") {
            ack.policy = ack_policy::none;
          } else if (v.get(s) == simdjson::SUCCESS && s == "at_least_once") {
            ack.policy = ack_policy::at_least_once;
          } else {
            return invalid(path, "must be one of none, at_least_once");
          }
          return {};
        }
        auto n = read_positive(v, path);
        if (!n) return std::unexpected(std::move(n.error()));
        if (key == "ack_wait_ms") ack.ack_wait_ms = *n;
        if (key == "max_deliveries") ack.max_deliveries = *n;
        if (key == "max_ack_pending") ack.max_ack_pending = *n;
        return {};
      });
  if (!r) return std::unexpected(std::move(r.error()));
  return ack;
}

std::expected<event_filter, spec_error> read_filter(dom::element el) {
  dom::object obj;
  if (el.get(obj) != simdjson::SUCCESS) return invalid("filter", "must be an object");
  event_filter filter;
  auto r = each_member(
      obj, "filter", {},
      [&](std::string_view key, const std::string& path, dom::element v) -> std::expected<void, spec_error> {
        static constexpr std::string_view what =
            R"(must be a string, an integer, a boolean or {"prefix": string})";
        field_condition c;
        c.field = std::string(key);
        std::string_view s;
        std::int64_t i = 0;
        bool b = false;
        dom::object inner;
        if (v.get(s) == simdjson::SUCCESS) {
          c.value = std::string(s);
        } else if (v.is_int64() && v.get(i) == simdjson::SUCCESS) {
          c.value = i;
        } else if (v.get(b) == simdjson::SUCCESS) {
          c.value = b;
        } else if (v.get(inner) == simdjson::SUCCESS && inner.size() == 1 &&
                   inner["prefix"].get(s) == simdjson::SUCCESS) {
          c.how = field_condition::match::prefix;
          c.value = std::string(s);
        } else {
          return invalid(path, what);
        }
        filter.push_back(std::move(c));
        return {};
      });
  if (!r) return std::unexpected(std::move(r.error()));
  std::sort(filter.begin(), filter.end(), [](const auto& a, const auto& b) { return a.field < b.field; });
  return filter;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// RFC 3339 date-time (`2024-05-01T12:00:00.5Z`, `…+02:00`) as ns since the Unix epoch, or -1.
std::int64_t parse_rfc3339(std::string_view s) {
  std::size_t pos = 0;
  auto digits = [&](std::size_t n, unsigned& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const char c = s[pos + i];
      if (c < '0' || c > '9') return false;
      out = out * 10 + static_cast<unsigned>(c - '0');
    }
    pos += n;
    return true;
  };
  auto literal = [&](std::string_view any_of) {
    if (pos >= s.size() || any_of.find(s[pos]) == std::string_view::npos) return false;
    ++pos;
    return true;
  };
  unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  if (!digits(4, y) || !literal("-") || !digits(2, mo) || !literal("-") || !digits(2, d) || !literal("Tt ") ||
      !digits(2, h) || !literal(":") || !digits(2, mi) || !literal(":") || !digits(2, se)) {
    return -1;
  }
  static constexpr std::array<unsigned, 12> month_days = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1 || d > month_days[mo - 1] || h > 23 || mi > 59 || se > 60) return -1;
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo == 2 && d == 29 && !leap) return -1;
  std::int64_t frac_ns = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::int64_t scale = 100'000'000;
    const std::size_t first = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      frac_ns += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == first) return -1;
  }
  std::int64_t offset_s = 0;
  if (literal("Zz")) {
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const bool minus = s[pos] == '-';
    ++pos;
    unsigned oh = 0, om = 0;
    if (!digits(2, oh) || !literal(":") || !digits(2, om) || oh > 23 || om > 59) return -1;
    offset_s = (minus ? -1 : 1) * static_cast<std::int64_t>(oh * 3600 + om * 60);
  } else {
    return -1;
  }
  if (pos != s.size()) return -1;
  const std::int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset_s;
  if (secs < 0 || secs > std::numeric_limits<std::int64_t>::max() / 1'000'000'000 - 1) return -1;
  return secs * 1'000'000'000 + frac_ns;
}

}  // namespace


std::expected<start_position, spec_error> parse_start(std::string_view text) {
  start_position p;
  p.text = std::string(text);
  if (text == "new") return p;
  if (text == "all") {
    p.kind = start_position::from::all;
    return p;
  }
  if (text.starts_with("seq:")) {
    const std::string_view n = text.substr(4);
    std::uint64_t seq = 0;
    const auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), seq);
    if (ec == std::errc() && end == n.data() + n.size() && seq >= 1 && !n.empty() && n[0] != '+') {
      p.kind = start_position::from::seq;
      p.seq = seq;
      return p;
    }
  } else if (text.starts_with("time:")) {
    const std::int64_t ns = parse_rfc3339(text.substr(5));
    if (ns >= 0) {
      p.kind = start_position::from::time;
      p.time_ns = static_cast<std::uint64_t>(ns);
      return p;
    }
  }
  return invalid("start", start_rule);
}

std::expected<subscription_spec, spec_error> parse_spec(std::string_view json) {
  dom::parser parser;  // per call: specs are parsed rarely (admin API, attach, start-up)
  dom::element root;
  if (const auto err = parser.parse(json.data(), json.size(), true).get(root); err != simdjson::SUCCESS) {
    return std::unexpected(
        spec_error{400, "invalid_json", std::string("invalid JSON: ") + simdjson::error_message(err)});
  }
  dom::object obj;
  if (root.get(obj) != simdjson::SUCCESS) {
    return std::unexpected(spec_error{400, "invalid_json", "subscription must be a JSON object"});
  }
  static constexpr std::array<std::string_view, 5> names = {"name", "pattern", "filter", "ack", "start"};
  subscription_spec spec;
  bool has_name = false;
  bool has_pattern = false;
  auto r = each_member(
      obj, "", names,
      [&](std::string_view key, const std::string&, dom::element v) -> std::expected<void, spec_error> {
        std::string_view s;
        if (key == "name") {
          if (v.get(s) != simdjson::SUCCESS || !valid_name(s)) {
            return invalid("name", "must be 1 to 128 characters of A-Z, a-z, 0-9, _ and - (optionally TENANT/NAME)");
          }
          spec.name = std::string(s);
          has_name = true;
        } else if (key == "pattern") {
          if (v.get(s) != simdjson::SUCCESS) return invalid("pattern", "must be a string");
          if (auto ok = router::validate_pattern(s); !ok) {
            return std::unexpected(spec_error{422, ok.error().code, ok.error().message});
          }
          spec.pattern = std::string(s);
          has_pattern = true;
        } else if (key == "filter") {
          auto f = read_filter(v);
          if (!f) return std::unexpected(std::move(f.error()));
          spec.filter = std::move(*f);
        } else if (key == "ack") {
          auto a = read_ack(v);
          if (!a) return std::unexpected(std::move(a.error()));
          spec.ack = *a;
        } else {
          dom::object position;
          if (v.get(position) == simdjson::SUCCESS) {
            std::string_view epoch_text;
            std::uint64_t seq = 0;
            std::size_t members = 0;
            for (auto m : position) {
              (void)m;
              ++members;
            }
            if (members != 2 || position["epoch"].get(epoch_text) != simdjson::SUCCESS ||
                position["seq"].get(seq) != simdjson::SUCCESS) {
              return invalid("start", start_rule);
            }
            auto epoch = common::parse_epoch_text(epoch_text);
            if (!epoch) return invalid("start", start_rule);
            spec.start = start_position{.kind = start_position::from::position, .seq = seq, .epoch = *epoch,
                                        .time_ns = 0, .text = {}};
            return {};
          }
          if (v.get(s) != simdjson::SUCCESS) return invalid("start", start_rule);
          auto p = parse_start(s);
          if (!p) return std::unexpected(std::move(p.error()));
          spec.start = std::move(*p);
        }
        return {};
      });
  if (!r) return std::unexpected(std::move(r.error()));
  if (!has_name) return invalid("name", "is required");
  if (!has_pattern) return invalid("pattern", "is required");
  if (spec.start.kind == start_position::from::position && !router::validate_channel(spec.pattern)) {
    return invalid("start", "is a position, which names one channel's history: the pattern must be a channel name");
  }
  return spec;
}

std::string spec_to_json(const subscription_spec& spec) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto str = [&](std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); };
  w.StartObject();
  str("name");
  str(spec.name);
  str("pattern");
  str(spec.pattern);
  str("filter");
  w.StartObject();
  for (const auto& c : spec.filter) {
    str(c.field);
    if (c.how == field_condition::match::prefix) {
      w.StartObject();
      str("prefix");
      str(std::get<std::string>(c.value));
      w.EndObject();
    } else if (const auto* s = std::get_if<std::string>(&c.value)) {
      str(*s);
    } else if (const auto* i = std::get_if<std::int64_t>(&c.value)) {
      w.Int64(*i);
    } else {
      w.Bool(std::get<bool>(c.value));
    }
  }
  w.EndObject();
  str("ack");
  w.StartObject();
  str("policy");
  str(spec.ack.policy == ack_policy::none ? "none" : "at_least_once");
  str("ack_wait_ms");
  w.Uint(spec.ack.ack_wait_ms);
  str("max_deliveries");
  w.Uint(spec.ack.max_deliveries);
  str("max_ack_pending");
  w.Uint(spec.ack.max_ack_pending);
  w.EndObject();
  str("start");
  if (spec.start.kind == start_position::from::position) {
    w.StartObject();
    str("epoch");
    str(common::epoch_text(spec.start.epoch));
    str("seq");
    w.Uint64(spec.start.seq);
    w.EndObject();
  } else {
    str(spec.start.text);
  }
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace switchboard::durable
