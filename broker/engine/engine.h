// The engine seam (DESIGN.md "Engine"): everything a channel's durable history needs, behind one
// interface, so that where positions live and who keeps the history can change (the local store
// today; a Redis engine in cluster mode) without touching the router.
//
// Operation: a history is opened by channel name and then named by the engine's `log_id`. Its
// position is (epoch, seq): the epoch names one history (a new data dir, a wipe, a failover), the
// seq numbers its events from 1. Today the router assigns seqs (one writer per channel: the owning
// shard) and the engine records them; an engine that assigns seqs itself (Redis) will answer them
// through the same two-phase append (the shard delivers and acknowledges when `done` runs).
// Invariant every engine keeps, checked by tests/engine/engine_conformance_test.cc: an (epoch,
// seq) is never bound to two events — a history that restarts for any reason (wiped, reopened
// empty after a trim, failed over, lost its unsynced tail) either continues its seq or gets a new
// epoch.
//
// Concurrency: every member may be called from any thread; for one log, the caller (its shard)
// does not run wipe() concurrently with append(). `done` runs on the engine's own thread, in
// append order.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::engine {

class history_engine {
 public:
  virtual ~history_engine() = default;

  struct keyed_seq {
    std::uint64_t seq = 0;
    std::uint64_t time_ns = 0;
    std::string key;
  };
  struct position {
    std::uint64_t log_id = 0;
    std::uint64_t epoch = 0;
    std::uint64_t last_seq = 0;  // the high-water seq: the next event is last_seq + 1 in `epoch`
    // With keys_since_ns: the idempotency keys of the events published since then, in seq order
    // (so a restarted broker's dedupe window holds what it held before).
    std::vector<keyed_seq> recent_keys;
  };
  // Opens (creating if needed) a channel's log; keys_since_ns != 0 also reads the keys published
  // since (Unix ns). Blocks briefly (a synced write the first time; a backward read of the window).
  [[nodiscard]] virtual std::expected<position, std::string> open(std::string_view channel,
                                                                  std::uint64_t keys_since_ns) = 0;
  // open() without blocking the caller (a shard must not wait for the synced writes that create a
  // history): `done` runs exactly once, on an engine thread. Opens complete in request order. The
  // default runs open() inline, for engines whose open never blocks.
  using open_completion = std::move_only_function<void(std::expected<position, std::string>)>;
  virtual void open_async(std::string channel, std::uint64_t keys_since_ns, open_completion done) {
    done(open(channel, keys_since_ns));
  }

  struct entry {
    std::uint64_t log_id = 0;
    std::uint64_t seq = 0;
    std::uint64_t time_ns = 0;
    std::string_view key;
    std::string_view payload;
  };
  // Why something was not done: `code` is the ERR code publishers get (docs/PROTOCOL.md:
  // store_full, store_failed, unavailable, overloaded, …), `message` one readable line.
  struct log_error {
    std::string code;
    std::string message;
    // append() only: the refusal is transient (overloaded) and the same batch may be offered again.
    bool retry = false;
  };
  using completion = std::move_only_function<void(std::expected<void, log_error>)>;

  // Queues a batch; `done` runs once every entry is durable (or failed). When the engine does not
  // take the batch, `done` is left uncalled and intact and the error says why: `retry` set
  // (overloaded) means offer it again later; otherwise (e.g. "unavailable" while stopping) the
  // caller refuses the batch's publishes with the error instead of retrying forever.
  [[nodiscard]] virtual std::expected<void, log_error> append(const std::vector<entry>& batch,
                                                              completion& done) = 0;
  // Deletes the log's whole history and starts a new one: the new epoch, numbering from 1. Called
  // only when none of the log's appends is queued or in flight. Blocks (a synced write): an
  // operator's action, not a hot path.
  [[nodiscard]] virtual std::expected<std::uint64_t, log_error> wipe(std::uint64_t log_id) = 0;

  // --- reading and retention (admin history, retention, conformance) ---
  struct event {
    std::uint64_t seq = 0;
    std::uint64_t time_ns = 0;
    std::string key;
    std::string payload;
  };
  // Events with seq >= from_seq in seq order, at most max_events and about max_bytes (at least one
  // when any exists). Only completed appends are guaranteed visible.
  [[nodiscard]] virtual std::expected<std::vector<event>, log_error> read(std::uint64_t log_id, std::uint64_t from_seq,
                                                                         std::size_t max_events,
                                                                         std::size_t max_bytes) = 0;
  // The log's current epoch and its oldest stored seq (0 = empty).
  struct extent {
    std::uint64_t epoch = 0;
    std::uint64_t first_seq = 0;
    std::uint64_t last_seq = 0;  // high-water, as position::last_seq
    // The highest seq trim() removed in this epoch (0 = none): a reader missing a seq at or below
    // it lost it to retention (a gap); a missing seq above it never held an event.
    std::uint64_t trimmed_through = 0;
  };
  [[nodiscard]] virtual std::expected<extent, log_error> extent_of(std::uint64_t log_id) = 0;
  // Just the current epoch and high-water seq of an open history (no read of its oldest event):
  // what a reader following the history needs to notice a new epoch.
  [[nodiscard]] virtual std::expected<position, log_error> position_of(std::uint64_t log_id) = 0;
  // Removes the oldest events beyond the limits (0 = none) at `now_ns`; returns how many. The
  // numbering is kept: a log trimmed to empty continues its seq.
  struct limits {
    std::uint64_t max_age_ns = 0;
    std::uint64_t max_events = 0;
    std::uint64_t max_bytes = 0;
  };
  [[nodiscard]] virtual std::expected<std::uint64_t, log_error> trim(std::uint64_t log_id, const limits& l,
                                                                    std::uint64_t now_ns) = 0;
  // Every history the engine holds, (channel, log_id) in channel-name order (bytewise), one page
  // at a time: at most `limit` names after `after` ("" = from the start).
  [[nodiscard]] virtual std::expected<std::vector<std::pair<std::string, std::uint64_t>>, log_error> list(
      std::string_view after, std::size_t limit) = 0;

  // Calls `visit(name, log_id)` for every history, paging through list() (one page in memory at a
  // time); stops early when `visit` returns false. Returns the first list() error.
  [[nodiscard]] std::expected<void, log_error> for_each_history(
      const std::function<bool(std::string&&, std::uint64_t)>& visit, std::size_t page_size = 4096) {
    for (std::string after;;) {
      auto page = list(after, page_size);
      if (!page) return std::unexpected(std::move(page.error()));
      const bool last_page = page->size() < page_size;
      if (!last_page) after = page->back().first;
      for (auto& [name, id] : *page) {
        if (!visit(std::move(name), id)) return {};
      }
      if (last_page) return {};
    }
  }
};

}  // namespace switchboard::engine
