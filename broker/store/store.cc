#include "broker/store/store.h"

#include "broker/store/checks.h"

#include <string>

namespace switchboard::store {

std::string_view errc_name(errc code) noexcept {
  switch (code) {
    case errc::invalid_argument: return "invalid_argument";
    case errc::overloaded: return "overloaded";
    case errc::stopped: return "stopped";
    case errc::full: return "full";
    case errc::io: return "io";
    case errc::corruption: return "corruption";
    case errc::internal: return "internal";
  }
  return "unknown";
}

std::string_view health_name(health_state state) noexcept {
  switch (state) {
    case health_state::ok: return "ok";
    case health_state::full: return "full";
    case health_state::corrupt: return "corrupt";
    case health_state::failed: return "failed";
  }
  return "unknown";
}

namespace detail {

bool is_reserved(kind k, std::string_view key) noexcept {
  return k == kind::meta && key.starts_with(reserved_meta_prefix);
}

std::expected<void, error> check_config_key(kind k, std::string_view key, bool writing) {
  if (k == kind::events) {
    return std::unexpected(
        error{errc::invalid_argument, "the events kind is written with append(), not put_config()"});
  }
  if (static_cast<std::size_t>(k) >= kind_count) {
    return std::unexpected(error{errc::invalid_argument, "unknown store kind"});
  }
  if (writing && is_reserved(k, key)) {
    return std::unexpected(
        error{errc::invalid_argument, "meta key '" + std::string(key) + "' is reserved for the store"});
  }
  return {};
}

std::expected<void, error> check_batch(const std::vector<append_request>& batch) {
  for (const append_request& r : batch) {
    if (r.channel_id == 0) {
      return std::unexpected(error{errc::invalid_argument, "append: channel id 0 is not valid"});
    }
    if (r.seq == 0) {
      return std::unexpected(error{errc::invalid_argument, "append: seq 0 is not valid"});
    }
    if (r.key.size() > max_event_key_bytes) {
      return std::unexpected(
          error{errc::invalid_argument, "append: idempotency key of " + std::to_string(r.key.size()) +
                                            " bytes exceeds " + std::to_string(max_event_key_bytes)});
    }
  }
  return {};
}

}  // namespace detail
}  // namespace switchboard::store
