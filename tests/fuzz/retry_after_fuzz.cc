// libFuzzer target: what the webhook sink parses from outside (broker/webhook): a receiver's
// Retry-After value (retry.h) and a dead-letter record read back from the store (dead_letter.h).
// The first input byte picks the parser. A Retry-After wait must lie in [0, one day]; a record that
// parses must survive to_json() → parse_dead_letter() unchanged. Nothing may crash or read out of
// bounds.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "broker/webhook/dead_letter.h"
#include "broker/webhook/retry.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace switchboard::webhook;
  if (size < 1) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
    if (const auto wait = parse_retry_after(text, now)) {
      if (wait->count() < 0 || *wait > std::chrono::hours(24)) std::abort();
    }
    return 0;
  }
  const auto record = parse_dead_letter(text);
  if (!record) return 0;
  const auto again = parse_dead_letter(to_json(*record));
  if (!again || !(*again == *record)) std::abort();
  return 0;
}
