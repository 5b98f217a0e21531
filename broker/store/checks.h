// Request validation shared by both store implementations, so they reject exactly the same input.
#pragma once

#include "broker/store/store.h"

#include <expected>
#include <string_view>
#include <vector>

namespace switchboard::store::detail {

// kind::events is refused (the log has its own calls), and so are reserved meta keys
// when `writing` (reads of them are allowed: they are the store's own data).
[[nodiscard]] std::expected<void, error> check_config_key(kind k, std::string_view key, bool writing);

// Channel id and seq must be non-zero and the idempotency key must fit its 16-bit length.
[[nodiscard]] std::expected<void, error> check_batch(const std::vector<append_request>& batch);

// True for meta keys that belong to the store (hidden from list_configs(kind::meta)).
[[nodiscard]] bool is_reserved(kind k, std::string_view key) noexcept;

}  // namespace switchboard::store::detail
