// Topics: channel names, subscription patterns, the pattern trie and channel -> shard hashing.
//
// A channel name is a dot-separated list of tokens, `tenant.calls.CA123.status`. A subscription
// pattern is the same, except that a token may be a wildcard, as NATS users know them:
//   `*`  matches exactly one token           (`a.*.c` matches `a.b.c`, not `a.c` nor `a.b.x.c`)
//   `>`  matches one or more trailing tokens (`a.>` matches `a.b` and `a.b.c`, not `a`);
//        it must be the last token of the pattern.
//
// Validity rules (shared by names and patterns unless stated):
//   - not empty, at most `max_name_bytes` bytes;
//   - no empty token: no leading or trailing dot, no `..`;
//   - a token may hold any byte except '.', space, tab, CR, LF and NUL (so UTF-8 is fine);
//   - `*` and `>` must be whole tokens (`a*`, `>x` are invalid everywhere);
//   - channel names hold no wildcard at all; in a pattern `>` must be the last token.
//
// Error messages (exact text, asserted by tests/router/topic_test.cc). <kind> is `channel` or
// `pattern`; <name> is the input quoted as described below; positions are 1-based token indexes:
//   channel name is empty                              | pattern is empty
//   channel name is <N> bytes (limit 1024)             | pattern is <N> bytes (limit 1024)
//   <kind> "<name>" has an empty token at position <P>
//   <kind> "<name>" has a forbidden character (<what>, 0x<HH>) in token <P>
//       <what> is one of: space, tab, carriage return, line feed, NUL
//   channel "<name>" has a wildcard '<c>' in token <P>; channel names may not contain wildcards
//   pattern "<name>": '<c>' must be a whole token (found "<token>" at position <P>)
//   pattern "<name>": '>' must be the last token
// Exactly one problem is reported: empty, then length, then the first problem scanning the input
// left to right (within a token, the first offending byte; a `>` token followed by a dot is
// reported when that dot is reached, before anything after it).
// Quoting: bytes 0x20..0x7E are copied except `"` and `\` which become `\"` and `\\`; tab, CR and
// LF become `\t`, `\r`, `\n`; every other byte (NUL, controls, 0x7F and above) becomes `\xHH`
// (lower-case hex). So a message is always printable ASCII, safe to put in a JSON error body.
//
// Thread-safety: the free functions are pure and may be called from any thread. A `topic_trie` is
// not synchronised: it is owned by one router shard and used only on that shard's thread.
#pragma once

#include "broker/common/string_map.h"

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace switchboard::router {

// Longest channel name or pattern, in bytes. Equal to protocol::max_name_bytes (the wire limit).
inline constexpr std::size_t max_name_bytes = 1024;

// Why a channel name or pattern was rejected. `code` is the stable ERR code sent to clients:
// "invalid_channel" or "invalid_pattern". `message` is one line of printable ASCII (see above).
struct topic_error {
  std::string code;
  std::string message;
};

// Checks a channel name (a publish target). Returns nothing on success, or an "invalid_channel"
// error naming the first problem. Does not allocate on success.
[[nodiscard]] std::expected<void, topic_error> validate_channel(std::string_view name);

// Checks a subscription pattern. Every valid channel name is also a valid pattern (matching only
// itself). Returns nothing on success, or an "invalid_pattern" error naming the first problem.
// Does not allocate on success.
[[nodiscard]] std::expected<void, topic_error> validate_pattern(std::string_view pattern);

// True when `channel` matches `pattern` under the rules above. Never allocates.
// Precondition: `pattern` passes validate_pattern and `channel` passes validate_channel; for
// other inputs the result is unspecified (but the call is still memory-safe).
// `s` in double quotes for an error message: printable ASCII kept, `"` and `\` escaped, tab, CR
// and LF as \t \r \n, every other byte as \xHH. Used for every name quoted in broker messages.
[[nodiscard]] std::string quote_name(std::string_view s);

[[nodiscard]] bool pattern_matches(std::string_view pattern, std::string_view channel) noexcept;

// 64-bit hash of a channel name: FNV-1a 64 over the bytes, followed by the MurmurHash3 `fmix64`
// finalizer so that every output bit depends on every input byte. It decides channel -> shard (and
// later channel -> cluster partition), so it is part of the on-disk/over-the-wire contract: it is
// the same on every run, build and machine (no seed, no endianness dependence), and must never
// change. tests/router/topic_test.cc pins reference values.
[[nodiscard]] std::uint64_t channel_hash(std::string_view channel) noexcept;

// The router shard that owns `channel`: channel_hash(channel) % shards, in [0, shards).
// Returns 0 when shards == 0 (a caller bug, but never a division by zero).
[[nodiscard]] unsigned shard_of(std::string_view channel, unsigned shards) noexcept;

// A set of (pattern, value) pairs that answers "which values subscribed to a pattern matching this
// channel?" in time proportional to the channel's tokens and the number of trie branches that can
// match, not to the number of subscriptions.
//
// Operation: one trie node per pattern prefix. A node's children are its literal next tokens (hash
// map with heterogeneous lookup, so match() never builds a std::string), plus a dedicated `*`
// child and a dedicated `>` leaf (a `>` can only end a pattern, so it holds values, no children).
// A value set under a pattern lives in that pattern's end node, in insertion order.
//
// Semantics: a (pattern, value) pair is stored at most once; inserting it again is a no-op.
// match() visits every stored pair whose pattern matches, so a value inserted under two matching
// patterns (say `a.*` and `a.>`) is visited twice, once per pattern. Visit order is unspecified.
//
// Requirements on T: movable, and equality-comparable (insert/erase compare values).
// Complexity: insert/erase are O(tokens + values under that pattern); match is O(visited nodes +
// values visited). Empty nodes are pruned on erase, so memory follows the live pairs.
//
// Thread-safety: none. A trie belongs to one router shard and is only touched on its thread.
// Limitations: visit must not modify the trie it is visiting.
template <typename T>
class topic_trie {
 public:
  topic_trie() = default;
  topic_trie(const topic_trie&) = delete;
  topic_trie& operator=(const topic_trie&) = delete;
  topic_trie(topic_trie&&) noexcept = default;
  topic_trie& operator=(topic_trie&&) noexcept = default;
  ~topic_trie() = default;

  // Adds `value` under `pattern`. Returns true if added, false if that exact pair was already
  // present (the trie is unchanged). Precondition: validate_pattern(pattern) succeeded.
  bool insert(std::string_view pattern, T value) {
    assert(validate_pattern(pattern).has_value());
    node* n = &_root;
    for (;;) {
      const std::size_t dot = pattern.find('.');
      const std::string_view token = pattern.substr(0, dot);
      if (dot == std::string_view::npos && token == ">") {
        return add_value(n->rest_values, std::move(value));
      }
      n = &child_for_insert(*n, token);
      if (dot == std::string_view::npos) {
        return add_value(n->values, std::move(value));
      }
      pattern.remove_prefix(dot + 1);
    }
  }

  // Removes one (pattern, value) pair. Returns true if it was present, false otherwise (unknown
  // pattern or value; the trie is unchanged). Nodes left without values or children are freed.
  bool erase(std::string_view pattern, const T& value) { return erase_in(_root, pattern, value); }

  // Calls `visit(const T&)` for every stored pair whose pattern matches `channel`.
  // Allocation-free (apart from what `visit` does). Precondition: validate_channel(channel)
  // succeeded; for other inputs the set of visited values is unspecified.
  template <typename F>
  void match(std::string_view channel, F&& visit) const {
    match_in(_root, channel, visit);
  }

  // Number of stored (pattern, value) pairs.
  [[nodiscard]] std::size_t size() const noexcept { return _size; }
  [[nodiscard]] bool empty() const noexcept { return _size == 0; }

 private:
  struct node {
    common::string_map<std::unique_ptr<node>> children;  // string_view lookup: no allocation
    std::unique_ptr<node> star;   // the `*` child
    std::vector<T> values;        // pairs whose pattern ends at this node
    std::vector<T> rest_values;   // pairs whose pattern is this node's prefix followed by `.>`

    [[nodiscard]] bool unused() const noexcept {
      return children.empty() && !star && values.empty() && rest_values.empty();
    }
  };

  static node& child_for_insert(node& n, std::string_view token) {
    if (token == "*") {
      if (!n.star) n.star = std::make_unique<node>();
      return *n.star;
    }
    auto it = n.children.find(token);
    if (it == n.children.end()) {
      it = n.children.emplace(std::string(token), std::make_unique<node>()).first;
    }
    return *it->second;
  }

  bool add_value(std::vector<T>& values, T value) {
    for (const T& v : values) {
      if (v == value) return false;
    }
    values.push_back(std::move(value));
    ++_size;
    return true;
  }

  bool remove_value(std::vector<T>& values, const T& value) {
    for (auto it = values.begin(); it != values.end(); ++it) {
      if (*it == value) {
        values.erase(it);  // keeps insertion order of the others
        --_size;
        return true;
      }
    }
    return false;
  }

  // Recursive so that emptied nodes can be pruned on the way back up. Depth <= 512 tokens.
  bool erase_in(node& n, std::string_view pattern, const T& value) {
    const std::size_t dot = pattern.find('.');
    const std::string_view token = pattern.substr(0, dot);
    const std::string_view rest =
        dot == std::string_view::npos ? std::string_view{} : pattern.substr(dot + 1);
    if (dot == std::string_view::npos && token == ">") return remove_value(n.rest_values, value);
    if (token == "*") {
      if (!n.star) return false;
      const bool erased = dot == std::string_view::npos ? remove_value(n.star->values, value)
                                                        : erase_in(*n.star, rest, value);
      if (erased && n.star->unused()) n.star.reset();
      return erased;
    }
    const auto it = n.children.find(token);
    if (it == n.children.end()) return false;
    node& child = *it->second;
    const bool erased = dot == std::string_view::npos ? remove_value(child.values, value)
                                                      : erase_in(child, rest, value);
    if (erased && child.unused()) n.children.erase(it);
    return erased;
  }

  // `channel` is what is left of the channel after the tokens that led to `n`.
  template <typename F>
  static void match_in(const node& n, std::string_view channel, F& visit) {
    // At least one token remains here, so every `prefix.>` pattern ending at n matches.
    for (const T& v : n.rest_values) visit(v);
    const std::size_t dot = channel.find('.');
    const std::string_view token = channel.substr(0, dot);
    const bool last = dot == std::string_view::npos;
    const std::string_view rest = last ? std::string_view{} : channel.substr(dot + 1);
    if (const auto it = n.children.find(token); it != n.children.end()) {
      visit_or_descend(*it->second, last, rest, visit);
    }
    if (n.star) visit_or_descend(*n.star, last, rest, visit);
  }

  template <typename F>
  static void visit_or_descend(const node& child, bool last, std::string_view rest, F& visit) {
    if (last) {
      for (const T& v : child.values) visit(v);
    } else {
      match_in(child, rest, visit);
    }
  }

  node _root;             // the empty prefix; never has values of its own (patterns are non-empty)
  std::size_t _size = 0;  // stored (pattern, value) pairs
};

}  // namespace switchboard::router
