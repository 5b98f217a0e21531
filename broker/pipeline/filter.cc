#include "broker/pipeline/filter.h"

#include "broker/pipeline/json_dom.h"
#include "broker/router/topic.h"

#include <string.h>  // memmem (GNU)
#include <algorithm>
#include <cstring>

namespace switchboard::pipeline {
namespace {

namespace dom = simdjson::dom;
using detail::attribute_phrase;
using detail::invalid_spec;

std::string join(std::string_view a, std::string_view b) {
  std::string out(a);
  out.push_back('.');
  out.append(b);
  return out;
}

// A scalar of the spec, or nullopt for an object or array.
std::optional<filter_value> scalar(dom::element v) {
  switch (v.type()) {
    case dom::element_type::STRING: return filter_value(std::string(v.get_string().value_unsafe()));
    case dom::element_type::INT64: return filter_value(v.get_int64().value_unsafe());
    case dom::element_type::UINT64: return filter_value(v.get_uint64().value_unsafe());
    case dom::element_type::DOUBLE: return filter_value(v.get_double().value_unsafe());
    case dom::element_type::BOOL: return filter_value(v.get_bool().value_unsafe());
    case dom::element_type::NULL_VALUE: return filter_value(nullptr);
    default: return std::nullopt;
  }
}

bool equals(dom::element v, const filter_value& want) noexcept {
  switch (v.type()) {
    case dom::element_type::STRING: {
      const auto* s = std::get_if<std::string>(&want);
      return s != nullptr && v.get_string().value_unsafe() == *s;
    }
    case dom::element_type::INT64: {
      const auto* i = std::get_if<std::int64_t>(&want);
      return i != nullptr && v.get_int64().value_unsafe() == *i;
    }
    case dom::element_type::UINT64: {
      const auto* u = std::get_if<std::uint64_t>(&want);
      return u != nullptr && v.get_uint64().value_unsafe() == *u;
    }
    case dom::element_type::DOUBLE: {
      const auto* d = std::get_if<double>(&want);
      return d != nullptr && v.get_double().value_unsafe() == *d;
    }
    case dom::element_type::BOOL: {
      const auto* b = std::get_if<bool>(&want);
      return b != nullptr && v.get_bool().value_unsafe() == *b;
    }
    case dom::element_type::NULL_VALUE: return std::holds_alternative<std::nullptr_t>(want);
    default: return false;
  }
}

bool holds(dom::element root, const filter_condition& c) noexcept {
  const auto v = detail::resolve(root, c.path);
  if (!v) return false;
  switch (c.how) {
    case filter_condition::match::equals: return equals(*v, c.values.front());
    case filter_condition::match::prefix: {
      std::string_view s;
      return v->get(s) == simdjson::SUCCESS && s.starts_with(std::get<std::string>(c.values.front()));
    }
    case filter_condition::match::in:
      return std::any_of(c.values.begin(), c.values.end(),
                         [&](const filter_value& w) { return equals(*v, w); });
  }
  return false;
}

// True when JSON must escape a byte of `s` (so it cannot appear as is in a payload without '\').
bool needs_escape(std::string_view s) noexcept {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20; });
}

void add_needles(filter_condition& c) {
  // The last segment that is not an array index must be a member name in the payload.
  const auto segs = c.path.segments();
  const auto named = std::find_if(segs.rbegin(), segs.rend(), [](const path_segment& s) { return !s.index; });
  if (named != segs.rend()) {
    if (needs_escape(named->key)) c.impossible_unescaped = true;
    c.needles.push_back("\"" + named->key + "\"");
  }
  const auto* s = std::get_if<std::string>(&c.values.front());
  if (s == nullptr || c.how == filter_condition::match::in) return;
  if (needs_escape(*s)) c.impossible_unescaped = true;
  c.needles.push_back(c.how == filter_condition::match::equals ? "\"" + *s + "\"" : "\"" + *s);
}

std::expected<filter_condition, error> read_condition(std::string_view key, const std::string& where,
                                                      dom::element v) {
  auto path = detail::parse_field_path(key, where);
  if (!path) return std::unexpected(std::move(path.error()));
  filter_condition c;
  c.path = std::move(*path);
  if (auto s = scalar(v)) {
    c.values.push_back(std::move(*s));
    add_needles(c);
    return c;
  }
  dom::object op;
  if (v.get(op) != simdjson::SUCCESS || op.size() != 1) {
    return invalid_spec(
        attribute_phrase(where) +
        R"( must be a string, a number, a boolean, null, {"prefix": string} or {"in": [value, …]})");
  }
  const dom::key_value_pair only = *op.begin();
  if (only.key == "prefix") {
    std::string_view prefix;
    if (only.value.get(prefix) != simdjson::SUCCESS)
      return invalid_spec(attribute_phrase(join(where, "prefix")) + " must be a string");
    c.how = filter_condition::match::prefix;
    c.values.emplace_back(std::string(prefix));
  } else if (only.key == "in") {
    const auto bad = [&] {
      return invalid_spec(attribute_phrase(join(where, "in")) +
                          " must be a non-empty array of strings, numbers, booleans or null");
    };
    dom::array list;
    if (only.value.get(list) != simdjson::SUCCESS) return bad();
    c.how = filter_condition::match::in;
    for (const dom::element item : list) {
      auto s = scalar(item);
      if (!s) return bad();
      c.values.push_back(std::move(*s));
    }
    if (c.values.empty()) return bad();
  } else {
    return invalid_spec(
        attribute_phrase(where) +
        R"( must be a string, a number, a boolean, null, {"prefix": string} or {"in": [value, …]})");
  }
  add_needles(c);
  return c;
}

void write_value(detail::json_writer& w, const filter_value& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::nullptr_t>) {
          w.Null();
        } else if constexpr (std::is_same_v<T, bool>) {
          w.Bool(x);
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          w.Int64(x);
        } else if constexpr (std::is_same_v<T, std::uint64_t>) {
          w.Uint64(x);
        } else if constexpr (std::is_same_v<T, double>) {
          w.Double(x);
        } else {
          detail::write_string(w, x);
        }
      },
      v);
}

}  // namespace

std::expected<compiled_filter, error> filter_spec::compile(std::string_view json,
                                                           std::string_view attribute) {
  dom::document doc;
  auto root = detail::parse_spec_document(doc, json, attribute);
  if (!root) return std::unexpected(std::move(root.error()));
  dom::object obj;
  if (root->get(obj) != simdjson::SUCCESS)
    return invalid_spec(attribute_phrase(attribute) + " must be an object");
  compiled_filter out;
  for (const dom::key_value_pair m : obj) {
    const std::string where = join(attribute, m.key);
    if (std::any_of(out._conditions.begin(), out._conditions.end(),
                    [&](const filter_condition& c) { return c.path.text() == m.key; })) {
      return invalid_spec(attribute_phrase(where) + " appears more than once");
    }
    auto c = read_condition(m.key, where, m.value);
    if (!c) return std::unexpected(std::move(c.error()));
    out._conditions.push_back(std::move(*c));
  }
  return out;
}

bool compiled_filter::matches(std::string_view payload, context& cx) const {
  if (_conditions.empty()) return true;
  if (payload.empty()) return false;  // not JSON; and memchr/memmem must not see a null pointer
  if (std::memchr(payload.data(), '\\', payload.size()) == nullptr) {
    for (const filter_condition& c : _conditions) {
      if (c.impossible_unescaped) return false;
      for (const std::string& needle : c.needles) {
        if (::memmem(payload.data(), payload.size(), needle.data(), needle.size()) == nullptr) return false;
      }
    }
  }
  dom::element root;
  if (cx.state().parser.parse(payload.data(), payload.size(), true).get(root) != simdjson::SUCCESS)
    return false;
  if (!root.is_object()) return false;
  return std::all_of(_conditions.begin(), _conditions.end(),
                     [&](const filter_condition& c) { return holds(root, c); });
}

std::string compiled_filter::to_json() const {
  rapidjson::StringBuffer buf;
  detail::json_writer w(buf);
  w.StartObject();
  for (const filter_condition& c : _conditions) {
    detail::write_key(w, c.path.text());
    switch (c.how) {
      case filter_condition::match::equals: write_value(w, c.values.front()); break;
      case filter_condition::match::prefix:
        w.StartObject();
        detail::write_key(w, "prefix");
        write_value(w, c.values.front());
        w.EndObject();
        break;
      case filter_condition::match::in:
        w.StartObject();
        detail::write_key(w, "in");
        w.StartArray();
        for (const filter_value& v : c.values) write_value(w, v);
        w.EndArray();
        w.EndObject();
        break;
    }
  }
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace switchboard::pipeline
