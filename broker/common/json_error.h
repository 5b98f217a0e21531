// Where and why a JSON text is invalid: the first error found by RapidJSON's iterative reader
// (a heap stack, never the call stack, so 200 000 '[' cannot overflow it), with nesting capped at
// `max_depth` (simdjson's own limit by default). Used after simdjson rejected a text, to tell the
// user the byte offset and the reason in words.
// Thread-safety: a plain function.
#pragma once

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cctype>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace switchboard::common {

struct json_error_location {
  std::size_t offset = 0;   // byte where the reader stopped
  std::string reason;       // e.g. "invalid value", "missing a comma or '}' after an object member"
  bool too_deep = false;    // nesting exceeded max_depth (reason is then empty)
};

namespace detail {
// SAX handler that accepts everything but stops the reader once nesting exceeds the cap.
struct json_depth_guard : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, json_depth_guard> {
  std::size_t max_depth = 0;
  std::size_t depth = 0;
  bool too_deep = false;
  bool open() {
    if (++depth <= max_depth) return true;
    too_deep = true;
    return false;
  }
  bool StartObject() { return open(); }
  bool StartArray() { return open(); }
  bool EndObject(rapidjson::SizeType) {
    --depth;
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    --depth;
    return true;
  }
  bool Default() { return true; }
};
}  // namespace detail

// The first error in `text`, or nullopt when RapidJSON accepts it (e.g. a number simdjson refused).
[[nodiscard]] inline std::optional<json_error_location> locate_json_error(std::string_view text,
                                                                          std::size_t max_depth = 1024) {
  rapidjson::Reader reader;
  detail::json_depth_guard guard;
  guard.max_depth = max_depth;
  rapidjson::MemoryStream ms(text.data(), text.size());
  const rapidjson::ParseResult r =
      reader.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(ms, guard);
  if (guard.too_deep) return json_error_location{r.Offset(), {}, true};
  if (!r.IsError()) return std::nullopt;
  std::string reason = rapidjson::GetParseError_En(r.Code());  // "Invalid value." -> "invalid value"
  if (!reason.empty() && reason.back() == '.') reason.pop_back();
  if (!reason.empty()) reason[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(reason[0])));
  return json_error_location{r.Offset(), std::move(reason), false};
}

}  // namespace switchboard::common
