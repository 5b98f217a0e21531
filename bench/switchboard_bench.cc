// switchboard-bench: the end-to-end load generator, same workloads and methodology as
// /work/shared/peerbench (so the two print comparable JSON lines).
//
// One publisher connection, N subscriber connections (each its own `client`), one channel.
//   --rate 0 : throughput - publish M messages as fast as the client allows.
//   --rate R : latency    - publish at R msg/s on a fixed schedule; the payload carries a
//              steady_clock timestamp, latency = publish -> subscriber callback.
// Readiness: warm-up messages are published until every subscriber has seen one. Settle: stop when
// everything arrived, or 2 s after the last arrival (cap 20 s after publishing ended).
// Prints one JSON line on stdout (peerbench field names) and a human table on stderr
// (--json-only skips it). Exit 1 with a JSON error line when the broker cannot be reached.
//
// Durable mode (--durable), like peerbench's durable backends (redis-stream, jetstream):
//   - before the run the channel `<channel>.<pid>.<unix time>` (fresh, so seqs start at 1) is made
//     durable through the admin API: PUT <admin-url>/v1/channels/<channel> {"durable":true};
//   - the publisher uses publish_async with at most --batch K (default 128) unacknowledged publishes
//     in flight (it waits while the window is full); a publish counts when its PUBACK arrives (for a
//     durable channel: after the event's batch is synced). Reported: acked, nacked, ack_rate over
//     [t0, last ack], ack_s and, with --rate, ack_lat_us{p50,p90,p99,p99.9,max} (publish -> PUBACK).
//     pub_s / pub_rate end when the last ack arrived (peerbench's flush() also waits for the acks);
//   - subscribers: plain subscriptions to the durable channel, or with --durable-sub a durable
//     at_least_once subscription each (SUB options "durable":"bench-<pid>-<i>", "ack":{"policy":
//     "at_least_once"}, "start":"new") that acks every event. A broker that answers ERR is reported
//     (exit 1), not worked around.
#include <switchboard/build_info.h>
#include <switchboard/client.h>
#include <switchboard/protocol.h>

#include <netdb.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The payload header, byte-compatible with peerbench's.
struct header {
  std::int64_t ts_ns;  // steady_clock at publish
  std::uint64_t seq;
  std::uint8_t warmup;  // 1 = readiness probe, not counted
};

// --json-payload: the header as 34 hex digits in member "h" of a JSON object.
constexpr std::string_view json_prefix = R"({"h":")";
constexpr std::size_t json_header_digits = 34;
constexpr std::size_t json_min_size = json_prefix.size() + json_header_digits + 9;  // ","p":""}

void write_json_payload(std::string& buf, const header& h) {
  static constexpr char digits[] = "0123456789abcdef";
  unsigned char raw[17];
  std::memcpy(raw, &h.ts_ns, 8);
  std::memcpy(raw + 8, &h.seq, 8);
  raw[16] = h.warmup;
  char* out = buf.data() + json_prefix.size();
  for (unsigned char b : raw) {
    *out++ = digits[b >> 4];
    *out++ = digits[b & 0xf];
  }
}

std::string make_json_payload(std::size_t size) {
  std::string buf(json_prefix);
  buf.append(json_header_digits, '0');
  buf += R"(","p":")";
  buf.append(size > json_min_size ? size - json_min_size : 0, 'x');
  buf += "\"}";
  return buf;
}

// The header of a --json-payload event (found by its member name, so a translate that keeps "h"
// may reorder or add members); a zero header (not counted) when it is missing.
header read_json_payload(std::string_view payload) {
  header h{0, 0, 1};
  const auto at = payload.find(json_prefix.substr(1));
  if (at == std::string_view::npos || at + json_prefix.size() - 1 + json_header_digits > payload.size()) return h;
  const char* in = payload.data() + at + json_prefix.size() - 1;
  unsigned char raw[17];
  for (auto& b : raw) {
    auto nibble = [](char c) { return static_cast<unsigned char>(c <= '9' ? c - '0' : c - 'a' + 10); };
    b = static_cast<unsigned char>(nibble(in[0]) << 4 | nibble(in[1]));
    in += 2;
  }
  std::memcpy(&h.ts_ns, raw, 8);
  std::memcpy(&h.seq, raw + 8, 8);
  h.warmup = raw[16];
  return h;
}

struct sub_stats {
  std::atomic<std::uint64_t> n{0}, warm{0};
  std::atomic<std::int64_t> last_ns{0};
  std::vector<std::int64_t> lat_ns;  // only touched by this subscriber's I/O thread
  std::uint64_t last_seq = 0;        // durable mode: broker seq of the last event (I/O thread only)
  std::atomic<std::uint64_t> dups{0};  // durable mode: events at or below last_seq (redeliveries)
};

// Durable mode: publish acks (PUBACK) and the in-flight window. Callbacks run on the publisher's
// I/O thread, one at a time.
struct ack_stats {
  bool lat_mode = false;
  long window = 128;
  std::atomic<std::uint64_t> n{0}, warm{0}, nacks{0};
  std::atomic<std::int64_t> last_ns{0};
  std::vector<std::int64_t> lat_ns;  // publish -> ack; only touched by the I/O thread
  std::atomic<long> inflight{0};
  std::atomic<bool> waiting{false};
  std::mutex mu;
  std::condition_variable cv;
  std::string first_error;  // under mu

  void done(std::int64_t ts, const std::expected<switchboard::publish_ack, switchboard::error>& r) {
    if (!r) {
      if (ts >= 0) nacks.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard lk(mu);
      if (first_error.empty()) first_error = r.error().broker_code + ": " + r.error().message;
    } else if (ts < 0) {
      warm.fetch_add(1, std::memory_order_relaxed);
    } else {
      const std::int64_t t = now_ns();
      if (lat_mode) lat_ns.push_back(t - ts);
      last_ns.store(t, std::memory_order_relaxed);
      n.fetch_add(1, std::memory_order_relaxed);
    }
    inflight.fetch_sub(1);
    if (waiting.load()) {
      std::lock_guard lk(mu);
      cv.notify_one();
    }
  }
  // Blocks until fewer than `limit` publishes are unacknowledged; false after `timeout`.
  bool wait_below(long limit, std::chrono::milliseconds timeout) {
    if (inflight.load() < limit) return true;
    std::unique_lock lk(mu);
    waiting.store(true);
    const bool ok = cv.wait_for(lk, timeout, [&] { return inflight.load() < limit; });
    waiting.store(false);
    return ok;
  }
  std::string error() {
    std::lock_guard lk(mu);
    return first_error;
  }
};

// Counters of anomalies reported through on_error, shared by all clients.
struct error_counters {
  std::atomic<long> errors{0}, slow_consumer{0}, session_lost{0};
  std::mutex mu;
  std::string lost_reason;  // under mu: the first session loss, which ends the run

  // Throws once any client lost its session: a run against a broker that went away must end with
  // the reason, not wait forever (a reconnect would also make its numbers meaningless).
  void check() {
    if (session_lost.load(std::memory_order_relaxed) == 0) return;
    std::lock_guard lk(mu);
    throw std::runtime_error("lost the broker: " + lost_reason);
  }
};

struct bench_options {
  std::string url = "tcp://127.0.0.1:7400";
  std::string tag;
  std::string channel = "switchboard-bench";
  long subs = 1, msgs = 100000, size = 128;
  double rate = 0;
  double connect_timeout_s = 5;
  bool json_only = false;
  // --json-payload: the header travels hex-encoded in a JSON object, so channels with a pipeline
  // (validate, translate) can process the events: {"h":"<34 hex>","p":"xx…"} padded to --size.
  bool json_payload = false;
  // durable mode
  bool durable = false, durable_sub = false;
  long batch = 128;  // max unacknowledged publishes in flight
  std::string admin_url, token;
};

std::string percent_encode(const std::string& name) {  // everything but unreserved bytes
  std::string out;
  for (const unsigned char c : name) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      out += b;
    }
  }
  return out;
}

// One admin API request over a plain HTTP/1.1 socket (Connection: close): `method` <admin_url><path>
// with a JSON `body` (may be empty). Returns "" on 2xx, else a one-line error.
std::string admin_request(const std::string& admin_url, const std::string& token, const std::string& method,
                          const std::string& rel_path, const std::string& body) {
  std::string rest = admin_url;
  if (rest.rfind("http://", 0) == 0)
    rest = rest.substr(7);
  else if (rest.find("://") != std::string::npos)
    return "admin url must be http://host:port";
  std::string prefix;
  if (const auto slash = rest.find('/'); slash != std::string::npos) {
    prefix = rest.substr(slash);
    rest.resize(slash);
  }
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  std::string host = rest, port = "80";
  if (const auto colon = rest.rfind(':');
      colon != std::string::npos && rest.find(']', colon) == std::string::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string path = prefix + rel_path;
  std::string req =
      method + " " + path + " HTTP/1.1\r\nHost: " + rest + "\r\nContent-Type: application/json\r\n";
  if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;

  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* ai = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &ai); rc != 0) {
    return "admin " + admin_url + ": " + gai_strerror(rc);
  }
  int fd = -1;
  for (addrinfo* a = ai; a; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(ai);
  if (fd < 0) return "admin " + admin_url + ": cannot connect: " + std::strerror(errno);
  for (std::size_t off = 0; off < req.size();) {
    const ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      ::close(fd);
      return "admin " + admin_url + ": send: " + std::strerror(errno);
    }
    off += static_cast<std::size_t>(n);
  }
  std::string resp;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) resp.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  // "HTTP/1.1 200 OK"
  const auto sp = resp.find(' ');
  const int status = sp == std::string::npos ? 0 : std::atoi(resp.c_str() + sp + 1);
  if (status >= 200 && status < 300) return {};
  std::string body_out;
  if (const auto b = resp.find("\r\n\r\n"); b != std::string::npos) body_out = resp.substr(b + 4);
  for (auto& c : body_out)
    if (c == '\r' || c == '\n') c = ' ';
  return method + " " + path + ": HTTP " + std::to_string(status) + " " + body_out.substr(0, 300);
}

// PUT /v1/channels/<channel> {"durable":true}
std::string make_durable(const std::string& admin_url, const std::string& token, const std::string& channel) {
  return admin_request(admin_url, token, "PUT", "/v1/channels/" + percent_encode(channel),
                       R"({"durable":true})");
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

const char* usage =
    "usage: switchboard-bench [--url U] [--subs N] [--msgs M] [--size B>=17] [--rate R] [--channel C]\n"
    "                         [--json-payload]   (the header hex-encoded in a JSON object, for pipelines)\n"
    "                         [--tag T] [--connect-timeout S] [--token T] [--json-only]\n"
    "                         [--durable --admin-url http://H:P [--batch K] [--durable-sub]]\n"
    "       switchboard-bench --version\n";

}  // namespace

int main(int argc, char** argv) {
  bench_options o;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string k = argv[i];
      if (k == "--json-only") {
        o.json_only = true;
        continue;
      }
      if (k == "--durable") {
        o.durable = true;
        continue;
      }
      if (k == "--json-payload") {
        o.json_payload = true;
        continue;
      }
      if (k == "--durable-sub") {
        o.durable_sub = true;
        continue;
      }
      if (k == "--help" || k == "-h") {
        std::fputs(usage, stdout);
        return 0;
      }
      if (k == "--version") {
        std::printf("switchboard-bench %.*s (commit %.*s, %.*s build, protocol version %u)\n",
                    static_cast<int>(switchboard::build_info::version.size()), switchboard::build_info::version.data(),
                    static_cast<int>(switchboard::build_info::commit.size()), switchboard::build_info::commit.data(),
                    static_cast<int>(switchboard::build_info::build_type.size()),
                    switchboard::build_info::build_type.data(), unsigned{switchboard::protocol::version});
        return 0;
      }
      if (i + 1 >= argc) throw std::invalid_argument("missing value for " + k);
      const std::string v = argv[++i];
      if (k == "--url") o.url = v;
      else if (k == "--subs") o.subs = std::stol(v);
      else if (k == "--msgs") o.msgs = std::stol(v);
      else if (k == "--size") o.size = std::stol(v);
      else if (k == "--rate") o.rate = std::stod(v);
      else if (k == "--channel") o.channel = v;
      else if (k == "--tag") o.tag = v;
      else if (k == "--connect-timeout") o.connect_timeout_s = std::stod(v);
      else if (k == "--batch")
        o.batch = std::stol(v);
      else if (k == "--admin-url")
        o.admin_url = v;
      else if (k == "--token")
        o.token = v;
      else throw std::invalid_argument("unknown flag " + k);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "switchboard-bench: %s\n%s", e.what(), usage);
    return 2;
  }
  if (o.subs < 1 || o.msgs < 1 || o.size < static_cast<long>(sizeof(header)) || o.batch < 1) {
    std::fputs(usage, stderr);
    return 2;
  }
  if (o.durable_sub && !o.durable) {
    std::fprintf(stderr, "switchboard-bench: --durable-sub needs --durable\n%s", usage);
    return 2;
  }
  if (o.durable && o.admin_url.empty()) {
    std::fprintf(stderr, "switchboard-bench: --durable needs --admin-url (to make the channel durable)\n%s",
                 usage);
    return 2;
  }
  if (o.durable) {  // a fresh channel per run: its seqs start at 1, no history from earlier runs
    o.channel += "." + std::to_string(::getpid()) + "." + std::to_string(std::time(nullptr));
  }
  const bool lat_mode = o.rate > 0;
  prctl(PR_SET_TIMERSLACK, 1UL);  // precise sleep_until for pacing

  auto head = [&] {
    char b[768];
    std::snprintf(b, sizeof b,
                  "{\"backend\":\"switchboard\",\"tag\":\"%s\",\"channel\":\"%s\",\"mode\":\"%s\",\"subs\":%ld,"
                  "\"msgs\":%ld,\"size\":%ld,\"rate\":%.0f",
                  json_escape(o.tag).c_str(), json_escape(o.channel).c_str(), lat_mode ? "latency" : "throughput",
                  o.subs, o.msgs, o.size, o.rate);
    std::string out = b;
    if (o.durable) {
      std::snprintf(b, sizeof b, ",\"durable\":true,\"durable_sub\":%s,\"batch\":%ld",
                    o.durable_sub ? "true" : "false", o.batch);
      out += b;
    }
    return out;
  };

  error_counters errs;
  std::vector<std::unique_ptr<sub_stats>> st;
  std::vector<std::shared_ptr<switchboard::client>> subcons;
  std::vector<std::unique_ptr<switchboard::subscription>> subscriptions;
  std::shared_ptr<switchboard::client> pub;
  std::vector<std::string> durable_names;  // --durable-sub: the durable subscriptions this run created
  ack_stats acks;
  acks.lat_mode = lat_mode;
  acks.window = o.batch;
  try {
    if (o.durable) {
      if (const auto err = make_durable(o.admin_url, o.token, o.channel); !err.empty()) {
        throw std::runtime_error("make channel durable: " + err);
      }
      if (lat_mode) acks.lat_ns.reserve(static_cast<std::size_t>(o.msgs));
    }
    switchboard::client_options co;
    co.url = o.url;
    co.token = o.token;
    co.connect_timeout = std::chrono::milliseconds(static_cast<long long>(o.connect_timeout_s * 1000));
    co.on_error = [&errs](const switchboard::error& e) {
      errs.errors.fetch_add(1, std::memory_order_relaxed);
      if (e.broker_code == "slow_consumer") errs.slow_consumer.fetch_add(1, std::memory_order_relaxed);
      if (e.code == switchboard::errc::unreachable) {
        {
          std::lock_guard lk(errs.mu);
          if (errs.lost_reason.empty()) errs.lost_reason = e.message;
        }
        errs.session_lost.fetch_add(1, std::memory_order_relaxed);
      }
    };
    auto connect = [&] {
      auto c = switchboard::client::connect(co);
      if (!c) throw std::runtime_error("connect " + o.url + ": " + c.error().message);
      return *c;
    };
    pub = connect();
    for (long i = 0; i < o.subs; ++i) {
      st.push_back(std::make_unique<sub_stats>());
      sub_stats* s = st.back().get();
      if (lat_mode) s->lat_ns.reserve(static_cast<std::size_t>(o.msgs));
      subcons.push_back(connect());
      // Durable mode: count an event once per broker seq (an at_least_once redelivery is a dup).
      // --durable-sub: ack every event (the raw client pointer outlives the subscription).
      switchboard::client* acker = o.durable_sub ? subcons.back().get() : nullptr;
      const bool dedupe = o.durable;
      switchboard::subscribe_options so;
      if (o.durable_sub) {
        durable_names.push_back("bench-" + std::to_string(::getpid()) + "-" + std::to_string(i));
        so.extra_json =
            "\"durable\":\"" + durable_names.back() + R"(","ack":{"policy":"at_least_once"},"start":"new")";
      }
      auto cb = [s, lat_mode, acker, dedupe, json = o.json_payload](const switchboard::event_view& ev) {
        if (acker) acker->ack(ev);
        if (dedupe) {
          if (ev.seq <= s->last_seq) {
            s->dups.fetch_add(1, std::memory_order_relaxed);
            return;
          }
          s->last_seq = ev.seq;
        }
        header h{};
        if (json) {
          h = read_json_payload(ev.payload);
        } else {
          std::memcpy(&h, ev.payload.data(), std::min(sizeof h, ev.payload.size()));
        }
        if (h.warmup) {
          s->warm.fetch_add(1, std::memory_order_relaxed);
          return;
        }
        const std::int64_t t = now_ns();
        if (lat_mode) s->lat_ns.push_back(t - h.ts_ns);
        s->last_ns.store(t, std::memory_order_relaxed);
        s->n.fetch_add(1, std::memory_order_relaxed);
      };
      auto sub = subcons.back()->subscribe(o.channel, cb, so);
      if (!sub) {
        const std::string what =
            "subscribe " + o.channel + (o.durable_sub ? " (durable at_least_once)" : "") + ": " +
            (sub.error().broker_code.empty() ? "" : sub.error().broker_code + ": ") + sub.error().message;
        std::fprintf(stderr, "switchboard-bench: %s\n", what.c_str());
        throw std::runtime_error(what);
      }
      subscriptions.push_back(std::move(*sub));
    }

    std::string buf = o.json_payload ? make_json_payload(static_cast<std::size_t>(o.size))
                                     : std::string(static_cast<std::size_t>(o.size), 'x');
    header h{0, 0, 1};
    auto publish = [&] {
      errs.check();
      if (o.json_payload) {
        write_json_payload(buf, h);
      } else {
        std::memcpy(buf.data(), &h, sizeof h);
      }
      if (!o.durable) {
        if (auto ok = pub->publish(o.channel, buf); !ok)
          throw std::runtime_error("publish: " + ok.error().message);
        return;
      }
      // At most `batch` unacknowledged: wait for an ack while the window is full.
      if (!acks.wait_below(o.batch, 60s)) throw std::runtime_error("no publish ack for 60 s (window full)");
      if (acks.nacks.load(std::memory_order_relaxed) != 0) throw std::runtime_error("publish failed: " + acks.error());
      acks.inflight.fetch_add(1);
      ack_stats* a = &acks;
      const std::int64_t ts = h.warmup ? -1 : h.ts_ns;  // -1 = warm-up probe
      auto ok = pub->publish_async(
          o.channel, buf,
          [a, ts](std::expected<switchboard::publish_ack, switchboard::error> r) { a->done(ts, r); });
      if (!ok) {
        acks.inflight.fetch_sub(1);
        throw std::runtime_error("publish_async: " + ok.error().message);
      }
    };
    // Durable mode: every publish acknowledged (peerbench's flush() waits for the acks too).
    auto flush = [&](std::chrono::milliseconds timeout) {
      if (o.durable) {
        if (!acks.wait_below(1, timeout)) {
          throw std::runtime_error("publish acks missing after " + std::to_string(timeout.count()) + " ms (" +
                                   std::to_string(acks.inflight.load()) + " outstanding)");
        }
        return;
      }
      if (auto ok = pub->flush(timeout); !ok) throw std::runtime_error("flush: " + ok.error().message);
    };
    // Readiness: probe until every subscriber saw one.
    auto all_warm = [&] { return std::all_of(st.begin(), st.end(), [](auto& s) { return s->warm > 0; }); };
    for (auto end = std::chrono::steady_clock::now() + 10s; !all_warm();) {
      if (std::chrono::steady_clock::now() > end) {
        const auto err = acks.error();
        throw std::runtime_error("subscribers not ready after 10 s" +
                                 (err.empty() ? "" : " (publish: " + err + ")"));
      }
      for (long i = 0; i < o.subs; ++i) publish();
      flush(10s);
      std::this_thread::sleep_for(10ms);
    }
    std::this_thread::sleep_for(200ms);

    // Measured phase. Latency mode paces against a fixed schedule; pub_lag_max_us says how far the
    // publisher fell behind it (such a stall is NOT in the latencies: coordinated omission).
    h.warmup = 0;
    const std::int64_t t0 = now_ns();
    const double interval_ns = lat_mode ? 1e9 / o.rate : 0;
    std::int64_t lag_max = 0;
    for (long i = 0; i < o.msgs; ++i) {
      if (lat_mode) {
        const std::int64_t due = t0 + static_cast<std::int64_t>(static_cast<double>(i) * interval_ns);
        std::int64_t t = now_ns();
        if (t < due) {
          std::this_thread::sleep_for(std::chrono::nanoseconds(due - t));
          t = now_ns();
        }
        lag_max = std::max(lag_max, t - due);
        h.ts_ns = t;
      }
      h.seq = static_cast<std::uint64_t>(i);
      publish();
    }
    flush(60s);
    errs.check();
    const std::int64_t t_pub = now_ns();

    // Settle: all arrived, or 2 s after the last arrival (cap 20 s after publishing).
    const std::uint64_t expected = static_cast<std::uint64_t>(o.msgs) * static_cast<std::uint64_t>(o.subs);
    auto total = [&] {
      std::uint64_t g = 0;
      for (auto& s : st) g += s->n.load();
      return g;
    };
    for (std::int64_t last = t_pub;;) {
      for (auto& s : st) last = std::max(last, s->last_ns.load());
      const std::int64_t now = now_ns();
      if (total() >= expected || now - last > 2'000'000'000LL || now - t_pub > 20'000'000'000LL) break;
      errs.check();
      std::this_thread::sleep_for(5ms);
    }
    std::map<std::string, long> ev;
    for (auto& s : subscriptions) ev["local_drops"] += static_cast<long>(s->dropped());
    if (o.durable) {
      for (auto& s : st) ev["duplicates"] += static_cast<long>(s->dups.load());
    }
    subscriptions.clear();
    for (auto& c : subcons) {
      ev["reconnects"] += static_cast<long>(c->reconnects());
      c->close();
    }
    ev["reconnects"] += static_cast<long>(pub->reconnects());
    pub->close();
    // The durable subscriptions outlive their session: remove them (a failure is counted, not fatal).
    for (const auto& name : durable_names) {
      if (const auto err =
              admin_request(o.admin_url, o.token, "DELETE", "/v1/subscriptions/" + percent_encode(name), "");
          !err.empty()) {
        ev["admin_cleanup_errors"] += 1;
        if (!o.json_only)
          std::fprintf(stderr, "switchboard-bench: removing durable subscription: %s\n", err.c_str());
      }
    }
    ev["client_errors"] = errs.errors.load();
    ev["slow_consumer"] = errs.slow_consumer.load();
    ev["sessions_lost"] = errs.session_lost.load();

    // Rates: each subscriber over [t0, its last arrival]; total over [t0, last arrival of any].
    const std::uint64_t got = total();
    std::int64_t last_arrival = t0;
    std::string sub_rates;
    std::vector<std::int64_t> lat;
    for (auto& s : st) {
      const std::int64_t ls = s->last_ns.load();
      last_arrival = std::max(last_arrival, ls);
      if (!sub_rates.empty()) sub_rates += ',';
      sub_rates += std::to_string(std::llround(static_cast<double>(s->n) / (std::max<std::int64_t>(ls - t0, 1) / 1e9)));
      lat.insert(lat.end(), s->lat_ns.begin(), s->lat_ns.end());
    }
    const double pub_s = static_cast<double>(t_pub - t0) / 1e9;
    const double deliv_s = static_cast<double>(std::max<std::int64_t>(last_arrival - t0, 1)) / 1e9;
    const double gotd = static_cast<double>(got);
    const double subs_d = static_cast<double>(o.subs);
    const double size_d = static_cast<double>(o.size);
    std::string out = head();
    char b[768];
    std::snprintf(b, sizeof b,
                  ",\"pub_rate\":%.0f,\"deliv_rate\":%.0f,\"deliv_MBps\":%.2f,\"sub_rate_mean\":%.0f,"
                  "\"sub_MBps_mean\":%.2f,\"pub_s\":%.3f,\"deliv_s\":%.3f,\"expected\":%llu,"
                  "\"received\":%llu,\"lost\":%lld,\"loss_pct\":%.3f",
                  static_cast<double>(o.msgs) / pub_s, gotd / deliv_s, gotd / deliv_s * size_d / 1e6,
                  gotd / deliv_s / subs_d, gotd / deliv_s / subs_d * size_d / 1e6, pub_s, deliv_s,
                  static_cast<unsigned long long>(expected), static_cast<unsigned long long>(got),
                  static_cast<long long>(expected) - static_cast<long long>(got),
                  100.0 * (static_cast<double>(expected) - gotd) / static_cast<double>(expected));
    out += b;
    out += ",\"sub_rates\":[" + sub_rates + "]";
    double p50 = 0, p90 = 0, p99 = 0, p999 = 0, pmax = 0;
    if (lat_mode && !lat.empty()) {
      std::sort(lat.begin(), lat.end());
      auto pct = [&](double q) {
        return static_cast<double>(lat[std::min(lat.size() - 1, static_cast<std::size_t>(q * static_cast<double>(lat.size())))]) /
               1e3;
      };
      p50 = pct(0.50), p90 = pct(0.90), p99 = pct(0.99), p999 = pct(0.999);
      pmax = static_cast<double>(lat.back()) / 1e3;
      std::snprintf(b, sizeof b,
                    ",\"lat_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p99.9\":%.1f,\"max\":%.1f},"
                    "\"pub_lag_max_us\":%.1f",
                    p50, p90, p99, p999, pmax, static_cast<double>(lag_max) / 1e3);
      out += b;
    }
    // Durable: acks, rate over [t0, last ack] (flush waited for all of them), publish -> ack latency.
    const std::uint64_t acked = acks.n.load();
    const double ack_s = static_cast<double>(std::max<std::int64_t>(acks.last_ns.load() - t0, 1)) / 1e9;
    double a50 = 0, a90 = 0, a99 = 0, a999 = 0, amax = 0;
    if (o.durable) {
      std::snprintf(b, sizeof b, ",\"acked\":%llu,\"nacked\":%llu,\"ack_rate\":%.0f,\"ack_s\":%.3f",
                    static_cast<unsigned long long>(acked),
                    static_cast<unsigned long long>(acks.nacks.load()), static_cast<double>(acked) / ack_s,
                    ack_s);
      out += b;
      auto& al = acks.lat_ns;
      if (lat_mode && !al.empty()) {
        std::sort(al.begin(), al.end());
        auto pct = [&](double q) {
          return static_cast<double>(al[std::min(
                     al.size() - 1, static_cast<std::size_t>(q * static_cast<double>(al.size())))]) /
                 1e3;
        };
        a50 = pct(0.50), a90 = pct(0.90), a99 = pct(0.99), a999 = pct(0.999);
        amax = static_cast<double>(al.back()) / 1e3;
        std::snprintf(b, sizeof b,
                      ",\"ack_lat_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p99.9\":%.1f,\"max\":%.1f}",
                      a50, a90, a99, a999, amax);
        out += b;
      }
      if (const auto err = acks.error(); !err.empty()) out += ",\"first_nack\":\"" + json_escape(err) + "\"";
    }
    out += ",\"events\":{";
    bool first = true;
    for (auto& [k, v] : ev) {
      out += first ? "\"" : ",\"";
      out += k;
      out += "\":";
      out += std::to_string(v);
      first = false;
    }
    out += "}}";
    std::puts(out.c_str());
    std::fflush(stdout);

    if (!o.json_only) {
      std::fprintf(stderr, "switchboard-bench %s  %s  subs=%ld msgs=%ld size=%ld rate=%.0f\n", o.tag.c_str(),
                   lat_mode ? "latency" : "throughput", o.subs, o.msgs, o.size, o.rate);
      std::fprintf(stderr, "  %-22s %14.0f msg/s  (%.3f s)\n", "publish", static_cast<double>(o.msgs) / pub_s, pub_s);
      std::fprintf(stderr, "  %-22s %14.0f msg/s  %.2f MB/s  (%.3f s)\n", "delivered (all subs)", gotd / deliv_s,
                   gotd / deliv_s * size_d / 1e6, deliv_s);
      std::fprintf(stderr, "  %-22s %14.0f msg/s\n", "per subscriber (mean)", gotd / deliv_s / subs_d);
      std::fprintf(stderr, "  %-22s %llu of %llu  (lost %lld, %.3f %%)\n", "received",
                   static_cast<unsigned long long>(got), static_cast<unsigned long long>(expected),
                   static_cast<long long>(expected) - static_cast<long long>(got),
                   100.0 * (static_cast<double>(expected) - gotd) / static_cast<double>(expected));
      if (lat_mode && !lat.empty()) {
        std::fprintf(stderr, "  %-22s p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (pub lag max %.1f)\n",
                     "latency us", p50, p90, p99, p999, pmax, static_cast<double>(lag_max) / 1e3);
      }
      if (o.durable) {
        std::fprintf(stderr, "  %-22s %14.0f msg/s  acked %llu, nacked %llu  (%.3f s, window %ld)\n",
                     "acked publishes", static_cast<double>(acked) / ack_s,
                     static_cast<unsigned long long>(acked),
                     static_cast<unsigned long long>(acks.nacks.load()), ack_s, o.batch);
        if (lat_mode && !acks.lat_ns.empty()) {
          std::fprintf(stderr, "  %-22s p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
                       "ack latency us", a50, a90, a99, a999, amax);
        }
      }
      for (auto& [k, v] : ev) std::fprintf(stderr, "  %-22s %14ld\n", k.c_str(), v);
    }
    return 0;
  } catch (const std::exception& e) {
    std::printf("%s,\"error\":\"%s\"}\n", head().c_str(), json_escape(e.what()).c_str());
    std::fflush(stdout);
    std::_Exit(1);  // without running client destructors: a wedged broker must not hang the exit
  }
}
