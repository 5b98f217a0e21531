// Internal to broker/pipeline/: the stages applied to an already parsed payload, so that run()
// (pipeline.cc) parses a payload once for consecutive stages.
#pragma once

#include "broker/pipeline/json_dom.h"
#include "broker/pipeline/translate.h"
#include "broker/pipeline/validate.h"

namespace switchboard::pipeline::detail {

// validate on a parsed payload (errors as compiled_validate::check, minus "is not JSON").
[[nodiscard]] std::expected<void, error> validate_element(const compiled_validate& spec, dom::element root);

// translate on a parsed payload: writes the output into cx.out and returns a view of it. `root`
// must come from cx.parser (or outlive the call). Errors as compiled_translate::apply, minus "is not JSON".
[[nodiscard]] std::expected<std::string_view, error> translate_element(const compiled_translate& spec,
                                                                       dom::element root, context_state& cx,
                                                                       std::size_t max_output_bytes);

}  // namespace switchboard::pipeline::detail
