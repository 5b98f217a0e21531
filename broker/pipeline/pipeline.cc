#include "broker/pipeline/pipeline.h"

#include "broker/pipeline/stage_impl.h"

namespace switchboard::pipeline {

std::expected<stage_step, error> run_stages(const channel_stages& stages, std::string_view payload,
                                            std::size_t from, context& cx) {
  detail::context_state& state = cx.state();
  const auto order = stages.order.stages();
  std::optional<detail::dom::element> parsed;  // the DOM of `payload`, parsed at most once per version
  const auto parse = [&]() -> std::expected<detail::dom::element, error> {
    if (parsed) return *parsed;
    auto root = detail::parse_payload(state, payload);
    if (root) parsed = *root;
    return root;
  };

  for (std::size_t i = from; i < order.size(); ++i) {
    switch (order[i]) {
      case stage::validate: {
        if (!stages.validate) break;
        auto root = parse();
        if (!root) return std::unexpected(std::move(root.error()));
        if (auto ok = detail::validate_element(*stages.validate, *root); !ok)
          return std::unexpected(std::move(ok.error()));
        break;
      }
      case stage::translate: {
        if (!stages.translate) break;
        auto root = parse();
        if (!root) return std::unexpected(std::move(root.error()));
        auto out = detail::translate_element(*stages.translate, *root, state, stages.max_output_bytes);
        if (!out) return std::unexpected(std::move(out.error()));
        payload = *out;
        parsed.reset();  // the DOM is the input's; a later stage parses the output
        break;
      }
      default: return stage_step{payload, order[i], i + 1};
    }
  }
  return stage_step{payload, std::nullopt, order.size()};
}

}  // namespace switchboard::pipeline
