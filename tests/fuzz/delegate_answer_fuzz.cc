// libFuzzer target: delegate answers (broker/delegate/answer.h), the bytes a delegate sends back. The
// input is `<status byte><limit byte><body>[\0<body>…]`: up to four answer bodies with the status and
// the body limit chosen by the first two bytes. Each body is interpreted; the pass payloads are merged
// as a parallel list would be. Nothing may crash, hang or read out of bounds, and:
//   - a failure has a non-empty reason of printable ASCII (it goes into logs, JSON and dead letters);
//   - a pass payload is a JSON object without a top-level "_switchboard" that interprets again to
//     itself with no metadata (stripping is complete and stable);
//   - merging pass payloads never fails, and merging the result alone gives it back unchanged.
#include "broker/delegate/answer.h"

#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace dl = switchboard::delegate;

namespace {

constexpr std::array<int, 8> statuses = {200, 201, 204, 500, 302, 202, 0, 200};
constexpr std::array<std::size_t, 4> limits = {0, 16, 256, 1 << 20};

bool printable(std::string_view s) {
  for (const char ch : s) {
    const auto b = static_cast<unsigned char>(ch);
    if (b < 0x20 || b > 0x7e) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const int status = statuses[data[0] % statuses.size()];
  const std::size_t limit = limits[data[1] % limits.size()];
  std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);

  std::vector<std::string> passed;
  for (int i = 0; i < 4 && !(i > 0 && rest.empty()); ++i) {
    const std::size_t nul = rest.find('\0');
    const std::string_view body = rest.substr(0, nul);
    rest = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);

    dl::answer a = dl::interpret_answer(status, body, limit);
    switch (a.what) {
      case dl::answer::kind::failure:
        if (a.reason.empty() || !printable(a.reason)) std::abort();
        break;
      case dl::answer::kind::drop:
        if (status != 204) std::abort();
        break;
      case dl::answer::kind::pass: {
        if (status != 200 && status != 201) std::abort();
        const dl::answer again = dl::interpret_answer(200, a.payload, 0);
        if (again.what != dl::answer::kind::pass || again.payload != a.payload || !again.meta.empty())
          std::abort();
        passed.push_back(std::move(a.payload));
        break;
      }
    }
  }

  const std::vector<std::string_view> views(passed.begin(), passed.end());
  const auto merged = dl::merge_objects(views);
  if (!merged) std::abort();
  const std::string_view one[] = {*merged};
  const auto again = dl::merge_objects(one);
  if (!again || *again != *merged) std::abort();
  return 0;
}
