// The response to GET or HEAD of a static file that the caller has opened: conditional requests
// (If-None-Match → 304), a single byte range (Range → 206, If-Range, 416), and the headers caches
// and players rely on (Content-Type, Content-Length, ETag, Cache-Control, Accept-Ranges). The body
// is an http_response::file, sent by the HTTP io thread with sendfile(2): serving a large file never
// holds a request thread.
//
// Concurrency: pure function of its arguments.
#pragma once

#include <cstdint>
#include <string>

#include "broker/admin/http_message.h"

namespace switchboard::admin {

struct file_representation {
  std::string content_type;   // e.g. "audio/wav"
  std::string etag;           // a strong entity tag with its quotes, e.g. "\"u-1f0c-5f3a-3a98\""
  std::string cache_control;  // e.g. "public, max-age=3600"; "" = no Cache-Control header
};

// `fd` is an open descriptor of a regular file of `size` bytes; the response takes ownership (it is
// closed when the response is dropped or sent). `req` must be GET or HEAD. Returns
//   304  If-None-Match lists the ETag (weak comparison) or is "*": no body;
//   416  a single satisfiable-looking range past the end: Content-Range "bytes */SIZE", JSON error
//        range_not_satisfiable;
//   206  a single range (GET only; ignored when If-Range does not equal the ETag): Content-Range
//        "bytes FIRST-LAST/SIZE" and those bytes;
//   200  otherwise, the whole file (several ranges are served whole, see byte_range.h).
[[nodiscard]] http_response file_response(const http_request& req, int fd, std::uint64_t size,
                                          const file_representation& rep);

}  // namespace switchboard::admin
