// Micro-benchmarks for broker/pipeline/: validate, translate (small and ~1 KB payloads), subscriber
// filter match / miss, and validate+translate through run_stages. One event per iteration, so the
// reported time is ns/event.
//
// Release numbers only:  cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=Release
//                        cmake --build build-rel --target pipeline_bench && build-rel/bench/pipeline_bench
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "broker/pipeline/filter.h"
#include "broker/pipeline/pipeline.h"
#include "broker/pipeline/translate.h"
#include "broker/pipeline/validate.h"

namespace {

namespace pl = switchboard::pipeline;

constexpr std::string_view small_event =
    R"({"call_sid":"CA5f0e3c1b2a","status":"ringing","duration":12.5,"debug":{"trace":"x"},)"
    R"("from":{"number":"+14155550100"},"data":{"from":"+14155550100","to":"+14155550199"}})";

// A CloudEvents-style call event of about 1 KB.
std::string large_event() {
  std::string e =
      R"({"specversion":"1.0","id":"9f1c2b7e-4c1d-4e8b-a0d2-7b1f6e2c9a10","source":"switchboard/telephony",)"
      R"("type":"call.status.v1","time":"2024-05-01T12:00:00.123456Z","subject":"CA5f0e3c1b2a",)"
      R"("channel":"acme.calls.CA5f0e3c1b2a.status","seq":421,"call_seq":7,"debug":{"node":"sb-3","trace":[1,2,3]},)"
      R"("data":{"call_sid":"CA5f0e3c1b2a","account_sid":"AC0123456789abcdef","status":"in-progress",)"
      R"("direction":"outbound-api","from":{"number":"+14155550100","name":"Front desk"},)"
      R"("to":{"number":"+14155550199","name":"Alice \"Al\" Smith"},"duration":37,"price":-0.0125,)"
      R"("answered_by":"human","caller_country":"US","callee_country":"US","queue_time_ms":83,)"
      R"("tags":["vip","retry","sales"],"sip":{"call_id":"a84b4c76e66710@pc33.example.com","codec":"PCMU",)"
      R"("remote":"203.0.113.7:5060","headers":{"X-Account":"acme","X-Campaign":"spring-2024"}},)"
      R"("application":{"sid":"AP1234","voice_url":"https://apps.example.com/voice/answer?x=1&y=2",)"
      R"("status_callback":"https://apps.example.com/voice/status"},"notes":"caf\u00e9 \u2615 \ud83d\ude00 tab\tx"}})";
  while (e.size() < 1000) e.insert(e.size() - 2, R"(,"pad":"xxxxxxxxxxxxxxxx")");
  return e;
}

template <typename T>
T must(std::expected<T, pl::error> r) {
  if (!r) {
    std::fprintf(stderr, "pipeline_bench: %s\n", r.error().message.c_str());
    std::abort();
  }
  return std::move(*r);
}

void run_validate(benchmark::State& state, std::string_view spec, std::string_view payload) {
  const auto v = must(pl::validate_spec::compile(spec));
  pl::context cx;
  for (auto _ : state) {
    auto r = v.check(payload, cx);
    if (!r) state.SkipWithError(r.error().message.c_str());
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * payload.size()));
}

void run_translate(benchmark::State& state, std::string_view spec, std::string_view payload) {
  const auto t = must(pl::translate_spec::compile(spec));
  pl::context cx;
  for (auto _ : state) {
    auto out = t.apply(payload, cx);
    if (!out) state.SkipWithError(out.error().message.c_str());
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * payload.size()));
}

void run_filter(benchmark::State& state, std::string_view spec, std::string_view payload, bool expect) {
  const auto f = must(pl::filter_spec::compile(spec));
  pl::context cx;
  if (f.matches(payload, cx) != expect) state.SkipWithError("unexpected filter result");
  for (auto _ : state) benchmark::DoNotOptimize(f.matches(payload, cx));
  state.SetItemsProcessed(state.iterations());
}

constexpr std::string_view validate_spec_json =
    R"({"required":{"call_sid":"string","duration":"number","data.from":"string"}})";
constexpr std::string_view translate_small_spec =
    R"({"rename":{"call_sid":"sid"},"drop":["debug"],"set":{"v":2},"copy":{"caller":"from.number"}})";
constexpr std::string_view translate_large_spec =
    R"({"rename":{"data.call_sid":"data.sid","data.from":"data.caller"},"drop":["debug","data.sip.headers"],)"
    R"("set":{"v":2,"meta.pipeline":"pbx"},"copy":{"caller":"data.from.number"}})";
constexpr std::string_view template_spec =
    R"({"template":{"id":"{{data.call_sid}}","status":"{{data.status}}","who":{"from":"{{data.from.number}}",)"
    R"("to":"{{data.to.number}}"},"tags":"{{data.tags}}","v":2}})";

void BM_validate_small(benchmark::State& s) { run_validate(s, validate_spec_json, small_event); }
void BM_validate_json_only_1k(benchmark::State& s) { run_validate(s, "{}", large_event()); }
void BM_translate_small(benchmark::State& s) { run_translate(s, translate_small_spec, small_event); }
void BM_translate_1k(benchmark::State& s) { run_translate(s, translate_large_spec, large_event()); }
void BM_translate_identity_1k(benchmark::State& s) { run_translate(s, "{}", large_event()); }
void BM_translate_template_1k(benchmark::State& s) { run_translate(s, template_spec, large_event()); }

// The 1 KB event without its escapes, so the filter's memmem early-out applies.
std::string plain_event() {
  std::string e = large_event();
  const std::string_view notes = R"("notes":")";
  const auto at = e.find(notes);
  e.replace(at, e.find('"', at + notes.size()) - at + 1, R"("notes":"plain")");
  const auto al = e.find(R"(Alice \"Al\" Smith)");
  e.replace(al, std::string_view(R"(Alice \"Al\" Smith)").size(), "Alice Smith");
  return e;
}

// The same filters on the plain event (the memmem early-out runs) and on the event with escapes
// (it cannot: straight to the parse).
constexpr std::string_view match_filter =
    R"({"data.call_sid":"CA5f0e3c1b2a","data.from.number":{"prefix":"+1415"}})";
constexpr std::string_view miss_value_filter = R"({"data.status":{"in":["ringing","queued"]}})";
constexpr std::string_view miss_absent_filter = R"({"data.recording_sid":"RE1"})";

void BM_filter_match_1k(benchmark::State& s) { run_filter(s, match_filter, plain_event(), true); }
void BM_filter_miss_value_1k(benchmark::State& s) { run_filter(s, miss_value_filter, plain_event(), false); }
void BM_filter_miss_absent_1k(benchmark::State& s) {
  run_filter(s, miss_absent_filter, plain_event(), false);
}
void BM_filter_match_escaped_1k(benchmark::State& s) { run_filter(s, match_filter, large_event(), true); }
void BM_filter_miss_absent_escaped_1k(benchmark::State& s) {
  run_filter(s, miss_absent_filter, large_event(), false);
}

void BM_run_stages_validate_translate_1k(benchmark::State& state) {
  pl::channel_stages stages;
  stages.order = must(pl::stage_order::from_json(R"(["validate","translate"])"));
  stages.validate = must(
      pl::validate_spec::compile(R"({"required":{"data.call_sid":"string","data.duration":"integer"}})"));
  stages.translate = must(pl::translate_spec::compile(translate_large_spec));
  const std::string payload = large_event();
  pl::context cx;
  for (auto _ : state) {
    auto step = pl::run_stages(stages, payload, 0, cx);
    if (!step) state.SkipWithError(step.error().message.c_str());
    benchmark::DoNotOptimize(step);
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_validate_small);
BENCHMARK(BM_validate_json_only_1k);
BENCHMARK(BM_translate_small);
BENCHMARK(BM_translate_1k);
BENCHMARK(BM_translate_identity_1k);
BENCHMARK(BM_translate_template_1k);
BENCHMARK(BM_filter_match_1k);
BENCHMARK(BM_filter_miss_value_1k);
BENCHMARK(BM_filter_miss_absent_1k);
BENCHMARK(BM_filter_match_escaped_1k);
BENCHMARK(BM_filter_miss_absent_escaped_1k);
BENCHMARK(BM_run_stages_validate_translate_1k);

}  // namespace

BENCHMARK_MAIN();
