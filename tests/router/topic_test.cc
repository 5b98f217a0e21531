// Tests for broker/router/topic.{h,cc}: validation (exact codes and messages), pattern matching,
// topic_trie, and the pinned channel hash.
#include "broker/router/topic.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::router {
namespace {

using namespace std::string_literals;

// ---- validation ---------------------------------------------------------------------------------

class topic_validation_test : public ::testing::Test {
 protected:
  // Asserts validate_channel(name) fails with code invalid_channel and exactly `message`.
  static void expect_bad_channel(std::string_view name, std::string_view message) {
    const auto r = validate_channel(name);
    ASSERT_FALSE(r.has_value()) << "accepted channel: " << name;
    EXPECT_EQ(r.error().code, "invalid_channel");
    EXPECT_EQ(r.error().message, message);
  }
  static void expect_bad_pattern(std::string_view pattern, std::string_view message) {
    const auto r = validate_pattern(pattern);
    ASSERT_FALSE(r.has_value()) << "accepted pattern: " << pattern;
    EXPECT_EQ(r.error().code, "invalid_pattern");
    EXPECT_EQ(r.error().message, message);
  }
};

TEST_F(topic_validation_test, accepts_valid_channels) {
  for (const std::string_view name :
       {"a", "tenant.calls.CA123.status", "a.b.c.d.e.f", "x-y_z.0.9", "caf\xc3\xa9.menu", "#.$.%", "a+b"}) {
    EXPECT_TRUE(validate_channel(name).has_value()) << name;
    EXPECT_TRUE(validate_pattern(name).has_value()) << name;  // every channel is a pattern too
  }
  EXPECT_TRUE(validate_channel(std::string(max_name_bytes, 'a')).has_value());
}

TEST_F(topic_validation_test, accepts_valid_patterns) {
  for (const std::string_view p : {"*", ">", "a.*", "a.>", "*.b.*", "*.*.>", "a.*.c.>", "tenant.calls.*.status"}) {
    EXPECT_TRUE(validate_pattern(p).has_value()) << p;
  }
}

TEST_F(topic_validation_test, empty) {
  expect_bad_channel("", "channel name is empty");
  expect_bad_pattern("", "pattern is empty");
}

TEST_F(topic_validation_test, too_long) {
  expect_bad_channel(std::string(1500, 'a'), "channel name is 1500 bytes (limit 1024)");
  expect_bad_channel(std::string(1025, 'a'), "channel name is 1025 bytes (limit 1024)");
  expect_bad_pattern(std::string(1025, 'a'), "pattern is 1025 bytes (limit 1024)");
  // Length is reported before any other problem.
  expect_bad_channel(std::string(2000, '.'), "channel name is 2000 bytes (limit 1024)");
}

TEST_F(topic_validation_test, empty_tokens) {
  expect_bad_channel("a..b", R"(channel "a..b" has an empty token at position 2)");
  expect_bad_channel(".a", R"(channel ".a" has an empty token at position 1)");
  expect_bad_channel("a.", R"(channel "a." has an empty token at position 2)");
  expect_bad_channel(".", R"(channel "." has an empty token at position 1)");
  expect_bad_channel("a.b.c..", R"(channel "a.b.c.." has an empty token at position 4)");
  expect_bad_pattern("a..b", R"(pattern "a..b" has an empty token at position 2)");
  expect_bad_pattern("*.", R"(pattern "*." has an empty token at position 2)");
  expect_bad_pattern(".>", R"(pattern ".>" has an empty token at position 1)");
}

TEST_F(topic_validation_test, forbidden_characters) {
  expect_bad_channel("a b", R"(channel "a b" has a forbidden character (space, 0x20) in token 1)");
  expect_bad_channel("a.b\tc", R"(channel "a.b\tc" has a forbidden character (tab, 0x09) in token 2)");
  expect_bad_channel("a.b\r", R"(channel "a.b\r" has a forbidden character (carriage return, 0x0d) in token 2)");
  expect_bad_channel("\n", R"(channel "\n" has a forbidden character (line feed, 0x0a) in token 1)");
  expect_bad_channel("a.\0.c"s, R"(channel "a.\x00.c" has a forbidden character (NUL, 0x00) in token 2)");
  expect_bad_pattern("a.x y", R"(pattern "a.x y" has a forbidden character (space, 0x20) in token 2)");
  expect_bad_pattern(" .>", R"(pattern " .>" has a forbidden character (space, 0x20) in token 1)");
}

TEST_F(topic_validation_test, quoting_keeps_messages_printable) {
  expect_bad_channel("q\"\\\x01\xff.\x7f.", R"(channel "q\"\\\x01\xff.\x7f." has an empty token at position 3)");
}

TEST_F(topic_validation_test, wildcards_in_channel_names) {
  expect_bad_channel("a.*", R"(channel "a.*" has a wildcard '*' in token 2; channel names may not contain wildcards)");
  expect_bad_channel(">", R"(channel ">" has a wildcard '>' in token 1; channel names may not contain wildcards)");
  expect_bad_channel("a*", R"(channel "a*" has a wildcard '*' in token 1; channel names may not contain wildcards)");
  expect_bad_channel("a.b>c.d",
                     R"(channel "a.b>c.d" has a wildcard '>' in token 2; channel names may not contain wildcards)");
}

TEST_F(topic_validation_test, partial_wildcards_in_patterns) {
  expect_bad_pattern("a*", R"(pattern "a*": '*' must be a whole token (found "a*" at position 1))");
  expect_bad_pattern("*a", R"(pattern "*a": '*' must be a whole token (found "*a" at position 1))");
  expect_bad_pattern("x.**", R"(pattern "x.**": '*' must be a whole token (found "**" at position 2))");
  expect_bad_pattern("x.>>", R"(pattern "x.>>": '>' must be a whole token (found ">>" at position 2))");
  expect_bad_pattern("a.b>.c", R"(pattern "a.b>.c": '>' must be a whole token (found "b>" at position 2))");
}

TEST_F(topic_validation_test, rest_wildcard_must_be_last) {
  expect_bad_pattern("a.>.b", R"(pattern "a.>.b": '>' must be the last token)");
  expect_bad_pattern(">.a", R"(pattern ">.a": '>' must be the last token)");
  expect_bad_pattern(">.>", R"(pattern ">.>": '>' must be the last token)");
  // The misplaced '>' (token 2) is found before the empty token 3.
  expect_bad_pattern("a.>.", R"(pattern "a.>.": '>' must be the last token)");
}

TEST_F(topic_validation_test, first_problem_wins) {
  expect_bad_channel("a b..c", R"(channel "a b..c" has a forbidden character (space, 0x20) in token 1)");
  expect_bad_channel("a..b c", R"(channel "a..b c" has an empty token at position 2)");
  expect_bad_pattern("a*.b c", R"(pattern "a*.b c": '*' must be a whole token (found "a*" at position 1))");
  // Within a token the first offending byte wins: here the '*', not the space after it.
  expect_bad_pattern("a.* ", R"(pattern "a.* ": '*' must be a whole token (found "* " at position 2))");
}

TEST_F(topic_validation_test, random_bytes_never_crash_and_errors_are_printable) {
  std::mt19937_64 rng(42);
  const std::string alphabet = "ab.*> \t\r\n\x01\xff\"\\"s + '\0';
  for (int i = 0; i < 5000; ++i) {
    std::string s(rng() % 12, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    for (const auto& r : {validate_channel(s), validate_pattern(s)}) {
      if (r) continue;
      for (const char c : r.error().message) {
        ASSERT_TRUE(c >= 0x20 && c < 0x7f) << r.error().message;
      }
    }
  }
}

// ---- pattern_matches ----------------------------------------------------------------------------

TEST(pattern_matches, exact) {
  EXPECT_TRUE(pattern_matches("a", "a"));
  EXPECT_TRUE(pattern_matches("a.b.c", "a.b.c"));
  EXPECT_FALSE(pattern_matches("a.b.c", "a.b"));
  EXPECT_FALSE(pattern_matches("a.b", "a.b.c"));
  EXPECT_FALSE(pattern_matches("a.b", "a.bc"));
  EXPECT_FALSE(pattern_matches("a.bc", "a.b"));
  EXPECT_FALSE(pattern_matches("ab", "a.b"));
}

TEST(pattern_matches, star_is_exactly_one_token) {
  EXPECT_TRUE(pattern_matches("*", "a"));
  EXPECT_TRUE(pattern_matches("a.*", "a.b"));
  EXPECT_TRUE(pattern_matches("a.*.c", "a.b.c"));
  EXPECT_TRUE(pattern_matches("*.*", "x.y"));
  EXPECT_FALSE(pattern_matches("*", "a.b"));
  EXPECT_FALSE(pattern_matches("a.*", "a"));       // not zero tokens
  EXPECT_FALSE(pattern_matches("a.*.c", "a.c"));    // not zero tokens
  EXPECT_FALSE(pattern_matches("a.*.c", "a.b.x.c"));  // not two tokens
  EXPECT_FALSE(pattern_matches("a.*", "a.b.c"));
  EXPECT_FALSE(pattern_matches("a.*.c", "a.b.d"));
}

TEST(pattern_matches, rest_is_one_or_more_tokens) {
  EXPECT_TRUE(pattern_matches(">", "a"));
  EXPECT_TRUE(pattern_matches(">", "a.b.c"));
  EXPECT_TRUE(pattern_matches("a.>", "a.b"));
  EXPECT_TRUE(pattern_matches("a.>", "a.b.c.d"));
  EXPECT_TRUE(pattern_matches("*.b.>", "a.b.c"));
  EXPECT_FALSE(pattern_matches("a.>", "a"));  // `>` needs at least one token
  EXPECT_FALSE(pattern_matches("a.>", "b.c"));
  EXPECT_FALSE(pattern_matches("a.b.>", "a.b"));
  EXPECT_FALSE(pattern_matches("*.b.>", "a.b"));
}

// ---- topic_trie ---------------------------------------------------------------------------------

class topic_trie_test : public ::testing::Test {
 protected:
  // The values visited for `channel`, sorted (visit order is unspecified).
  std::vector<int> matches(std::string_view channel) const {
    std::vector<int> out;
    trie.match(channel, [&](const int& v) { out.push_back(v); });
    std::ranges::sort(out);
    return out;
  }

  topic_trie<int> trie;
};

TEST_F(topic_trie_test, empty_trie_matches_nothing) {
  EXPECT_TRUE(trie.empty());
  EXPECT_EQ(trie.size(), 0u);
  EXPECT_EQ(matches("a.b"), std::vector<int>{});
}

TEST_F(topic_trie_test, exact_star_and_rest) {
  EXPECT_TRUE(trie.insert("a.b.c", 1));
  EXPECT_TRUE(trie.insert("a.*.c", 2));
  EXPECT_TRUE(trie.insert("a.>", 3));
  EXPECT_TRUE(trie.insert(">", 4));
  EXPECT_TRUE(trie.insert("*", 5));
  EXPECT_TRUE(trie.insert("a.b", 6));
  EXPECT_EQ(trie.size(), 6u);
  EXPECT_EQ(matches("a.b.c"), (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(matches("a.x.c"), (std::vector<int>{2, 3, 4}));
  EXPECT_EQ(matches("a.b"), (std::vector<int>{3, 4, 6}));
  EXPECT_EQ(matches("a"), (std::vector<int>{4, 5}));  // `a.>` needs one more token
  EXPECT_EQ(matches("b.c"), (std::vector<int>{4}));
  EXPECT_EQ(matches("a.b.c.d"), (std::vector<int>{3, 4}));
}

TEST_F(topic_trie_test, value_under_overlapping_patterns_is_visited_once_per_pattern) {
  EXPECT_TRUE(trie.insert("a.*", 7));
  EXPECT_TRUE(trie.insert("a.>", 7));
  EXPECT_TRUE(trie.insert("a.b", 7));
  EXPECT_TRUE(trie.insert("a.b", 8));
  EXPECT_EQ(matches("a.b"), (std::vector<int>{7, 7, 7, 8}));
  EXPECT_EQ(matches("a.c"), (std::vector<int>{7, 7}));
  EXPECT_EQ(matches("a.c.d"), (std::vector<int>{7}));
}

TEST_F(topic_trie_test, duplicate_pair_is_stored_once) {
  EXPECT_TRUE(trie.insert("a.>", 1));
  EXPECT_FALSE(trie.insert("a.>", 1));
  EXPECT_TRUE(trie.insert("a.*", 1));
  EXPECT_FALSE(trie.insert("a.*", 1));
  EXPECT_EQ(trie.size(), 2u);
  EXPECT_EQ(matches("a.b"), (std::vector<int>{1, 1}));
  EXPECT_TRUE(trie.erase("a.>", 1));
  EXPECT_FALSE(trie.erase("a.>", 1));
  EXPECT_EQ(matches("a.b"), (std::vector<int>{1}));
}

TEST_F(topic_trie_test, erase) {
  ASSERT_TRUE(trie.insert("a.b.c", 1));
  ASSERT_TRUE(trie.insert("a.b.c", 2));
  ASSERT_TRUE(trie.insert("a.*.c", 3));
  ASSERT_TRUE(trie.insert("a.b.>", 4));
  EXPECT_FALSE(trie.erase("a.b.c", 99));  // unknown value
  EXPECT_FALSE(trie.erase("a.b", 1));     // prefix node exists, pair does not
  EXPECT_FALSE(trie.erase("a.b.c.d", 1)); // no such node
  EXPECT_FALSE(trie.erase("a.*", 3));
  EXPECT_FALSE(trie.erase("a.>", 4));
  EXPECT_FALSE(trie.erase("x.*.>", 4));
  EXPECT_EQ(trie.size(), 4u);

  EXPECT_TRUE(trie.erase("a.b.c", 1));
  EXPECT_EQ(matches("a.b.c"), (std::vector<int>{2, 3, 4}));
  EXPECT_EQ(matches("a.b.x"), (std::vector<int>{4}));
  EXPECT_TRUE(trie.erase("a.b.>", 4));
  EXPECT_EQ(matches("a.b.x"), (std::vector<int>{}));
  EXPECT_TRUE(trie.erase("a.*.c", 3));
  EXPECT_TRUE(trie.erase("a.b.c", 2));
  EXPECT_TRUE(trie.empty());
  EXPECT_EQ(matches("a.b.c"), (std::vector<int>{}));

  // Pruned paths can be used again.
  EXPECT_TRUE(trie.insert("a.b.c", 5));
  EXPECT_EQ(matches("a.b.c"), (std::vector<int>{5}));
}

TEST_F(topic_trie_test, erasing_a_leaf_keeps_values_on_its_prefix) {
  ASSERT_TRUE(trie.insert("a", 1));
  ASSERT_TRUE(trie.insert("a.b", 2));
  ASSERT_TRUE(trie.insert("*.b", 3));
  ASSERT_TRUE(trie.insert("*", 4));
  EXPECT_TRUE(trie.erase("a.b", 2));
  EXPECT_TRUE(trie.erase("*.b", 3));
  EXPECT_EQ(matches("a"), (std::vector<int>{1, 4}));
  EXPECT_EQ(matches("a.b"), (std::vector<int>{}));
}

TEST(topic_trie, move_only_values_and_move) {
  topic_trie<std::string> a;
  ASSERT_TRUE(a.insert("x.*", "sub-1"));
  topic_trie<std::string> b = std::move(a);
  std::vector<std::string> seen;
  b.match("x.y", [&](const std::string& v) { seen.push_back(v); });
  EXPECT_EQ(seen, std::vector<std::string>{"sub-1"});
  EXPECT_EQ(b.size(), 1u);
}

// Random patterns and channels over a tiny alphabet (so that matches are frequent), inserted in a
// trie; for every channel the trie must visit exactly the pairs that pattern_matches() accepts.
class topic_trie_random_test : public ::testing::Test {
 protected:
  std::string random_channel(std::size_t max_tokens) {
    static constexpr std::string_view tokens[] = {"a", "b", "c", "dd"};
    std::string s;
    const std::size_t n = 1 + rng() % max_tokens;
    for (std::size_t i = 0; i < n; ++i) {
      if (i) s += '.';
      s += tokens[rng() % std::size(tokens)];
    }
    return s;
  }
  std::string random_pattern() {
    std::string s = random_channel(4);
    std::string out;
    std::size_t start = 0;
    // Each token becomes `*` with probability 1/4; 1 in 4 patterns ends with `.>`, 1 in 12 is `>`.
    for (;;) {
      const std::size_t dot = s.find('.', start);
      const std::string token = s.substr(start, dot - start);
      if (!out.empty()) out += '.';
      out += rng() % 4 == 0 ? std::string("*") : token;
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    const auto roll = rng() % 12;
    if (roll == 0) return ">";
    if (roll < 4) out += ".>";
    return out;
  }

  std::mt19937_64 rng{20240611};
};

TEST_F(topic_trie_random_test, match_agrees_with_pattern_matches) {
  topic_trie<int> trie;
  std::vector<std::pair<std::string, int>> pairs;
  for (int i = 0; i < 3000; ++i) {
    const std::string p = random_pattern();
    ASSERT_TRUE(validate_pattern(p).has_value()) << p;
    const int value = static_cast<int>(rng() % 500);  // repeats: same value under many patterns
    if (trie.insert(p, value)) pairs.emplace_back(p, value);
  }
  ASSERT_EQ(trie.size(), pairs.size());

  const auto check = [&](int rounds) {
    for (int i = 0; i < rounds; ++i) {
      const std::string channel = random_channel(6);
      ASSERT_TRUE(validate_channel(channel).has_value()) << channel;
      std::vector<int> expected;
      for (const auto& [p, v] : pairs) {
        if (pattern_matches(p, channel)) expected.push_back(v);
      }
      std::vector<int> actual;
      trie.match(channel, [&](const int& v) { actual.push_back(v); });
      std::ranges::sort(expected);
      std::ranges::sort(actual);
      ASSERT_EQ(actual, expected) << "channel " << channel;
    }
  };
  check(2000);

  // Erase a random half and check again (exercises pruning).
  std::ranges::shuffle(pairs, rng);
  const std::size_t keep = pairs.size() / 2;
  for (std::size_t i = keep; i < pairs.size(); ++i) {
    ASSERT_TRUE(trie.erase(pairs[i].first, pairs[i].second)) << pairs[i].first;
  }
  pairs.resize(keep);
  ASSERT_EQ(trie.size(), keep);
  check(2000);

  for (const auto& [p, v] : pairs) ASSERT_TRUE(trie.erase(p, v));
  pairs.clear();
  EXPECT_TRUE(trie.empty());
  check(50);
}

// ---- hashing ------------------------------------------------------------------------------------

TEST(channel_hash, is_pinned) {
  // Reference values computed independently (FNV-1a 64 + MurmurHash3 fmix64). If this test fails,
  // channels would move between shards/partitions: do not "fix" the expected values.
  EXPECT_EQ(channel_hash(""), 0xefd01f60ba992926ULL);
  EXPECT_EQ(channel_hash("a"), 0x82a2a958a9bece5bULL);
  EXPECT_EQ(channel_hash("foobar"), 0x2c22194922d1672bULL);
  EXPECT_EQ(channel_hash("acme.calls.CA123.status"), 0x35b64be7602d21d0ULL);
  EXPECT_EQ(shard_of("acme.calls.CA123.status", 8), 0u);
  EXPECT_EQ(shard_of("acme.calls.CA123.status", 3), 2u);
  EXPECT_EQ(shard_of("foobar", 8), 3u);
}

TEST(channel_hash, shard_of_is_in_range_and_spreads) {
  EXPECT_EQ(shard_of("a", 0), 0u);
  EXPECT_EQ(shard_of("a", 1), 0u);
  constexpr unsigned shards = 8;
  std::vector<int> counts(shards);
  for (int i = 0; i < 8000; ++i) {
    const unsigned s = shard_of("acme.calls.CA" + std::to_string(i) + ".status", shards);
    ASSERT_LT(s, shards);
    ++counts[s];
  }
  for (const int c : counts) {
    EXPECT_GT(c, 800);  // 1000 expected per shard
    EXPECT_LT(c, 1200);
  }
}

}  // namespace
}  // namespace switchboard::router
