#include "broker/pipeline/validate.h"

#include "broker/pipeline/stage_impl.h"
#include "broker/router/topic.h"

#include <algorithm>
#include <array>

namespace switchboard::pipeline {
namespace {

using detail::attribute_phrase;
namespace dom = simdjson::dom;
using detail::invalid_spec;

constexpr std::array<std::string_view, 8> type_names = {"string", "number", "integer", "boolean",
                                                        "object", "array",  "null",    "any"};

std::string_view expected_phrase(field_type t) noexcept {
  switch (t) {
    case field_type::string: return "a string";
    case field_type::number: return "a number";
    case field_type::integer: return "an integer";
    case field_type::boolean: return "a boolean";
    case field_type::object: return "an object";
    case field_type::array: return "an array";
    case field_type::null: return "null";
    case field_type::any: return "any value";
  }
  return "any value";
}

bool has_type(dom::element v, field_type t) noexcept {
  switch (t) {
    case field_type::string: return v.is_string();
    case field_type::number: return v.is_number();
    case field_type::integer: return v.is_int64() || v.is_uint64();
    case field_type::boolean: return v.is_bool();
    case field_type::object: return v.is_object();
    case field_type::array: return v.is_array();
    case field_type::null: return v.is_null();
    case field_type::any: return true;
  }
  return false;
}

std::string join(std::string_view a, std::string_view b) {
  std::string out(a);
  out.push_back('.');
  out.append(b);
  return out;
}

}  // namespace

std::string_view to_string(field_type t) noexcept { return type_names[static_cast<std::size_t>(t)]; }

std::expected<compiled_validate, error> validate_spec::compile(std::string_view json,
                                                               std::string_view attribute) {
  dom::document doc;
  auto root = detail::parse_spec_document(doc, json, attribute);
  if (!root) return std::unexpected(std::move(root.error()));
  dom::object obj;
  if (root->get(obj) != simdjson::SUCCESS)
    return invalid_spec(attribute_phrase(attribute) + " must be an object");

  compiled_validate out;
  bool seen_required = false;
  for (const dom::key_value_pair member : obj) {
    const std::string where = join(attribute, member.key);
    if (member.key != "required") return invalid_spec("unknown attribute " + router::quote_name(where));
    if (seen_required) return invalid_spec(attribute_phrase(where) + " appears more than once");
    seen_required = true;

    if (dom::array list; member.value.get(list) == simdjson::SUCCESS) {
      std::size_t i = 0;
      for (const dom::element item : list) {
        const std::string item_where = where + "[" + std::to_string(i++) + "]";
        std::string_view text;
        if (item.get(text) != simdjson::SUCCESS)
          return invalid_spec(attribute_phrase(item_where) + " must be a string");
        auto path = detail::parse_field_path(text, item_where);
        if (!path) return std::unexpected(std::move(path.error()));
        if (std::any_of(out._required.begin(), out._required.end(),
                        [&](const required_field& f) { return f.path.text() == text; })) {
          return invalid_spec(attribute_phrase(item_where) + " repeats field " + router::quote_name(text));
        }
        out._required.push_back(required_field{std::move(*path), field_type::any});
      }
      continue;
    }
    dom::object fields;
    if (member.value.get(fields) != simdjson::SUCCESS) {
      return invalid_spec(attribute_phrase(where) +
                          " must be an object of field paths to types, or an array of field paths");
    }
    for (const dom::key_value_pair field : fields) {
      const std::string field_where = join(where, field.key);
      if (std::any_of(out._required.begin(), out._required.end(),
                      [&](const required_field& f) { return f.path.text() == field.key; })) {
        return invalid_spec(attribute_phrase(field_where) + " appears more than once");
      }
      auto path = detail::parse_field_path(field.key, field_where);
      if (!path) return std::unexpected(std::move(path.error()));
      std::string_view type_name;
      const auto it = field.value.get(type_name) == simdjson::SUCCESS
                          ? std::find(type_names.begin(), type_names.end(), type_name)
                          : type_names.end();
      if (it == type_names.end()) {
        return invalid_spec(attribute_phrase(field_where) +
                            " must be one of string, number, integer, boolean, object, array, null, any");
      }
      out._required.push_back(
          required_field{std::move(*path), static_cast<field_type>(it - type_names.begin())});
    }
  }
  return out;
}

std::expected<void, error> compiled_validate::check(std::string_view payload, context& cx) const {
  auto root = detail::parse_payload(cx.state(), payload);
  if (!root) return std::unexpected(std::move(root.error()));
  return detail::validate_element(*this, *root);
}

namespace detail {

std::expected<void, error> validate_element(const compiled_validate& spec, dom::element root) {
  if (spec.required().empty()) return {};
  if (!root.is_object()) {
    return std::unexpected(
        error{errc::invalid_event, "payload must be a JSON object, not " + std::string(type_phrase(root))});
  }
  for (const required_field& f : spec.required()) {
    const auto v = resolve(root, f.path);
    if (!v) {
      return std::unexpected(
          error{errc::invalid_event, "missing required field " + router::quote_name(f.path.text())});
    }
    if (has_type(*v, f.type)) continue;
    const std::string_view actual = f.type == field_type::integer && v->is_double()
                                        ? "a number with a fraction or exponent"
                                        : type_phrase(*v);
    return std::unexpected(error{errc::invalid_event, "field " + router::quote_name(f.path.text()) +
                                                          " must be " + std::string(expected_phrase(f.type)) +
                                                          ", not " + std::string(actual)});
  }
  return {};
}

}  // namespace detail
}  // namespace switchboard::pipeline
