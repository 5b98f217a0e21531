// The per-thread working state of the pipeline stages: a simdjson parser, the output buffer that
// translate writes into and the scratch tree it edits. Stages take one by reference so that, once
// warmed up by a few events, the hot path allocates nothing but error messages.
//
// Operation: every call that takes a context may reuse its buffers; a std::string_view a stage
// returns into the context (translate's output, run()'s payload) stays valid until the next call
// that uses the same context. Memory: the parser and buffers keep the capacity of the largest
// payload seen (simdjson's parser needs about 10 bytes per payload byte); a worker that sees one
// 10 MB event keeps ~100 MB until the context is destroyed.
//
// Concurrency: not thread-safe. One context per thread (router shard, sink worker); compiled specs
// (compiled_validate, compiled_translate, compiled_filter) are immutable and may be shared.
#pragma once

#include <memory>

namespace switchboard::pipeline {

namespace detail {
struct context_state;  // simdjson and RapidJSON stay in the .cc files
}  // namespace detail

class context {
 public:
  context();
  ~context();
  context(context&&) noexcept;
  context& operator=(context&&) noexcept;
  context(const context&) = delete;
  context& operator=(const context&) = delete;

  // For the stages' implementation only.
  [[nodiscard]] detail::context_state& state() noexcept { return *_state; }

 private:
  std::unique_ptr<detail::context_state> _state;
};

}  // namespace switchboard::pipeline
