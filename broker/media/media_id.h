// Media ids: a persistent, content-independent name for "this source converted to this format", so a
// second request for the same media finds the cached result without fetching or converting anything.
//
//   url media:    "u-" + hex(SHA-256("url" ‖ canonical_url(url) ‖ format_name))[0:32]
//   speech media: "t-" + hex(SHA-256("say" ‖ voice ‖ decimal(rate) ‖ format_name ‖ text))[0:32]
//
// where ‖ joins fields each preceded by its length as a decimal and a ':' (so no two field lists hash
// the same input). 32 hex digits are 128 bits: collisions are not a practical concern for a cache.
// The id is deterministic across processes, machines and versions as long as this scheme is unchanged;
// changing it only makes old cache entries unreachable (they age out by LRU).
//
// canonical_url() removes volatile query parameters (pre-signed URL signatures and expiries) so that
// every signed variant of one object shares one id. It does not otherwise normalise the URL beyond
// lower-casing the scheme and host and dropping the #fragment and any user:password@ (credentials
// are not part of the resource's name, and the canonical URL is stored, logged and published).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "broker/media/format.h"

namespace switchboard::media {

// The parameters canonical_url() drops by default: AWS SigV4, CloudFront and common token schemes.
[[nodiscard]] std::vector<std::string> default_volatile_query_params();

// `url` without its fragment and without every query parameter whose name equals (ASCII
// case-insensitively) one of `volatile_params`; the remaining parameters keep their order and spelling.
// A query left empty loses its '?'. Scheme and host are lower-cased. Pure; never fails.
[[nodiscard]] std::string canonical_url(std::string_view url, std::span<const std::string> volatile_params);

// The id of `url` converted to `fmt` (see the file comment). `url` is canonicalised first.
[[nodiscard]] std::string url_media_id(std::string_view url, format fmt, std::span<const std::string> volatile_params);

// The id of `text` spoken by `voice` at `rate` words per minute, in `fmt`.
[[nodiscard]] std::string speech_media_id(std::string_view text, std::string_view voice, int rate, format fmt);

// True when `id` has the shape of an id made here ("u-" or "t-" and 32 lower-case hex digits), so it
// is safe to use as a file name.
[[nodiscard]] bool is_media_id(std::string_view id) noexcept;

}  // namespace switchboard::media
