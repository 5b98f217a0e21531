// Hash maps keyed by std::string that can be looked up with a std::string_view, without building
// a std::string per lookup (heterogeneous lookup). Used on hot paths: channel names, trie tokens.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace switchboard::common {

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <typename Value>
using string_map = std::unordered_map<std::string, Value, string_hash, std::equal_to<>>;

}  // namespace switchboard::common
