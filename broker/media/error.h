// Errors of the media layer: one small errc for every media entry point (ids, conversion, speech,
// cache, media_service) and a one-line message meant for the user (it ends up in media.failed events).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace switchboard::media {

enum class errc : std::uint8_t {
  invalid_request,  // malformed request: neither or both of url/text, not http(s), bad voice/rate/format/id
  media_invalid,    // the bytes are not audio libsndfile can decode, or they are truncated
  fetch_failed,     // the origin could not be reached or answered something other than 2xx/304/404/410
  too_large,        // body larger than max_bytes, or audio longer than max_seconds
  not_found,        // the origin answered 404/410, or open() found no cached media with that id
  timeout,          // the origin did not answer within the connect/total timeouts
  io,               // the cache directory or its index could not be read or written
};
inline constexpr std::size_t errc_count = 7;

struct error {
  errc code = errc::io;
  std::string message;  // e.g. "not audio: libsndfile: Format not recognised."
};

// A stable name for `code` ("media_invalid", …), used in metrics labels and events.
[[nodiscard]] constexpr std::string_view errc_name(errc code) noexcept {
  switch (code) {
    case errc::invalid_request: return "invalid_request";
    case errc::media_invalid: return "media_invalid";
    case errc::fetch_failed: return "fetch_failed";
    case errc::too_large: return "too_large";
    case errc::not_found: return "not_found";
    case errc::timeout: return "timeout";
    case errc::io: return "io";
  }
  return "io";
}

}  // namespace switchboard::media
