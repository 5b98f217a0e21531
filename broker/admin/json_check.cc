#include "broker/admin/json_check.h"

#include <fmt/format.h>
#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>
#include <simdjson.h>

#include <cctype>

namespace switchboard::admin {
namespace {

// RapidJSON SAX handler that accepts everything but stops the (iterative) reader once nesting
// exceeds max_json_depth, so the error offset points at the first bracket too deep.
struct depth_guard : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, depth_guard> {
  std::size_t depth = 0;
  bool too_deep = false;
  bool open() {
    if (++depth <= max_json_depth) return true;
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

}  // namespace

std::expected<void, std::string> check_json(std::string_view text) {
  // simdjson decides validity (fast path); it is iterative with a fixed depth limit.
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  const auto err = parser.parse(text.data(), text.size(), true).get(root);
  if (err == simdjson::SUCCESS) return {};
  // On failure, RapidJSON's reader locates the first error. kParseIterativeFlag: a heap stack,
  // never the call stack (200 000 '[' used to overflow it).
  rapidjson::Reader reader;
  depth_guard guard;
  rapidjson::MemoryStream ms(text.data(), text.size());
  const rapidjson::ParseResult r =
      reader.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(ms, guard);
  if (guard.too_deep) {
    return std::unexpected(fmt::format("invalid JSON at byte {}: nested deeper than {} levels", r.Offset(),
                                       max_json_depth));
  }
  if (r.IsError()) {
    std::string reason = rapidjson::GetParseError_En(r.Code());  // "Invalid value." -> "invalid value"
    if (!reason.empty() && reason.back() == '.') reason.pop_back();
    if (!reason.empty()) reason[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(reason[0])));
    return std::unexpected(fmt::format("invalid JSON at byte {}: {}", r.Offset(), reason));
  }
  return std::unexpected(fmt::format("invalid JSON: {}", simdjson::error_message(err)));
}

}  // namespace switchboard::admin
