// A streamed HTTP response body: the admin server writes the status line and headers (chunked
// transfer encoding), then every chunk pushed here, in order, until the stream ends. The building
// block for long-lived responses such as Server-Sent Events (`GET /v1/stream`): an open stream costs
// a socket and a few hundred bytes, never a thread.
//
// Operation: push() appends to a bounded queue and, when the queue was empty, posts one wake-up to
// the connection's strand, which writes everything queued as one HTTP chunk per write. Chunks pushed
// before the server attached the stream (i.e. while the handler is still running) are written right
// after the headers.
//
// Concurrency: every public member may be called from any thread, concurrently; none blocks on the
// network. The mutex guards the queue and the state; callbacks run without it held.
//
// Lifecycle: a stream handler creates it (std::make_shared) and returns it in an http_response. It
// ends once, for the first of: close() was called and the queue is written; the client disconnected;
// a write stalled longer than admin_options::write_timeout; the server stops; the handler's response
// was an error (never attached). Then on_close's callback runs (on the server's io thread, or in
// on_close() itself if the stream already ended), and push() returns `closed`.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace switchboard::admin {

namespace detail {
class stream_attachment;
}

class response_stream {
 public:
  enum class push_result {
    queued,  // will be written
    full,    // more than max_queued_bytes would be waiting: nothing queued (drop, or close())
    closed,  // the stream ended or close() was called: nothing queued
  };

  // `max_queued_bytes` bounds the bytes pushed but not yet handed to the socket (a slow reader
  // makes push() return `full`, never grows memory without bound). Default 1 MiB.
  explicit response_stream(std::size_t max_queued_bytes = std::size_t{1} << 20);
  response_stream(const response_stream&) = delete;
  response_stream& operator=(const response_stream&) = delete;

  // Queues `chunk` (consumed only when `queued`; an empty chunk is a no-op reported as queued).
  // Never blocks.
  [[nodiscard]] push_result push(std::string chunk);
  // Ends the stream after the chunks already queued are written (a terminating chunk, then the
  // connection closes). Idempotent.
  void close();
  // False once close() was called or the stream ended.
  [[nodiscard]] bool is_open() const;
  // `fn` runs exactly once when the stream ends: on the io thread (it must not block), or right
  // here if the stream has already ended. A later call replaces an earlier, not-yet-run `fn`.
  void on_close(std::function<void()> fn);

 private:
  friend class detail::stream_attachment;

  mutable std::mutex _mutex;
  const std::size_t _max_queued_bytes;
  std::vector<std::string> _queue;   // guarded by _mutex
  std::size_t _queued_bytes = 0;     // guarded by _mutex
  bool _closing = false;             // close() called; guarded by _mutex
  bool _ended = false;               // the connection is done with it; guarded by _mutex
  bool _wake_pending = false;        // a wake-up is posted and not yet served; guarded by _mutex
  std::function<void()> _wake;       // set while attached; guarded by _mutex
  std::function<void()> _on_close;   // guarded by _mutex
};

namespace detail {

// The server's side of a response_stream (http_server.cc only).
class stream_attachment {
 public:
  // Starts delivering: `wake` is called (from the pushing thread, without locks held) whenever
  // chunks or a close are waiting and no wake-up is pending. Calls it once now if anything waits.
  static void attach(response_stream& s, std::function<void()> wake);
  struct batch {
    std::vector<std::string> chunks;
    bool closing = false;  // close() was called: after `chunks`, finish the stream
  };
  // Takes everything queued; clears the pending wake-up so the next push wakes again.
  static batch take(response_stream& s);
  // The stream ended (client gone, timeout, stop, or finished): drops the queue and runs on_close.
  static void end(response_stream& s);
};

}  // namespace detail
}  // namespace switchboard::admin
