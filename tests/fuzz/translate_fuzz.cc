// libFuzzer target: the pipeline stages (broker/pipeline/) on arbitrary specs and payloads. The
// input is `<spec>\n<payload>`: the bytes up to the first newline are compiled as a translate spec
// (and as a validate spec and a filter), the rest is the event. Nothing may crash, hang, recurse
// without bound or read out of bounds; a translate output must be JSON that translates the same
// way on a fresh context (determinism), and compile errors and event errors must carry messages.
#include "broker/pipeline/filter.h"
#include "broker/pipeline/translate.h"
#include "broker/pipeline/validate.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace pl = switchboard::pipeline;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::size_t nl = bytes.find('\n');
  const std::string_view spec = bytes.substr(0, nl);
  const std::string_view payload = nl == std::string_view::npos ? std::string_view() : bytes.substr(nl + 1);

  static pl::context cx;  // reused across inputs, as a worker's is across events
  const auto any_json = pl::validate_spec::compile("{}");
  if (!any_json) std::abort();

  if (auto t = pl::translate_spec::compile(spec)) {
    auto out = t->apply(payload, cx, 1 << 20);
    if (out) {
      const std::string first(*out);
      pl::context fresh;
      auto again = t->apply(payload, fresh, 1 << 20);
      if (!again || *again != first) std::abort();
      if (!any_json->check(first, fresh)) std::abort();
      // The spec's canonical form compiles to the same program.
      auto recompiled = pl::translate_spec::compile(t->spec_json());
      if (!recompiled) std::abort();
      auto third = recompiled->apply(payload, fresh, 1 << 20);
      if (!third || *third != first) std::abort();
    } else if (out.error().message.empty() || out.error().code != pl::errc::invalid_event) {
      std::abort();
    }
  } else if (t.error().message.empty() || t.error().code != pl::errc::invalid_spec) {
    std::abort();
  }

  if (auto v = pl::validate_spec::compile(spec)) {
    auto r = v->check(payload, cx);
    if (!r && r.error().message.empty()) std::abort();
  }
  if (auto f = pl::filter_spec::compile(spec)) {
    (void)f->matches(payload, cx);
    auto again = pl::filter_spec::compile(f->to_json());
    if (!again || !(*again == *f)) std::abort();
  }
  return 0;
}
