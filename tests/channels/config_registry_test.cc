// Tests broker/channels/config_registry.cc: storing configs, inheritance from patterns with the
// source of every attribute, the specificity rule, snapshots/generations, and a reader racing a
// writer (run under TSan: label `tsan`).
#include "broker/channels/config_registry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace switchboard::channels {
namespace {

using std::chrono::milliseconds;

channel_config cfg(std::string_view json) {
  auto r = parse_config(json);
  EXPECT_TRUE(r.has_value()) << json << " -> " << (r ? "" : r.error().message);
  return r.value_or(channel_config{});
}

channel_config patch_of(std::string_view json) {
  auto r = parse_config(json, parse_mode::patch);
  EXPECT_TRUE(r.has_value()) << json << " -> " << (r ? "" : r.error().message);
  return r.value_or(channel_config{});
}

class config_registry_test : public ::testing::Test {
 protected:
  config_registry_test() : registry(registry_defaults{.max_payload_bytes = 4096}) {}

  void put_ok(std::string_view name, std::string_view json) {
    const auto r = registry.put(name, cfg(json));
    ASSERT_TRUE(r) << name << ": " << r.error().message;
  }

  effective_config effective_ok(std::string_view channel) {
    auto r = registry.effective(channel);
    EXPECT_TRUE(r) << channel << ": " << (r ? "" : r.error().message);
    return r.value_or(effective_config{});
  }

  config_registry registry;
};

TEST_F(config_registry_test, an_empty_registry_gives_the_defaults) {
  const effective_config e = effective_ok("acme.calls.CA1");
  EXPECT_EQ(e.name, "acme.calls.CA1");
  EXPECT_EQ(e.config.durable, false);
  EXPECT_EQ(e.config.retention, retention_policy{});
  EXPECT_EQ(e.config.slow_consumer, slow_consumer_policy::disconnect);
  EXPECT_EQ(e.config.dedupe_window, milliseconds(0));
  EXPECT_EQ(e.config.max_payload_bytes, 4096u);
  EXPECT_EQ(e.config.permissions, permission_lists{});
  EXPECT_TRUE(e.config.permissions->may_publish("anyone"));
  EXPECT_EQ(e.config.route, std::vector<std::string>{});
  EXPECT_EQ(e.config.publish_to_parent, false);
  EXPECT_EQ(e.config.order, default_stage_order());
  EXPECT_FALSE(e.config.conflate_key || e.config.validate || e.config.translate || e.config.delegate || e.config.webhook);
  for (const std::string& s : e.sources) EXPECT_EQ(s, "default");

  EXPECT_EQ(effective_to_json(e),
            R"({"name":"acme.calls.CA1","config":{"durable":false,"retention":{},"slow_consumer":"disconnect",)"
            R"("conflate_key":null,"dedupe_window":"0s","max_payload_bytes":4096,)"
            R"("permissions":{"publish":["*"],"subscribe":["*"]},"validate":null,"translate":null,"delegate":null,)"
            R"("route":[],"webhook":null,"publish_to_parent":false,)"
            R"("order":["validate","delegate","translate","route","webhook","publish_to_parent"]},)"
            R"("sources":{"durable":"default","retention":"default","slow_consumer":"default",)"
            R"("conflate_key":"default","dedupe_window":"default","max_payload_bytes":"default",)"
            R"("permissions":"default","validate":"default","translate":"default","delegate":"default",)"
            R"("route":"default","webhook":"default","publish_to_parent":"default","order":"default"}})");
}

TEST_F(config_registry_test, registry_defaults_apply) {
  config_registry r(registry_defaults{.max_payload_bytes = 10, .slow_consumer = slow_consumer_policy::drop_oldest});
  const auto e = r.effective("a");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->config.max_payload_bytes, 10u);
  EXPECT_EQ(e->config.slow_consumer, slow_consumer_policy::drop_oldest);
  EXPECT_THROW(config_registry(registry_defaults{.slow_consumer = slow_consumer_policy::conflate}),
               std::invalid_argument);
}

TEST_F(config_registry_test, a_pattern_is_inherited_and_the_channel_overrides) {
  put_ok("acme.calls.>", R"({"durable":true,"slow_consumer":"drop_oldest","retention":{"max_age":"24h"}})");
  put_ok("acme.calls.CA1", R"({"slow_consumer":"spill","max_payload_bytes":100})");

  const effective_config e = effective_ok("acme.calls.CA1");
  EXPECT_EQ(e.config.durable, true);
  EXPECT_EQ(e.source(attribute::durable), "acme.calls.>");
  EXPECT_EQ(e.config.retention->max_age, milliseconds(86'400'000));
  EXPECT_EQ(e.source(attribute::retention), "acme.calls.>");
  EXPECT_EQ(e.config.slow_consumer, slow_consumer_policy::spill);
  EXPECT_EQ(e.source(attribute::slow_consumer), "channel");
  EXPECT_EQ(e.config.max_payload_bytes, 100u);
  EXPECT_EQ(e.source(attribute::max_payload_bytes), "channel");
  EXPECT_EQ(e.source(attribute::dedupe_window), "default");

  const std::string json = effective_to_json(e);
  EXPECT_NE(json.find(R"("sources":{"durable":"acme.calls.>","retention":"acme.calls.>","slow_consumer":"channel",)"),
            std::string::npos)
      << json;

  // A sibling gets the pattern's values; a channel outside the pattern gets none of them.
  const effective_config sibling = effective_ok("acme.calls.CA2.status");
  EXPECT_EQ(sibling.config.slow_consumer, slow_consumer_policy::drop_oldest);
  EXPECT_EQ(sibling.source(attribute::slow_consumer), "acme.calls.>");
  const effective_config other = effective_ok("acme.sms.SM1");
  EXPECT_EQ(other.config.durable, false);
  EXPECT_EQ(other.source(attribute::durable), "default");
  // `>` needs at least one more token: the pattern's prefix itself is not matched.
  EXPECT_EQ(effective_ok("acme.calls").source(attribute::durable), "default");
}

TEST_F(config_registry_test, an_exact_channel_config_is_not_inherited_by_children) {
  put_ok("acme.calls", R"({"durable":true})");
  EXPECT_EQ(effective_ok("acme.calls").config.durable, true);
  EXPECT_EQ(effective_ok("acme.calls.CA1").config.durable, false);
}

TEST_F(config_registry_test, the_most_specific_pattern_wins_per_attribute) {
  // Channel acme.calls.CA1. Ranking (most specific first):
  //   *.calls.CA1, acme.*.CA1, acme.calls.*   2 literals, 1 `*`   (tie broken by name: '*' < 'a')
  //   acme.calls.>                            2 literals, `>`
  //   acme.>                                  1 literal
  //   >                                       0 literals
  put_ok(">", R"({"durable":true,"dedupe_window":"1s","max_payload_bytes":1,"publish_to_parent":true,
                  "route":["r.root"],"order":["route"]})");
  put_ok("acme.>", R"({"dedupe_window":"2s","max_payload_bytes":2,"publish_to_parent":false,"route":["r.acme"]})");
  put_ok("acme.calls.>", R"({"max_payload_bytes":3,"route":["r.calls_rest"],"schema":{"required":["x"]}})");
  put_ok("acme.calls.*", R"({"route":["r.calls_star"],"webhook":{"uris":["http://u"]}})");
  put_ok("acme.*.CA1", R"({"route":["r.star_ca1"],"conflate_key":"k1"})");
  put_ok("*.calls.CA1", R"({"conflate_key":"k0"})");

  const effective_config e = effective_ok("acme.calls.CA1");
  EXPECT_EQ(e.source(attribute::conflate_key), "*.calls.CA1");
  EXPECT_EQ(e.config.conflate_key, "k0");
  EXPECT_EQ(e.source(attribute::route), "acme.*.CA1");
  EXPECT_EQ(e.config.route, std::vector<std::string>{"r.star_ca1"});
  EXPECT_EQ(e.source(attribute::webhook), "acme.calls.*");
  EXPECT_EQ(e.source(attribute::validate), "acme.calls.>");
  EXPECT_EQ(e.source(attribute::max_payload_bytes), "acme.calls.>");
  EXPECT_EQ(e.config.max_payload_bytes, 3u);
  EXPECT_EQ(e.source(attribute::dedupe_window), "acme.>");
  EXPECT_EQ(e.config.dedupe_window, milliseconds(2000));
  EXPECT_EQ(e.source(attribute::publish_to_parent), "acme.>");
  EXPECT_EQ(e.config.publish_to_parent, false);
  EXPECT_EQ(e.source(attribute::durable), ">");
  EXPECT_EQ(e.config.durable, true);
  EXPECT_EQ(e.source(attribute::order), ">");
  EXPECT_EQ(e.source(attribute::retention), "default");

  // A channel only some patterns match: acme.calls.CA2 skips *.calls.CA1 and acme.*.CA1.
  const effective_config e2 = effective_ok("acme.calls.CA2");
  EXPECT_EQ(e2.source(attribute::route), "acme.calls.*");
  EXPECT_EQ(e2.source(attribute::conflate_key), "default");
}

TEST_F(config_registry_test, fewer_wildcards_beat_more_when_literals_tie) {
  put_ok("acme.*.*", R"({"max_payload_bytes":1})");
  put_ok("acme.>", R"({"max_payload_bytes":2})");
  EXPECT_EQ(effective_ok("acme.x.y").source(attribute::max_payload_bytes), "acme.>");
  put_ok("acme.x.*", R"({"max_payload_bytes":3})");
  EXPECT_EQ(effective_ok("acme.x.y").source(attribute::max_payload_bytes), "acme.x.*");
}

TEST_F(config_registry_test, erase_restores_inheritance) {
  put_ok("acme.calls.>", R"({"durable":true,"slow_consumer":"drop_oldest"})");
  put_ok("acme.calls.CA1", R"({"slow_consumer":"spill","durable":false})");
  EXPECT_EQ(effective_ok("acme.calls.CA1").config.durable, false);

  EXPECT_TRUE(registry.erase("acme.calls.CA1"));
  const effective_config e = effective_ok("acme.calls.CA1");
  EXPECT_EQ(e.config.durable, true);
  EXPECT_EQ(e.source(attribute::durable), "acme.calls.>");
  EXPECT_EQ(e.config.slow_consumer, slow_consumer_policy::drop_oldest);

  EXPECT_TRUE(registry.erase("acme.calls.>"));
  EXPECT_EQ(effective_ok("acme.calls.CA1").source(attribute::durable), "default");
  const std::uint64_t g = registry.generation();
  EXPECT_FALSE(registry.erase("acme.calls.>"));
  EXPECT_EQ(registry.generation(), g);
}

TEST_F(config_registry_test, put_rejects_bad_names_and_configs_and_changes_nothing) {
  const std::uint64_t g = registry.generation();
  auto r = registry.put("a..b", cfg("{}"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (config_error{400, "invalid_channel", R"(channel "a..b" has an empty token at position 2)"}));
  r = registry.put("a.b*", cfg("{}"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (config_error{400, "invalid_channel",
                                     R"(channel "a.b*" has a wildcard '*' in token 2; channel names may not contain wildcards)"}));
  r = registry.put("a.>.b", cfg("{}"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (config_error{400, "invalid_pattern", R"(pattern "a.>.b": '>' must be the last token)"}));
  r = registry.put("", cfg("{}"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (config_error{400, "invalid_channel", "channel name is empty"}));

  channel_config bad;
  bad.slow_consumer = slow_consumer_policy::conflate;
  r = registry.put("a.b", bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (config_error{422, "invalid_attribute",
                                     R"(attribute "conflate_key" is required when slow_consumer is "conflate")"}));
  EXPECT_EQ(registry.generation(), g);
  EXPECT_TRUE(registry.list().empty());

  const auto e = registry.effective("a.*");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().http_status, 400);
  EXPECT_EQ(e.error().code, "invalid_channel");
}

TEST_F(config_registry_test, get_list_and_generations) {
  const std::uint64_t g0 = registry.generation();
  EXPECT_EQ(g0, 1u);
  put_ok("b.*", R"({"durable":true})");
  put_ok("a.x", R"({"max_payload_bytes":5})");
  EXPECT_EQ(registry.generation(), g0 + 2);

  EXPECT_EQ(registry.get("b.*"), cfg(R"({"durable":true})"));
  EXPECT_FALSE(registry.get("b.x"));  // own config only, not effective
  const auto all = registry.list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].first, "a.x");
  EXPECT_EQ(all[1].first, "b.*");

  // Storing an equal config publishes nothing; a different one does.
  put_ok("a.x", R"({"max_payload_bytes":5})");
  EXPECT_EQ(registry.generation(), g0 + 2);

  // A held snapshot is immutable: later changes are not visible through it.
  const auto old = registry.snapshot();
  put_ok("a.x", R"({"max_payload_bytes":6})");
  EXPECT_EQ(registry.generation(), g0 + 3);
  EXPECT_EQ(old->generation(), g0 + 2);
  EXPECT_EQ(old->find("a.x")->max_payload_bytes, 5u);
  EXPECT_EQ(old->effective("a.x").config.max_payload_bytes, 5u);
  EXPECT_EQ(registry.snapshot()->effective("a.x").config.max_payload_bytes, 6u);
  EXPECT_EQ(registry.snapshot()->generation(), registry.generation());
}

TEST_F(config_registry_test, patch_merges_into_the_stored_config) {
  auto r = registry.patch("acme.calls.>", patch_of(R"({"durable":true,"route":["x.y"]})"));
  ASSERT_TRUE(r) << r.error().message;
  r = registry.patch("acme.calls.>", patch_of(R"({"route":null,"slow_consumer":"spill"})"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(to_json(*r), R"({"durable":true,"slow_consumer":"spill"})");
  EXPECT_EQ(registry.get("acme.calls.>"), *r);

  const std::uint64_t g = registry.generation();
  r = registry.patch("acme.calls.>", patch_of(R"({"slow_consumer":"conflate"})"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, R"(attribute "conflate_key" is required when slow_consumer is "conflate")");
  r = registry.patch("bad..name", patch_of(R"({"durable":true})"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "invalid_channel");
  EXPECT_EQ(registry.generation(), g);
}

// One writer puts and erases while readers resolve effective configs; every answer must be one a
// consistent snapshot could give. Under TSan this also checks the snapshot publication.
TEST_F(config_registry_test, readers_race_a_writer) {
  constexpr int rounds = 300;
  std::atomic<bool> done{false};
  std::atomic<long> reads{0};

  const auto reader = [&] {
    std::uint64_t last_generation = 0;
    std::uint64_t cached_generation = 0;
    effective_config cached;
    while (!done.load(std::memory_order_acquire)) {
      // The shard pattern: re-resolve only when the generation moved.
      const std::uint64_t g = registry.generation();
      EXPECT_GE(g, last_generation);
      last_generation = g;
      if (g != cached_generation) {
        const auto snap = registry.snapshot();
        EXPECT_GE(snap->generation(), g);
        cached = snap->effective("acme.calls.CA1");
        cached_generation = snap->generation();
      }
      const std::string& durable_source = cached.source(attribute::durable);
      if (durable_source == "default") {
        EXPECT_EQ(cached.config.durable, false);
      } else if (durable_source == "acme.calls.>") {
        EXPECT_EQ(cached.config.durable, true);
      } else {
        EXPECT_EQ(durable_source, "channel");
        EXPECT_EQ(cached.config.durable, false);
      }
      const auto e = registry.effective("acme.calls.CA1");
      EXPECT_TRUE(e.has_value());
      if (e && e->source(attribute::slow_consumer) == "channel") {
        EXPECT_EQ(e->config.slow_consumer, slow_consumer_policy::conflate);
        EXPECT_TRUE(e->config.conflate_key.has_value());
      }
      reads.fetch_add(1, std::memory_order_relaxed);
    }
  };

  std::vector<std::jthread> readers;
  readers.emplace_back(reader);
  readers.emplace_back(reader);
  std::jthread writer([&] {
    const channel_config pattern = cfg(R"({"durable":true})");
    const channel_config own = cfg(R"({"durable":false,"slow_consumer":"conflate","conflate_key":"sid"})");
    for (int i = 0; i < rounds; ++i) {
      EXPECT_TRUE(registry.put("acme.calls.>", pattern));
      EXPECT_TRUE(registry.put("acme.calls.CA1", own));
      EXPECT_TRUE(registry.put("other." + std::to_string(i % 7), pattern));
      EXPECT_TRUE(registry.erase("acme.calls.CA1"));
      if (i % 2 == 0) {
        EXPECT_TRUE(registry.erase("acme.calls.>"));
      }
    }
    // Keep writing until both readers have run a while, so the race is real on any scheduler.
    for (int i = 0; reads.load(std::memory_order_relaxed) < 1000 && i < 1'000'000; ++i) {
      EXPECT_TRUE(registry.put("acme.calls.CA1", own));
      EXPECT_TRUE(registry.erase("acme.calls.CA1"));
    }
    done.store(true, std::memory_order_release);
  });
  writer.join();
  readers.clear();
  EXPECT_GE(reads.load(), 1000);
  EXPECT_EQ(registry.get("acme.calls.>"), cfg(R"({"durable":true})"));
}

}  // namespace
}  // namespace switchboard::channels
