#include "broker/webhook/retry.h"

#include <time.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <string>

namespace switchboard::webhook {
namespace {

constexpr std::chrono::milliseconds max_retry_after{24LL * 3600 * 1000};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// An HTTP-date in any of the three forms RFC 9110 §5.6.7 requires a recipient to accept.
std::optional<std::time_t> parse_http_date(std::string_view text) {
  if (text.size() < 20 || text.size() > 40) return std::nullopt;
  const std::string copy(text);  // strptime needs a terminated string
  static constexpr const char* formats[] = {
      "%a, %d %b %Y %H:%M:%S GMT",  // IMF-fixdate
      "%A, %d-%b-%y %H:%M:%S GMT",  // RFC 850
      "%a %b %e %H:%M:%S %Y",       // asctime
  };
  for (const char* format : formats) {
    std::tm tm{};
    const char* end = ::strptime(copy.c_str(), format, &tm);
    if (end != nullptr && *end == '\0') return ::timegm(&tm);
  }
  return std::nullopt;
}

}  // namespace

outcome classify_status(int status) noexcept {
  if (status >= 200 && status < 300) return outcome::delivered;
  if (status == 408 || status == 429 || (status >= 500 && status < 600)) return outcome::retry;
  return outcome::permanent;
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           std::chrono::system_clock::time_point now) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (value.front() >= '0' && value.front() <= '9') {
    std::uint64_t seconds = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (end != value.data() + value.size()) return std::nullopt;  // "12abc", "1.5"
    if (ec == std::errc::result_out_of_range || seconds > 24u * 3600u) return max_retry_after;
    if (ec != std::errc()) return std::nullopt;
    return std::chrono::milliseconds(static_cast<std::int64_t>(seconds) * 1000);
  }
  const auto date = parse_http_date(value);
  if (!date) return std::nullopt;
  const auto at = std::chrono::system_clock::from_time_t(*date);
  if (at <= now) return std::chrono::milliseconds(0);
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(at - now);
  return std::min(wait, max_retry_after);
}

std::chrono::milliseconds backoff(std::uint32_t retry, std::chrono::milliseconds initial,
                                  std::chrono::milliseconds max, double jitter, std::mt19937_64& random) {
  if (max.count() <= 0) return std::chrono::milliseconds(0);
  const std::int64_t first = std::max<std::int64_t>(initial.count(), 0);
  const std::uint32_t shift = std::min<std::uint32_t>(retry == 0 ? 0 : retry - 1, 40);
  // first << shift without overflow: stop doubling once past max.
  std::int64_t cap = first;
  for (std::uint32_t i = 0; i < shift && cap < max.count(); ++i) cap *= 2;
  cap = std::min(cap, max.count());
  jitter = std::clamp(jitter, 0.0, 1.0);
  if (jitter == 0.0 || cap == 0) return std::chrono::milliseconds(cap);
  std::uniform_real_distribution<double> fraction(0.0, jitter);
  const auto lowered =
      static_cast<std::int64_t>(std::llround(static_cast<double>(cap) * (1.0 - fraction(random))));
  return std::chrono::milliseconds(std::clamp<std::int64_t>(lowered, 0, cap));
}

}  // namespace switchboard::webhook
