// libFuzzer target: the Range header parser of static-file responses (broker/admin/byte_range.cc,
// used by GET /media/<id>). Input: 8 bytes of file size (little-endian, reduced modulo 2^40) then
// the header value. A partial answer must select bytes inside the file (first <= last < size) and
// parse back to itself when written in canonical form; nothing may crash or read out of bounds.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "broker/admin/byte_range.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using switchboard::admin::byte_range_request;
  using switchboard::admin::parse_byte_range;
  if (size < 8) return 0;
  std::uint64_t file_size = 0;
  std::memcpy(&file_size, data, 8);
  file_size %= std::uint64_t{1} << 40;
  const std::string_view header(reinterpret_cast<const char*>(data) + 8, size - 8);
  const byte_range_request r = parse_byte_range(header, file_size);
  if (r.what == byte_range_request::kind::partial) {
    if (r.first > r.last || r.last >= file_size) std::abort();
    const std::string canonical = "bytes=" + std::to_string(r.first) + "-" + std::to_string(r.last);
    const byte_range_request again = parse_byte_range(canonical, file_size);
    if (again.what != byte_range_request::kind::partial || again.first != r.first || again.last != r.last)
      std::abort();
  }
  if (r.what == byte_range_request::kind::unsatisfiable && file_size > 0 &&
      header.find(',') != std::string_view::npos) {
    std::abort();  // several ranges are served whole, never refused
  }
  return 0;
}
