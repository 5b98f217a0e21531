// libFuzzer target: the transport's real message handling (broker/transport/core.cc) with a real
// inline router, driven in-process. The input is a script of messages from four peers:
//   [selector u8][length u16 little-endian][message bytes] ...
// selector % 4 picks the peer's routing identity and bits 0x0c its connection (so one identity
// moves between connections, as a reconnecting or hijacking peer would); bit 0x20 closes that
// connection after the message, 0x40 makes the peer's pipe full and 0x80 makes it vanish
// (EHOSTUNREACH) from then on, so every session state (unknown, answered hello_required, live,
// stalled, gone, reaped) meets every kind of message. After each message the
// loop runs (drain, housekeeping, reap) as transport.cc does, with time advancing so heartbeats
// expire.
#include <spdlog/spdlog.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "broker/auth/auth.h"
#include "broker/router/router.h"
#include "broker/transport/core.h"
#include "support/recording_wire.h"

namespace {

using namespace switchboard;

const auth::token_table& tokens() {
  static const auth::token_table t = [] {
    std::vector<std::string> entries{"pub-only:pubsecret:acme:publish", "acme-ops:acmesecret:acme:admin,publish,subscribe"};
    auto made = auth::token_table::make("admintoken", entries);
    if (!made) std::abort();
    return std::move(*made);
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  spdlog::set_level(spdlog::level::off);  // the warnings are expected; they would drown the fuzzer's output
  router::router_options ro;
  ro.inline_shards = true;
  ro.epoch = 1;
  ro.queue_capacity = 4;  // small queues: the full-queue paths run too
  ro.flush_bytes = 64;
  router::router r(ro);
  transport::transport_options to;
  to.tokens = &tokens();
  to.epoch = 1;
  to.subscriber_queue = 8;
  to.reply_queue_bytes = 512;
  testing::recording_wire wire;
  transport::transport_core core(to, r, wire);
  r.start([] {});

  auto now = transport::clock::now();
  std::size_t at = 0;
  while (at + 3 <= size) {
    const std::uint8_t sel = data[at];
    const std::size_t len = std::min<std::size_t>(data[at + 1] | (std::size_t{data[at + 2]} << 8), size - at - 3);
    at += 3;
    const std::string identity = "peer-" + std::to_string(sel % 4);
    if (sel & 0x80) wire.gone.insert(identity);
    if (sel & 0x40) wire.full.insert(identity);
    auto owner = std::make_shared<std::string>(reinterpret_cast<const char*>(data + at), len);
    at += len;
    const int peer = (sel >> 2) & 3;
    core.handle_message(identity, peer, owner, *owner);
    if (sel & 0x20) core.peer_closed(peer);
    for (int i = 0; i < 64 && core.drain(); ++i) {
    }
    now += std::chrono::milliseconds(7);
    core.tick(now);
    wire.sent.clear();  // keep memory flat on long inputs
  }
  r.stop();
  for (int i = 0; i < 64 && core.drain(); ++i) {
  }
  core.tick(now + std::chrono::hours(1));
  return 0;
}
