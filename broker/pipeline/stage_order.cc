#include "broker/pipeline/stage_order.h"

#include "broker/pipeline/json_dom.h"
#include "broker/router/topic.h"

#include <algorithm>
#include <vector>

namespace switchboard::pipeline {
namespace {

namespace dom = simdjson::dom;

constexpr std::array<std::string_view, stage_count> stage_names = {
    "validate", "delegate", "translate", "route", "webhook", "publish_to_parent"};

}  // namespace

std::string_view to_string(stage s) noexcept { return stage_names[static_cast<std::size_t>(s)]; }

std::optional<stage> stage_from_name(std::string_view name) noexcept {
  const auto it = std::find(stage_names.begin(), stage_names.end(), name);
  if (it == stage_names.end()) return std::nullopt;
  return static_cast<stage>(it - stage_names.begin());
}

stage_order::stage_order() noexcept
    : _stages{stage::validate, stage::delegate, stage::translate,
              stage::route,    stage::webhook,  stage::publish_to_parent},
      _size(stage_count) {}

std::expected<stage_order, error> stage_order::from_names(std::span<const std::string_view> names,
                                                          std::string_view attribute) {
  stage_order out;
  out._size = 0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string where = std::string(attribute) + "[" + std::to_string(i) + "]";
    const auto s = stage_from_name(names[i]);
    if (!s) {
      return detail::invalid_spec(
          detail::attribute_phrase(where) +
          " must be one of validate, delegate, translate, route, webhook, publish_to_parent");
    }
    if (out.contains(*s)) {
      return detail::invalid_spec(detail::attribute_phrase(where) + " repeats stage " +
                                  router::quote_name(names[i]));
    }
    out._stages[out._size++] = *s;
  }
  return out;
}

std::expected<stage_order, error> stage_order::from_json(std::string_view json, std::string_view attribute) {
  dom::document doc;
  auto root = detail::parse_spec_document(doc, json, attribute);
  if (!root) return std::unexpected(std::move(root.error()));
  dom::array arr;
  if (root->get(arr) != simdjson::SUCCESS)
    return detail::invalid_spec(detail::attribute_phrase(attribute) + " must be an array");
  std::vector<std::string_view> names;
  for (const dom::element item : arr) {
    std::string_view name;
    if (item.get(name) != simdjson::SUCCESS) name = "\x01";  // not a stage name: reported as such below
    names.push_back(name);
    if (names.size() > stage_count + 1) break;  // a repeat is certain: report it without reading on
  }
  return from_names(names, attribute);
}

std::optional<std::size_t> stage_order::position(stage s) const noexcept {
  const auto st = stages();
  const auto it = std::find(st.begin(), st.end(), s);
  if (it == st.end()) return std::nullopt;
  return static_cast<std::size_t>(it - st.begin());
}

std::string stage_order::to_json() const {
  rapidjson::StringBuffer buf;
  detail::json_writer w(buf);
  w.StartArray();
  for (const stage s : stages()) detail::write_string(w, to_string(s));
  w.EndArray();
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace switchboard::pipeline
