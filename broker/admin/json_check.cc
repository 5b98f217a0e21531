#include "broker/admin/json_check.h"

#include <fmt/format.h>
#include <simdjson.h>

#include "broker/common/json_error.h"

namespace switchboard::admin {

std::expected<void, std::string> check_json(std::string_view text) {
  // simdjson decides validity (fast path); it is iterative with a fixed depth limit.
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  const auto err = parser.parse(text.data(), text.size(), true).get(root);
  if (err == simdjson::SUCCESS) return {};
  // On failure, RapidJSON's iterative reader locates the first error (200 000 '[' used to overflow
  // the call stack of a recursive one).
  if (const auto at = common::locate_json_error(text, max_json_depth)) {
    if (at->too_deep) {
      return std::unexpected(fmt::format("invalid JSON at byte {}: nested deeper than {} levels", at->offset,
                                         max_json_depth));
    }
    return std::unexpected(fmt::format("invalid JSON at byte {}: {}", at->offset, at->reason));
  }
  return std::unexpected(fmt::format("invalid JSON: {}", simdjson::error_message(err)));
}

}  // namespace switchboard::admin
