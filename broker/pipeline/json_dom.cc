#include "broker/pipeline/json_dom.h"

#include "broker/router/topic.h"

#include <cctype>

#include "broker/common/json_error.h"

namespace switchboard::pipeline::detail {
namespace {

// simdjson's default depth limit; the locator reports the first bracket beyond it.
constexpr std::size_t max_depth = 1024;

}  // namespace

std::string describe_json_error(std::string_view text, simdjson::error_code err) {
  if (const auto at = common::locate_json_error(text, max_depth)) {
    if (at->too_deep) {
      return "nested deeper than " + std::to_string(max_depth) + " levels at byte " + std::to_string(at->offset);
    }
    return at->reason + " at byte " + std::to_string(at->offset);
  }
  return simdjson::error_message(err);
}

std::expected<dom::element, error> parse_payload(context_state& cx, std::string_view payload) {
  if (payload.data() == nullptr) payload = std::string_view("", 0);  // simdjson memcpy()s from it
  dom::element root;
  if (const auto err = cx.parser.parse(payload.data(), payload.size(), true).get(root);
      err != simdjson::SUCCESS) {
    return std::unexpected(
        error{errc::invalid_event, "payload is not JSON: " + describe_json_error(payload, err)});
  }
  return root;
}

std::optional<dom::element> resolve(dom::element root, const field_path& path) noexcept {
  dom::element cur = root;
  for (const path_segment& seg : path.segments()) {
    switch (cur.type()) {
      case dom::element_type::OBJECT: {
        dom::element next;
        if (as_object(cur).at_key(seg.key).get(next) != simdjson::SUCCESS) return std::nullopt;
        cur = next;
        break;
      }
      case dom::element_type::ARRAY: {
        dom::element next;
        if (!seg.index || as_array(cur).at(*seg.index).get(next) != simdjson::SUCCESS) return std::nullopt;
        cur = next;
        break;
      }
      default: return std::nullopt;
    }
  }
  return cur;
}

std::string_view type_phrase(dom::element v) noexcept {
  switch (v.type()) {
    case dom::element_type::ARRAY: return "an array";
    case dom::element_type::OBJECT: return "an object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64: return "an integer";
    case dom::element_type::DOUBLE: return "a number";
    case dom::element_type::STRING: return "a string";
    case dom::element_type::BOOL: return "a boolean";
    case dom::element_type::NULL_VALUE: return "null";
  }
  return "null";
}

bool write_element(json_writer& w, dom::element v, std::size_t depth, write_budget& budget) {
  switch (v.type()) {
    case dom::element_type::OBJECT:
      if (!budget.allows(depth)) return false;
      w.StartObject();
      for (const dom::key_value_pair m : as_object(v)) {
        write_key(w, m.key);
        if (!write_element(w, m.value, depth + 1, budget)) return false;
      }
      w.EndObject();
      return true;
    case dom::element_type::ARRAY:
      if (!budget.allows(depth)) return false;
      w.StartArray();
      for (const dom::element item : as_array(v)) {
        if (!write_element(w, item, depth + 1, budget)) return false;
      }
      w.EndArray();
      return true;
    case dom::element_type::INT64: w.Int64(v.get_int64().value_unsafe()); return true;
    case dom::element_type::UINT64: w.Uint64(v.get_uint64().value_unsafe()); return true;
    case dom::element_type::DOUBLE: w.Double(v.get_double().value_unsafe()); return true;
    case dom::element_type::STRING: write_string(w, v.get_string().value_unsafe()); return true;
    case dom::element_type::BOOL: w.Bool(v.get_bool().value_unsafe()); return true;
    case dom::element_type::NULL_VALUE: w.Null(); return true;
  }
  return true;
}

std::string attribute_phrase(std::string_view path) { return "attribute " + router::quote_name(path); }

std::unexpected<error> invalid_spec(std::string message) {
  return std::unexpected(error{errc::invalid_spec, std::move(message)});
}

std::expected<dom::element, error> parse_spec_document(dom::document& doc, std::string_view json,
                                                       std::string_view attribute) {
  if (json.data() == nullptr) json = std::string_view("", 0);  // simdjson memcpy()s from it
  dom::parser parser;  // specs are compiled rarely (admin API, start-up)
  dom::element root;
  if (const auto err = parser.parse_into_document(doc, json.data(), json.size(), true).get(root);
      err != simdjson::SUCCESS) {
    return invalid_spec(attribute_phrase(attribute) + " is not JSON: " + describe_json_error(json, err));
  }
  return root;
}

std::expected<field_path, error> parse_field_path(std::string_view text, std::string_view where) {
  auto p = field_path::parse(text);
  if (!p) {
    return invalid_spec(attribute_phrase(where) +
                        " holds an invalid field path: " + router::quote_name(text) + " " + p.error());
  }
  return std::move(*p);
}

}  // namespace switchboard::pipeline::detail
