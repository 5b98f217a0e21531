// The order of a channel's pipeline stages (DESIGN.md `order`): which stages an event passes
// through and in what order. Any permutation of any subset of the stages, each at most once.
//
//   default: validate, delegate, translate, route, webhook, publish_to_parent
//
// so a delegate sees the validated event and may enrich it before translate, and route/webhook/
// parents see the translated one. A channel that wants route-then-translate says
// ["validate", "route", "translate", "webhook"]. A stage left out of the order does not run even if
// its attribute is set; a stage in the order whose attribute is unset does nothing.
//
// validate and translate run in process (pipeline.h's run_stages); delegate (synchronous HTTP),
// route, webhook (asynchronous HTTP) and publish_to_parent are hooks the router performs.
//
// JSON form: ["validate", "translate", …]. Errors (code invalid_spec; `order` is the attribute
// argument), the same text as broker/channels/channel_config.h:
//   attribute "order" is not JSON: <reason>
//   attribute "order" must be an array
//   attribute "order[<i>]" must be one of validate, delegate, translate, route, webhook, publish_to_parent
//   attribute "order[<i>]" repeats stage "<stage>"
//
// Thread-safety: a plain value.
#pragma once

#include "broker/pipeline/error.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace switchboard::pipeline {

enum class stage : std::uint8_t { validate, delegate, translate, route, webhook, publish_to_parent };
inline constexpr std::size_t stage_count = 6;

// "validate", "publish_to_parent", …
[[nodiscard]] std::string_view to_string(stage s) noexcept;
[[nodiscard]] std::optional<stage> stage_from_name(std::string_view name) noexcept;
// True for the stages run_stages() performs itself (validate, translate); the others are hooks.
[[nodiscard]] constexpr bool runs_in_process(stage s) noexcept {
  return s == stage::validate || s == stage::translate;
}

class stage_order {
 public:
  // The default order (above).
  stage_order() noexcept;

  // From stage names. Errors as above (no "is not JSON").
  [[nodiscard]] static std::expected<stage_order, error> from_names(std::span<const std::string_view> names,
                                                                    std::string_view attribute = "order");
  // From the JSON form. Errors as above.
  [[nodiscard]] static std::expected<stage_order, error> from_json(std::string_view json,
                                                                   std::string_view attribute = "order");

  [[nodiscard]] std::span<const stage> stages() const noexcept { return {_stages.data(), _size}; }
  [[nodiscard]] std::size_t size() const noexcept { return _size; }
  [[nodiscard]] bool contains(stage s) const noexcept { return position(s).has_value(); }
  // The index of `s` in the order, or nullopt.
  [[nodiscard]] std::optional<std::size_t> position(stage s) const noexcept;
  // The JSON form, e.g. ["validate","translate"].
  [[nodiscard]] std::string to_json() const;

  friend bool operator==(const stage_order& a, const stage_order& b) noexcept {
    return std::equal(a.stages().begin(), a.stages().end(), b.stages().begin(), b.stages().end());
  }

 private:
  std::array<stage, stage_count> _stages{};
  std::size_t _size = 0;
};

}  // namespace switchboard::pipeline
