// Property-style tests of translate over seeded random payloads and specs: the output is a function
// of (spec, payload) only (not of the context, its history or the thread), is valid JSON, and keeps
// the input's member order.
#include "broker/pipeline/translate.h"
#include "broker/pipeline/validate.h"

#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace switchboard::pipeline {
namespace {

class random_json {
 public:
  explicit random_json(std::uint32_t seed) : _rng(seed) {}

  std::string key() {
    static const char* keys[] = {"a", "b", "c", "d", "0", "1", "caf\\u00e9", "x\\\"y", "", "a a"};
    return std::string("\"") + keys[pick(10)] + "\"";
  }
  std::string path() {
    static const char* segs[] = {"a", "b", "c", "d", "0", "1"};
    std::string p = segs[pick(6)];
    for (std::size_t n = pick(3); n > 0; --n) p += std::string(".") + segs[pick(6)];
    return "\"" + p + "\"";
  }
  std::string value(int depth) {
    switch (pick(depth > 3 ? 6 : 8)) {
      case 0: return "null";
      case 1: return pick(2) ? "true" : "false";
      case 2: return std::to_string(static_cast<std::int64_t>(_rng()) - (1LL << 31));
      case 3: return pick(2) ? "-0.0" : "1.5e-7";
      case 4: return "\"s" + std::to_string(pick(100)) + "\\n\\u00e9\"";
      case 5: return "18446744073709551615";
      case 6: {
        std::string out = "[";
        for (std::size_t n = pick(4); n > 0; --n) out += value(depth + 1) + (n > 1 ? "," : "");
        return out + "]";
      }
      default: return object(depth + 1);
    }
  }
  std::string object(int depth) {
    std::string out = "{";
    for (std::size_t n = pick(6); n > 0; --n) out += key() + ":" + value(depth) + (n > 1 ? "," : "");
    return out + "}";
  }
  std::string spec() {
    std::vector<std::string> ops;
    const auto map_of = [&](bool paths_as_values) {
      std::string out = "{";
      std::vector<std::string> used;
      for (std::size_t n = pick(4); n > 0; --n) {
        std::string k = path();
        if (std::find(used.begin(), used.end(), k) != used.end()) continue;
        used.push_back(k);
        out += (out.size() > 1 ? "," : "") + k + ":" + (paths_as_values ? path() : value(2));
      }
      return out + "}";
    };
    if (pick(2)) ops.push_back("\"copy\":" + map_of(true));
    if (pick(2)) ops.push_back("\"rename\":" + map_of(true));
    if (pick(2)) {
      std::string drop = "[";
      for (std::size_t n = pick(3); n > 0; --n) drop += path() + (n > 1 ? "," : "");
      ops.push_back("\"drop\":" + drop + "]");
    }
    if (pick(2)) ops.push_back("\"set\":" + map_of(false));
    if (pick(4) == 0) ops.push_back(R"("template":{"k":"{{a}}","l":["{{b.0}}",1],"m":{"n":"{{c.d}}"}})");
    std::shuffle(ops.begin(), ops.end(), _rng);
    std::string out = "{";
    for (std::size_t i = 0; i < ops.size(); ++i) out += (i ? "," : "") + ops[i];
    return out + "}";
  }

 private:
  std::size_t pick(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(_rng); }
  std::mt19937 _rng;
};

std::string apply(const compiled_translate& t, const std::string& payload, context& cx) {
  auto out = t.apply(payload, cx);
  return out ? std::string(*out) : "error: " + out.error().message;
}

TEST(translate_property_test, output_depends_only_on_spec_and_payload) {
  random_json gen(20240515);
  const auto any_json = validate_spec::compile("{}");
  ASSERT_TRUE(any_json);
  context warm;  // reused across every case: its history must not leak into outputs
  context check;
  std::size_t compiled = 0;
  for (int i = 0; i < 3000; ++i) {
    const std::string spec = gen.spec();
    auto t = translate_spec::compile(spec);
    if (!t) {
      // rename into itself is the only spec error random specs can produce.
      EXPECT_NE(t.error().message.find("moves a field inside itself"), std::string::npos) << spec;
      continue;
    }
    ++compiled;
    const std::string payload = gen.object(0);
    const std::string first = apply(*t, payload, warm);
    context fresh;
    EXPECT_EQ(apply(*t, payload, fresh), first) << spec << "\n" << payload;
    EXPECT_EQ(apply(*t, payload, warm), first) << spec << "\n" << payload;
    // A recompiled spec behaves the same.
    auto again = translate_spec::compile(t->spec_json());
    ASSERT_TRUE(again);
    EXPECT_EQ(apply(*again, payload, fresh), first);
    ASSERT_EQ(first.rfind("error: ", 0), std::string::npos) << spec << "\n" << payload << "\n" << first;
    EXPECT_TRUE(any_json->check(first, check)) << first;
  }
  EXPECT_GT(compiled, 2000u);
}

TEST(translate_property_test, same_output_on_every_thread) {
  random_json gen(7);
  std::vector<std::pair<std::string, std::string>> cases;
  for (int i = 0; i < 200; ++i) cases.emplace_back(gen.spec(), gen.object(0));
  std::vector<compiled_translate> specs;
  std::vector<std::string> expected;
  context cx;
  for (const auto& [spec, payload] : cases) {
    auto t = translate_spec::compile(spec);
    if (!t) continue;
    specs.push_back(*t);
    expected.push_back(apply(*t, payload, cx));
  }
  std::vector<std::vector<std::string>> got(4);
  {
    std::vector<std::jthread> threads;
    for (auto& out : got) {
      threads.emplace_back([&] {
        context mine;
        std::size_t k = 0;
        for (const auto& [spec, payload] : cases) {
          if (!translate_spec::compile(spec)) continue;
          out.push_back(apply(specs[k++], payload, mine));
        }
      });
    }
  }
  for (const auto& out : got) EXPECT_EQ(out, expected);
}

TEST(translate_property_test, drop_and_set_keep_the_input_order) {
  context cx;
  auto t = translate_spec::compile(R"({"drop":["b","d"],"set":{"z":1,"c":"C"}})");
  ASSERT_TRUE(t);
  EXPECT_EQ(apply(*t, R"({"e":5,"d":4,"c":3,"b":2,"a":1})", cx), R"({"e":5,"c":"C","a":1,"z":1})");
  EXPECT_EQ(apply(*t, R"({"a":1,"b":2,"c":3,"d":4,"e":5})", cx), R"({"a":1,"c":"C","e":5,"z":1})");
}

}  // namespace
}  // namespace switchboard::pipeline
