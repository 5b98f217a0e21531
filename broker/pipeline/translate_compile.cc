// translate_spec::compile: JSON spec -> translate_program (translate.h documents the rules and errors).
#include "broker/pipeline/translate.h"

#include "broker/pipeline/translate_program.h"
#include "broker/router/topic.h"

#include <algorithm>
#include <array>

namespace switchboard::pipeline {
namespace {

using detail::attribute_phrase;
namespace dom = simdjson::dom;
using detail::invalid_spec;
using detail::move_op;
using detail::template_node;
using detail::translate_program;

std::string join(std::string_view a, std::string_view b) {
  std::string out(a);
  out.push_back('.');
  out.append(b);
  return out;
}

// Calls on_member(key, where, value) for each member, rejecting repeated keys.
template <typename F>
std::expected<void, error> each_member(dom::object obj, std::string_view where, F&& on_member) {
  std::vector<std::string_view> seen;
  for (const dom::key_value_pair m : obj) {
    const std::string member_where = join(where, m.key);
    if (std::find(seen.begin(), seen.end(), m.key) != seen.end()) {
      return invalid_spec(attribute_phrase(member_where) + " appears more than once");
    }
    seen.push_back(m.key);
    if (auto r = on_member(m.key, member_where, m.value); !r) return r;
  }
  return {};
}

// copy ({target: source}) and rename ({source: target}).
std::expected<std::vector<move_op>, error> read_moves(dom::element el, std::string_view where,
                                                      bool is_rename) {
  dom::object obj;
  if (el.get(obj) != simdjson::SUCCESS) {
    return invalid_spec(attribute_phrase(where) +
                        (is_rename ? " must be an object of source paths to target paths"
                                   : " must be an object of target paths to source paths"));
  }
  std::vector<move_op> out;
  auto r = each_member(
      obj, where,
      [&](std::string_view key, const std::string& w, dom::element v) -> std::expected<void, error> {
        std::string_view other;
        if (v.get(other) != simdjson::SUCCESS) return invalid_spec(attribute_phrase(w) + " must be a string");
        auto a = detail::parse_field_path(key, w);
        if (!a) return std::unexpected(std::move(a.error()));
        auto b = detail::parse_field_path(other, w);
        if (!b) return std::unexpected(std::move(b.error()));
        move_op op =
            is_rename ? move_op{std::move(*a), std::move(*b)} : move_op{std::move(*b), std::move(*a)};
        if (op.source == op.target) return {};  // a no-op
        if (is_rename && op.source.is_prefix_of(op.target)) {
          return invalid_spec(attribute_phrase(w) + " moves a field inside itself (to " +
                              router::quote_name(op.target.text()) + ")");
        }
        out.push_back(std::move(op));
        return {};
      });
  if (!r) return std::unexpected(std::move(r.error()));
  return out;
}

std::expected<std::vector<field_path>, error> read_drops(dom::element el, std::string_view where) {
  dom::array arr;
  if (el.get(arr) != simdjson::SUCCESS)
    return invalid_spec(attribute_phrase(where) + " must be an array of field paths");
  std::vector<field_path> out;
  std::size_t i = 0;
  for (const dom::element item : arr) {
    const std::string w = std::string(where) + "[" + std::to_string(i++) + "]";
    std::string_view text;
    if (item.get(text) != simdjson::SUCCESS) return invalid_spec(attribute_phrase(w) + " must be a string");
    auto p = detail::parse_field_path(text, w);
    if (!p) return std::unexpected(std::move(p.error()));
    out.push_back(std::move(*p));
  }
  return out;
}

std::expected<std::vector<detail::set_op>, error> read_sets(dom::element el, std::string_view where) {
  dom::object obj;
  if (el.get(obj) != simdjson::SUCCESS) {
    return invalid_spec(attribute_phrase(where) + " must be an object of target paths to values");
  }
  std::vector<detail::set_op> out;
  auto r = each_member(
      obj, where,
      [&](std::string_view key, const std::string& w, dom::element v) -> std::expected<void, error> {
        auto p = detail::parse_field_path(key, w);
        if (!p) return std::unexpected(std::move(p.error()));
        out.push_back(detail::set_op{std::move(*p), v});
        return {};
      });
  if (!r) return std::unexpected(std::move(r.error()));
  return out;
}

// "{{ path }}" -> " path " trimmed; nullopt when `s` is not a placeholder.
std::optional<std::string_view> placeholder_text(std::string_view s) {
  if (s.size() < 4 || !s.starts_with("{{") || !s.ends_with("}}")) return std::nullopt;
  s = s.substr(2, s.size() - 4);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// Depth is bounded by simdjson's 1024 levels.
std::expected<template_node, error> read_template(dom::element el, std::string_view where) {
  template_node node;
  switch (el.type()) {
    case dom::element_type::OBJECT: {
      node.what = template_node::kind::object;
      // Template objects are output: repeated keys would make the output ambiguous, so they are
      // rejected like elsewhere in specs.
      auto r = each_member(
          detail::as_object(el), where,
          [&](std::string_view key, const std::string& w, dom::element v) -> std::expected<void, error> {
            auto child = read_template(v, w);
            if (!child) return std::unexpected(std::move(child.error()));
            child->key = key;
            node.children.push_back(std::move(*child));
            return {};
          });
      if (!r) return std::unexpected(std::move(r.error()));
      return node;
    }
    case dom::element_type::ARRAY: {
      node.what = template_node::kind::array;
      std::size_t i = 0;
      for (const dom::element item : detail::as_array(el)) {
        auto child = read_template(item, std::string(where) + "[" + std::to_string(i++) + "]");
        if (!child) return std::unexpected(std::move(child.error()));
        node.children.push_back(std::move(*child));
      }
      return node;
    }
    case dom::element_type::STRING: {
      if (const auto text = placeholder_text(el.get_string().value_unsafe())) {
        auto p = detail::parse_field_path(*text, where);
        if (!p) return std::unexpected(std::move(p.error()));
        node.what = template_node::kind::placeholder;
        node.placeholder = std::move(*p);
        return node;
      }
      break;
    }
    default: break;
  }
  node.what = template_node::kind::literal;
  node.literal = el;
  return node;
}

constexpr std::array<std::string_view, 5> operation_names = {"copy", "rename", "drop", "set", "template"};

}  // namespace

std::expected<compiled_translate, error> translate_spec::compile(std::string_view json,
                                                                 std::string_view attribute) {
  auto program = std::make_shared<translate_program>();
  auto root = detail::parse_spec_document(program->doc, json, attribute);
  if (!root) return std::unexpected(std::move(root.error()));
  dom::object obj;
  if (root->get(obj) != simdjson::SUCCESS)
    return invalid_spec(attribute_phrase(attribute) + " must be an object");
  {
    rapidjson::StringBuffer buf;
    detail::json_writer w(buf);
    detail::write_budget unlimited;  // the spec is within simdjson's depth limit already
    (void)detail::write_element(w, *root, 1, unlimited);
    program->spec_json.assign(buf.GetString(), buf.GetSize());
  }

  std::array<bool, operation_names.size()> seen{};
  for (const dom::key_value_pair m : obj) {
    const std::string where = join(attribute, m.key);
    const auto it = std::find(operation_names.begin(), operation_names.end(), m.key);
    if (it == operation_names.end()) {
      return invalid_spec("unknown operation " + router::quote_name(where) +
                          " (expected copy, rename, drop, set, template)");
    }
    const auto op = static_cast<std::size_t>(it - operation_names.begin());
    if (seen[op]) return invalid_spec(attribute_phrase(where) + " appears more than once");
    seen[op] = true;
    switch (op) {
      case 0:
      case 1: {
        auto moves = read_moves(m.value, where, op == 1);
        if (!moves) return std::unexpected(std::move(moves.error()));
        (op == 0 ? program->copies : program->renames) = std::move(*moves);
        break;
      }
      case 2: {
        auto drops = read_drops(m.value, where);
        if (!drops) return std::unexpected(std::move(drops.error()));
        program->drops = std::move(*drops);
        break;
      }
      case 3: {
        auto sets = read_sets(m.value, where);
        if (!sets) return std::unexpected(std::move(sets.error()));
        program->sets = std::move(*sets);
        break;
      }
      default: {
        if (!m.value.is_object()) return invalid_spec(attribute_phrase(where) + " must be an object");
        auto t = read_template(m.value, where);
        if (!t) return std::unexpected(std::move(t.error()));
        program->output_template = std::move(*t);
        break;
      }
    }
  }
  return compiled_translate(std::move(program));
}

const std::string& compiled_translate::spec_json() const noexcept { return _program->spec_json; }

}  // namespace switchboard::pipeline
