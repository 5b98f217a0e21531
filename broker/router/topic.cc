// Channel name / pattern validation, pattern matching and channel hashing. Contracts and the exact
// error messages are documented in topic.h.
#include "broker/router/topic.h"

#include <string>

namespace switchboard::router {
namespace {

enum class topic_kind : std::uint8_t { channel, pattern };

constexpr char hex_digits[] = "0123456789abcdef";


// Name of a byte that may never appear in a token, or nullptr if it may.
constexpr const char* forbidden_name(unsigned char b) noexcept {
  switch (b) {
    case ' ': return "space";
    case '\t': return "tab";
    case '\r': return "carriage return";
    case '\n': return "line feed";
    case '\0': return "NUL";
    default: return nullptr;
  }
}

topic_error make_error(topic_kind kind, std::string message) {
  return topic_error{kind == topic_kind::channel ? "invalid_channel" : "invalid_pattern",
                     std::move(message)};
}

// One left-to-right pass; reports the first problem. Allocates only to build an error.
std::expected<void, topic_error> validate(topic_kind kind, std::string_view s) {
  const bool is_channel = kind == topic_kind::channel;
  const std::string_view what = is_channel ? "channel " : "pattern ";
  if (s.empty()) {
    return std::unexpected(make_error(kind, is_channel ? "channel name is empty" : "pattern is empty"));
  }
  if (s.size() > max_name_bytes) {
    return std::unexpected(make_error(
        kind, std::string(is_channel ? "channel name" : "pattern") + " is " + std::to_string(s.size()) +
                  " bytes (limit " + std::to_string(max_name_bytes) + ")"));
  }
  std::size_t position = 1;     // 1-based index of the current token
  std::size_t token_start = 0;  // byte offset where the current token starts
  for (std::size_t i = 0; i <= s.size(); ++i) {
    const bool at_end = i == s.size();
    if (at_end || s[i] == '.') {
      const std::string_view token = s.substr(token_start, i - token_start);
      if (token.empty()) {
        return std::unexpected(make_error(
            kind, std::string(what) + quote_name(s) + " has an empty token at position " + std::to_string(position)));
      }
      if (!is_channel && token == ">" && !at_end) {
        return std::unexpected(
            make_error(kind, "pattern " + quote_name(s) + ": '>' must be the last token"));
      }
      ++position;
      token_start = i + 1;
      continue;
    }
    const auto b = static_cast<unsigned char>(s[i]);
    if (const char* name = forbidden_name(b)) {
      return std::unexpected(make_error(
          kind, std::string(what) + quote_name(s) + " has a forbidden character (" + name + ", 0x" + hex_digits[b >> 4] +
                    hex_digits[b & 0xf] + ") in token " + std::to_string(position)));
    }
    if (b == '*' || b == '>') {
      if (is_channel) {
        return std::unexpected(make_error(
            kind, "channel " + quote_name(s) + " has a wildcard '" + s[i] + "' in token " + std::to_string(position) +
                      "; channel names may not contain wildcards"));
      }
      // Whole token iff it starts here and ends right after this byte.
      const bool whole = i == token_start && (i + 1 == s.size() || s[i + 1] == '.');
      if (!whole) {
        std::size_t token_end = s.find('.', token_start);
        if (token_end == std::string_view::npos) token_end = s.size();
        return std::unexpected(make_error(
            kind, "pattern " + quote_name(s) + ": '" + s[i] + "' must be a whole token (found " +
                      quote_name(s.substr(token_start, token_end - token_start)) + " at position " +
                      std::to_string(position) + ")"));
      }
    }
  }
  return {};
}

}  // namespace

std::expected<void, topic_error> validate_channel(std::string_view name) {
  return validate(topic_kind::channel, name);
}

std::expected<void, topic_error> validate_pattern(std::string_view pattern) {
  return validate(topic_kind::pattern, pattern);
}

bool pattern_matches(std::string_view pattern, std::string_view channel) noexcept {
  for (;;) {
    const std::size_t pdot = pattern.find('.');
    const std::string_view ptoken = pattern.substr(0, pdot);
    if (ptoken == ">") return !channel.empty();  // one or more remaining tokens
    if (channel.empty()) return false;           // pattern has a token left, channel has none
    const std::size_t cdot = channel.find('.');
    const std::string_view ctoken = channel.substr(0, cdot);
    if (ptoken != "*" && ptoken != ctoken) return false;
    const bool plast = pdot == std::string_view::npos;
    const bool clast = cdot == std::string_view::npos;
    if (plast || clast) return plast && clast;
    pattern.remove_prefix(pdot + 1);
    channel.remove_prefix(cdot + 1);
  }
}

std::uint64_t channel_hash(std::string_view channel) noexcept {
  // FNV-1a 64 (offset basis and prime from the FNV reference), byte by byte: endian-independent.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char ch : channel) {
    h ^= static_cast<unsigned char>(ch);
    h *= 0x100000001b3ULL;
  }
  // MurmurHash3 fmix64: FNV-1a's last bytes barely reach the high bits; this spreads them.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

unsigned shard_of(std::string_view channel, unsigned shards) noexcept {
  if (shards == 0) return 0;
  return static_cast<unsigned>(channel_hash(channel) % shards);
}

std::string quote_name(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (const char ch : s) {
    const auto b = static_cast<unsigned char>(ch);
    switch (b) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\n': out += "\\n"; break;
      default:
        if (b >= 0x20 && b < 0x7f) {
          out.push_back(ch);
        } else {
          out += "\\x";
          out.push_back(hex_digits[b >> 4]);
          out.push_back(hex_digits[b & 0xf]);
        }
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace switchboard::router
