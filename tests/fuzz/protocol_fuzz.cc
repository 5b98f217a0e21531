// libFuzzer target: the frame codec (client/src/protocol.cc) on arbitrary bytes. Every record that
// decodes must re-encode to the same bytes and decode to the same fields; nothing may crash, hang
// or read out of bounds.
#include <switchboard/protocol.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace proto = switchboard::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  proto::frame_reader reader(bytes);
  for (;;) {
    const std::size_t at = reader.offset();
    auto f = reader.next();
    if (!f) {
      if (f.error().message.empty() || f.error().protocol_code().empty()) std::abort();
      break;
    }
    if (!*f) break;
    const std::size_t end = reader.offset();
    if (end <= at || end > size) std::abort();
    // Round trip: the codec writes what it read (flags it ignores are the only difference).
    std::string again;
    proto::frame_writer(again).write(**f);
    proto::frame_reader back(again);
    auto g = back.next();
    if (!g || !*g || (**g).index() != (**f).index()) std::abort();
    std::string twice;
    proto::frame_writer(twice).write(**g);
    if (twice != again) std::abort();
  }
  return 0;
}
