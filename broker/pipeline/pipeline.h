// One channel's pipeline as the router will run it: the compiled in-process stages and their order,
// and run_stages(), which runs validate and translate in that order and stops at each hook (delegate,
// route, webhook, publish_to_parent) for the router to perform, then resumes after it.
//
// Operation (what the router does per event):
//   auto step = run_stages(stages, payload, 0, cx);
//   while (step && step->hook) {
//     // perform *step->hook with step->payload (copy it first: it may point into cx), e.g.
//     //   delegate: call the URIs; their answer (or the same payload) continues: payload = answer
//     //   route / webhook / publish_to_parent: fan the payload out; it continues unchanged
//     step = run_stages(stages, payload, step->next, cx);
//   }
//   if (!step) reject the event with step.error() (code invalid_event: ERR to the publisher)
//   else deliver step->payload to the channel's subscribers.
// A payload is parsed once for consecutive in-process stages (validate then translate share one
// parse). Stages whose spec is unset (no `schema`/`validate`, no `translate`) pass the payload on.
//
// Thread-safety: channel_stages is an immutable value (share it in the config snapshot);
// run_stages uses the caller's context.
#pragma once

#include "broker/pipeline/context.h"
#include "broker/pipeline/error.h"
#include "broker/pipeline/stage_order.h"
#include "broker/pipeline/translate.h"
#include "broker/pipeline/validate.h"

#include <cstddef>
#include <expected>
#include <optional>
#include <string_view>

namespace switchboard::pipeline {

struct channel_stages {
  stage_order order;                                        // default: stage_order's default
  std::optional<compiled_validate> validate;                // unset: the validate stage passes every payload
  std::optional<compiled_translate> translate;              // unset: the translate stage leaves it as it is
  std::size_t max_output_bytes = default_max_output_bytes;  // translate's output limit
};

struct stage_step {
  // The payload after the stages run so far: `payload` as given, or translate's output in the
  // context (valid until the next call using the context; copy it to keep it).
  std::string_view payload;
  // The hook stage reached (never validate or translate), or nullopt when the order is finished.
  std::optional<stage> hook;
  // Where to resume after performing the hook: its position + 1 (order.size() when finished).
  std::size_t next = 0;
};

// Runs stages.order from position `from` (0 for a new event) over `payload` until a hook or the end.
// Returns the step, or the first stage's invalid_event error (validate.h, translate.h).
// `payload` may point into `cx` (a previous step's payload). Precondition: from <= order.size().
// Does not block; allocates nothing on success once `cx` is warm.
[[nodiscard]] std::expected<stage_step, error> run_stages(const channel_stages& stages,
                                                          std::string_view payload, std::size_t from,
                                                          context& cx);

}  // namespace switchboard::pipeline
