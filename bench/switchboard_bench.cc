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
#include <switchboard/client.h>

#include <sys/prctl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
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

struct sub_stats {
  std::atomic<std::uint64_t> n{0}, warm{0};
  std::atomic<std::int64_t> last_ns{0};
  std::vector<std::int64_t> lat_ns;  // only touched by this subscriber's I/O thread
};

// Counters of anomalies reported through on_error, shared by all clients.
struct error_counters {
  std::atomic<long> errors{0}, slow_consumer{0}, session_lost{0};
};

struct bench_options {
  std::string url = "tcp://127.0.0.1:7400";
  std::string tag;
  std::string channel = "switchboard-bench";
  long subs = 1, msgs = 100000, size = 128;
  double rate = 0;
  double connect_timeout_s = 5;
  bool json_only = false;
};

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
    "                         [--tag T] [--connect-timeout S] [--json-only]\n";

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
      if (k == "--help" || k == "-h") {
        std::fputs(usage, stdout);
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
      else throw std::invalid_argument("unknown flag " + k);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "switchboard-bench: %s\n%s", e.what(), usage);
    return 2;
  }
  if (o.subs < 1 || o.msgs < 1 || o.size < static_cast<long>(sizeof(header))) {
    std::fputs(usage, stderr);
    return 2;
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
    return std::string(b);
  };

  error_counters errs;
  std::vector<std::unique_ptr<sub_stats>> st;
  std::vector<std::shared_ptr<switchboard::client>> subcons;
  std::vector<std::unique_ptr<switchboard::subscription>> subscriptions;
  std::shared_ptr<switchboard::client> pub;
  try {
    switchboard::client_options co;
    co.url = o.url;
    co.connect_timeout = std::chrono::milliseconds(static_cast<long long>(o.connect_timeout_s * 1000));
    co.on_error = [&errs](const switchboard::error& e) {
      errs.errors.fetch_add(1, std::memory_order_relaxed);
      if (e.broker_code == "slow_consumer") errs.slow_consumer.fetch_add(1, std::memory_order_relaxed);
      if (e.code == switchboard::errc::unreachable) errs.session_lost.fetch_add(1, std::memory_order_relaxed);
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
      auto sub = subcons.back()->subscribe(o.channel, [s, lat_mode](const switchboard::event_view& ev) {
        header h{};
        std::memcpy(&h, ev.payload.data(), std::min(sizeof h, ev.payload.size()));
        if (h.warmup) {
          s->warm.fetch_add(1, std::memory_order_relaxed);
          return;
        }
        const std::int64_t t = now_ns();
        if (lat_mode) s->lat_ns.push_back(t - h.ts_ns);
        s->last_ns.store(t, std::memory_order_relaxed);
        s->n.fetch_add(1, std::memory_order_relaxed);
      });
      if (!sub) throw std::runtime_error("subscribe " + o.channel + ": " + sub.error().message);
      subscriptions.push_back(std::move(*sub));
    }

    std::string buf(static_cast<std::size_t>(o.size), 'x');
    header h{0, 0, 1};
    auto publish = [&] {
      std::memcpy(buf.data(), &h, sizeof h);
      if (auto ok = pub->publish(o.channel, buf); !ok) throw std::runtime_error("publish: " + ok.error().message);
    };
    // Readiness: probe until every subscriber saw one.
    auto all_warm = [&] { return std::all_of(st.begin(), st.end(), [](auto& s) { return s->warm > 0; }); };
    for (auto end = std::chrono::steady_clock::now() + 10s; !all_warm();) {
      if (std::chrono::steady_clock::now() > end) throw std::runtime_error("subscribers not ready after 10 s");
      for (long i = 0; i < o.subs; ++i) publish();
      if (auto ok = pub->flush(10s); !ok) throw std::runtime_error("flush: " + ok.error().message);
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
    if (auto ok = pub->flush(60s); !ok) throw std::runtime_error("flush: " + ok.error().message);
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
      std::this_thread::sleep_for(5ms);
    }
    std::map<std::string, long> ev;
    for (auto& s : subscriptions) ev["local_drops"] += static_cast<long>(s->dropped());
    subscriptions.clear();
    for (auto& c : subcons) {
      ev["reconnects"] += static_cast<long>(c->reconnects());
      c->close();
    }
    ev["reconnects"] += static_cast<long>(pub->reconnects());
    pub->close();
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
      for (auto& [k, v] : ev) std::fprintf(stderr, "  %-22s %14ld\n", k.c_str(), v);
    }
    return 0;
  } catch (const std::exception& e) {
    std::printf("%s,\"error\":\"%s\"}\n", head().c_str(), json_escape(e.what()).c_str());
    std::fflush(stdout);
    std::_Exit(1);  // without running client destructors: a wedged broker must not hang the exit
  }
}
