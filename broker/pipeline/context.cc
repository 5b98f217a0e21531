#include "broker/pipeline/context.h"

#include "broker/pipeline/json_dom.h"

namespace switchboard::pipeline {

context::context() : _state(std::make_unique<detail::context_state>()) {}
context::~context() = default;
context::context(context&&) noexcept = default;
context& context::operator=(context&&) noexcept = default;

}  // namespace switchboard::pipeline
