// A client's backlog: the encoded batches the socket could not take yet, and what to do when it
// grows past its bound (the slow-consumer policies).
//
// Operation: shed() is called when the backlog holds more events than allowed. It first drops
// whole batches made only of drop_oldest events (cheap, no decoding). If that is not enough it
// decodes the backlog record by record and applies each EVENT's policy:
//   - conflate: only the latest event per (subscription, channel, value of the conflate key) is
//     kept; events whose payload lacks the key are treated as drop_oldest;
//   - spill: every queued event of that (subscription, channel) is removed and reported, with the
//     first removed seq, so the caller can serve the subscriber from the channel's log instead;
//   - drop_oldest: oldest first, until the backlog fits;
//   - disconnect: if the backlog still does not fit, the caller drops the session;
//   - keep: never shed (events of durable subscriptions, which the consumer manager already bounds
//     by max_ack_pending); they do not count against the bound, only against keep_limit.
// Non-EVENT records (PUBACK, PONG, ERR …) are always kept, in order.
//
// Concurrency: plain functions on caller-owned data (the transport thread).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/router/router.h"

namespace switchboard::transport {

enum class overflow_policy : std::uint8_t { disconnect, drop_oldest, conflate, spill, keep };

struct queued_batch {
  std::string bytes;        // encoded records
  std::uint32_t events = 0;  // EVENT records in bytes
  bool droppable = false;    // every EVENT is drop_oldest
  unsigned shard = 0;        // producer, for drop reports
  router::channel_tally tally;  // events per channel handle
};

struct spill_request {
  std::uint32_t sub_id = 0;
  std::string channel;
  std::uint64_t first_seq = 0;  // the oldest removed event; the log serves from here
};

struct shed_result {
  bool disconnect = false;          // the backlog still exceeds the bound
  std::uint64_t dropped = 0;        // by drop_oldest
  std::uint64_t conflated = 0;      // replaced by a newer event with the same key
  std::uint64_t spilled = 0;        // handed to the log
  std::vector<spill_request> spills;
  // Dropped whole batches' tallies, per producing shard (for per-channel stats).
  std::vector<std::pair<unsigned, router::channel_tally>> reports;
};

// How an event should be shed: the policy, and for conflate the JSON field to key on.
struct event_policy {
  overflow_policy policy = overflow_policy::disconnect;
  std::string_view conflate_key;
};
using policy_lookup = std::function<event_policy(std::uint32_t sub_id, std::string_view channel)>;

// Sheds `backlog` (whose EVENT count is `events`) down to `bound` events, rewriting it in place.
// Returns what was removed and whether the session must be dropped.
// `keep_limit` bounds the kept (never shed) events; beyond it the session is dropped too.
[[nodiscard]] shed_result shed(std::deque<queued_batch>& backlog, std::size_t& events, std::size_t bound,
                               std::size_t keep_limit, const policy_lookup& lookup);

}  // namespace switchboard::transport
