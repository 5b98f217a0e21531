// The child process of store_test's crash case: opens the RocksDB store in
// $SWITCHBOARD_STORE_CRASH_DIR, appends batches of 50 events to channel 1 with up to 8 batches in
// flight, and writes the last seq of every acknowledged batch to the pipe fd
// $SWITCHBOARD_STORE_CRASH_FD. It runs until the parent SIGKILLs it. A separate executable (not a
// test case of store_test) so that nothing in the suite is skipped.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <semaphore>
#include <string>
#include <vector>

#include "broker/store/store.h"

using switchboard::store::append_request;
using switchboard::store::error;
using switchboard::store::store;

int main() {
  const char* dir = std::getenv("SWITCHBOARD_STORE_CRASH_DIR");
  const char* fd_text = std::getenv("SWITCHBOARD_STORE_CRASH_FD");
  if (dir == nullptr || fd_text == nullptr) {
    std::fprintf(stderr, "store_crash_child: run by store_test only\n");
    return 2;
  }
  constexpr std::uint64_t batch_size = 50;  // store_test's crash_batch
  const int fd = std::atoi(fd_text);
  auto opened = store::open_rocksdb(dir, {});
  if (!opened) {
    std::fprintf(stderr, "store_crash_child: %s\n", opened.error().message.c_str());
    return 1;
  }
  store& s = **opened;
  s.start();
  std::counting_semaphore<8> in_flight(8);
  for (std::uint64_t seq = 1; seq < 10'000'000; seq += batch_size) {
    in_flight.acquire();
    std::vector<append_request> batch;
    for (std::uint64_t i = seq; i < seq + batch_size; ++i) {
      std::string payload = "crash-event-";  // store_test's crash_payload(i)
      payload += std::to_string(i);
      batch.push_back(append_request{1, i, i, "", std::move(payload)});
    }
    const std::uint64_t last = seq + batch_size - 1;
    auto r = s.append(std::move(batch), [&in_flight, fd, last](std::expected<void, error> r) {
      if (!r) std::abort();
      if (write(fd, &last, sizeof last) != sizeof last) std::abort();
      in_flight.release();
    });
    if (!r) {
      std::fprintf(stderr, "store_crash_child: %s\n", r.error().message.c_str());
      return 1;
    }
  }
  return 0;
}
