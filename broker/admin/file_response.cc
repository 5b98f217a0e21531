#include "broker/admin/file_response.h"

#include <fmt/format.h>
#include <unistd.h>

#include <memory>
#include <string_view>
#include <utility>

#include "broker/admin/byte_range.h"

namespace switchboard::admin {
namespace {

std::string_view opaque(std::string_view tag) noexcept { return tag.starts_with("W/") ? tag.substr(2) : tag; }

// If-None-Match: "*" or a comma list of entity tags, compared weakly (RFC 9110 §13.1.2).
bool none_match(std::string_view header, std::string_view etag) noexcept {
  header = trim_ows(header);
  if (header == "*") return true;
  while (!header.empty()) {
    const std::size_t comma = header.find(',');
    if (opaque(trim_ows(header.substr(0, comma))) == opaque(etag)) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

void common_headers(http_response& r, const file_representation& rep) {
  if (!rep.etag.empty()) r.headers.emplace_back("ETag", rep.etag);
  if (!rep.cache_control.empty()) r.headers.emplace_back("Cache-Control", rep.cache_control);
}

}  // namespace

http_response file_response(const http_request& req, int fd, std::uint64_t size,
                            const file_representation& rep) {
  // Owns `fd` from here on: closed on return unless handed to the response body.
  struct fd_guard {
    int fd;
    ~fd_guard() {
      if (fd >= 0) ::close(fd);
    }
    int release() { return std::exchange(fd, -1); }
  } owned{fd};
  http_response r;
  const std::string_view inm = req.header("If-None-Match");
  if (!inm.empty() && !rep.etag.empty() && none_match(inm, rep.etag)) {
    r.status = 304;
    common_headers(r, rep);
    return r;
  }
  byte_range_request range;
  const std::string_view if_range = trim_ows(req.header("If-Range"));
  if (req.method == "GET" && (if_range.empty() || (!rep.etag.empty() && if_range == rep.etag))) {
    range = parse_byte_range(req.header("Range"), size);
  }
  if (range.what == byte_range_request::kind::unsatisfiable) {
    r = error_response(
        416, "range_not_satisfiable",
        fmt::format("range {} is outside the {} bytes of this file", req.header("Range"), size));
    r.headers.emplace_back("Content-Range", fmt::format("bytes */{}", size));
    common_headers(r, rep);
    return r;
  }
  r.content_type = rep.content_type;
  r.headers.emplace_back("Accept-Ranges", "bytes");
  common_headers(r, rep);
  if (range.what == byte_range_request::kind::partial) {
    r.status = 206;
    r.headers.emplace_back("Content-Range", fmt::format("bytes {}-{}/{}", range.first, range.last, size));
    r.file = std::make_shared<const file_body>(owned.release(), range.first, range.last - range.first + 1);
    return r;
  }
  r.status = 200;
  r.file = std::make_shared<const file_body>(owned.release(), 0, size);
  return r;
}

}  // namespace switchboard::admin
