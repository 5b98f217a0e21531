// The real broker binary against a failing or damaged data dir (GitHub issue 14, items 11-13):
// a full disk, a write-ahead log damaged in the middle, a damaged SST file, and the last seq of
// durable channels after a restart.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <switchboard/client.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "support/broker_process.h"
#include "support/child_process.h"

namespace switchboard {
namespace {

using namespace std::chrono_literals;
using test::broker_process;
using test::temp_dir;
namespace fs = std::filesystem;

constexpr const char* token = "disk-token";

std::shared_ptr<client> connect_client(const broker_process& b) {
  client_options co;
  co.url = b.endpoint;
  co.token = token;
  co.reconnect = false;
  auto c = client::connect(co);
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message);
  return c ? *c : nullptr;
}

void make_durable(const broker_process& b, const std::string& channel) {
  auto put = b.http(token)->Put("/v1/channels/" + channel, R"({"durable":true})", "application/json");
  ASSERT_TRUE(put && put->status == 200) << (put ? put->body : "no response");
}

// Every (seq, data) of a durable channel's history, page by page.
std::vector<std::pair<std::uint64_t, std::string>> read_history(const broker_process& b,
                                                                const std::string& channel) {
  auto http = b.http(token);
  std::vector<std::pair<std::uint64_t, std::string>> out;
  simdjson::dom::parser parser;
  for (std::uint64_t from = 1;;) {
    auto res =
        http->Get("/v1/channels/" + channel + "/events?from_seq=" + std::to_string(from) + "&limit=1000");
    if (!res || res->status != 200) {
      ADD_FAILURE() << "history request failed: " << (res ? res->body : "no response");
      return out;
    }
    simdjson::dom::element doc = parser.parse(res->body);
    auto events = doc["events"].get_array();
    if (events.size() == 0) return out;
    for (auto ev : events)
      out.emplace_back(std::uint64_t(ev["seq"]), std::string(simdjson::minify(ev["data"])));
    from = std::uint64_t(doc["next_seq"]);
  }
}

// GET path until `accept(status, body)` or `timeout`; returns the last (status, body).
template <typename Accept>
std::pair<int, std::string> probe(const broker_process& b, const std::string& path, Accept accept,
                                  std::chrono::seconds timeout = 30s) {
  auto http = b.http(token);
  std::pair<int, std::string> last{0, ""};
  for (const auto end = std::chrono::steady_clock::now() + timeout; std::chrono::steady_clock::now() < end;) {
    auto r = http->Get(path);
    if (r) last = {r->status, r->body};
    if (r && accept(r->status, r->body)) break;
  }
  return last;
}

std::string metrics(const broker_process& b) {
  auto r = b.http(token)->Get("/metrics");
  return r ? r->body : std::string();
}

// The largest file in `dir` whose name ends with `suffix` (RocksDB's current WAL or SST).
fs::path largest(const std::string& dir, std::string_view suffix) {
  fs::path best;
  std::uintmax_t best_size = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file() || !e.path().string().ends_with(suffix)) continue;
    if (e.file_size() >= best_size) {
      best = e.path();
      best_size = e.file_size();
    }
  }
  return best;
}

void overwrite_zeros(const fs::path& file, std::uintmax_t offset, std::size_t n) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f) << "cannot open " << file;
  f.seekp(static_cast<std::streamoff>(offset));
  const std::string zeros(n, '\0');
  f.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  ASSERT_TRUE(f.good());
}

// Item 12: a WAL damaged in the middle stops the start (exit 1, the file named); --recover starts,
// reports the loss per channel and moves the channel to a new epoch; the next publish never
// re-uses an (epoch, seq) that was acknowledged before.
TEST(disk_test, damaged_wal_refuses_to_start_and_recover_moves_to_a_new_epoch) {
  temp_dir dir;
  const std::string data = dir.path() + "/data";
  std::map<std::uint64_t, std::string> acked;  // seq -> payload
  std::uint64_t old_epoch = 0;
  {
    broker_process b(data, token);
    ASSERT_TRUE(b.ok()) << b.stderr_text();
    make_durable(b, "dur.wal");
    auto c = connect_client(b);
    ASSERT_TRUE(c);
    for (int i = 0; i < 1000; ++i) {
      const std::string payload = "{\"i\":" + std::to_string(i) + "}";
      auto ack = c->publish_sync("dur.wal", payload, 10s);
      ASSERT_TRUE(ack.has_value()) << "publish " << i << ": " << ack.error().message << "\n"
                                   << b.stderr_text();
      old_epoch = ack->epoch;
      acked.emplace(ack->seq, payload);
    }
    c->close();
    ASSERT_EQ(b.terminate(), 0) << b.stderr_text();
  }
  const fs::path wal = largest(data, ".log");
  ASSERT_FALSE(wal.empty()) << "no WAL in " << data;
  overwrite_zeros(wal, fs::file_size(wal) / 2, 64);

  // Without --recover: exit 1, the WAL named, the way out named, nothing changed on disk.
  {
    const auto size_before = fs::file_size(wal);
    test::child_process refused({SWITCHBOARD_BROKER_PATH, "--data-dir", data, "--bind", "tcp://127.0.0.1:*",
                                 "--admin-port", "0", "--admin-token", token, "--log-level", "warn"});
    EXPECT_EQ(refused.wait(20s), 1) << refused.stdout_text << refused.stderr_text;
    EXPECT_NE(refused.stderr_text.find(wal.string()), std::string::npos) << refused.stderr_text;
    EXPECT_NE(refused.stderr_text.find("--recover"), std::string::npos) << refused.stderr_text;
    EXPECT_EQ(refused.stdout_text.find("listening"), std::string::npos);
    EXPECT_EQ(fs::file_size(wal), size_before);
  }

  // --recover: starts, keeps an exact prefix, reports the loss, new epoch.
  std::uint64_t kept = 0;
  {
    broker_process b(data, token, {"--recover"});
    ASSERT_TRUE(b.ok()) << b.stderr_text();
    const auto history = read_history(b, "dur.wal");
    ASSERT_LT(history.size(), acked.size()) << "the damage should have cost events";
    for (const auto& [seq, payload] : history) {
      ASSERT_EQ(seq, ++kept) << "the recovered log is not a prefix";
      ASSERT_EQ(payload, acked.at(seq));
    }
    auto c = connect_client(b);
    ASSERT_TRUE(c);
    auto ack = c->publish_sync("dur.wal", R"({"after":"recover"})", 10s);
    ASSERT_TRUE(ack.has_value()) << ack.error().message;
    EXPECT_NE(ack->epoch, old_epoch) << "seq " << ack->seq << " would be bound to two events";
    EXPECT_EQ(ack->seq, kept + 1);
    c->close();
    ASSERT_EQ(b.terminate(), 0);
    const std::string err = b.stderr_text();
    EXPECT_NE(err.find("recover: channel \"dur.wal\": events after seq " + std::to_string(kept) +
                       " are gone (the damaged log showed seqs up to " + std::to_string(acked.size())),
              std::string::npos)
        << err;
    EXPECT_NE(err.find(wal.string()), std::string::npos) << err;
  }
  // The recovered dir starts normally afterwards, with the new epoch kept.
  {
    broker_process b(data, token);
    ASSERT_TRUE(b.ok()) << b.stderr_text();
    EXPECT_EQ(read_history(b, "dur.wal").size(), kept + 1);
    ASSERT_EQ(b.terminate(), 0);
  }
}

// Item 12, SST half: a damaged SST file does not stop the start, but the start says so (naming
// the file) and /readyz answers 503 with the store health in /metrics.
TEST(disk_test, damaged_sst_is_reported_at_start_and_in_readiness) {
  temp_dir dir;
  const std::string data = dir.path() + "/data";
  {
    broker_process b(data, token);
    ASSERT_TRUE(b.ok()) << b.stderr_text();
    make_durable(b, "dur.sst");
    auto c = connect_client(b);
    ASSERT_TRUE(c);
    for (int i = 0; i < 2000; ++i) {
      ASSERT_TRUE(c->publish_sync(
          "dur.sst", "{\"i\":" + std::to_string(i) + ",\"pad\":\"" + std::string(200, 'p') + "\"}", 10s));
    }
    c->close();
    ASSERT_EQ(b.terminate(), 0);
  }
  {
    // Opening replays the WAL into level-0 SST files.
    broker_process b(data, token);
    ASSERT_TRUE(b.ok()) << b.stderr_text();
    EXPECT_EQ(probe(b, "/readyz", [](int s, const std::string&) { return s == 200; }).first, 200);
    ASSERT_EQ(b.terminate(), 0);
  }
  const fs::path sst = largest(data, ".sst");
  ASSERT_FALSE(sst.empty()) << "no SST file in " << data;
  overwrite_zeros(sst, 100, 64);  // inside the first data block; footer and index stay readable

  broker_process b(data, token);
  ASSERT_TRUE(b.ok()) << b.stderr_text();
  const auto ready = probe(b, "/readyz", [](int s, const std::string&) { return s == 503; });
  EXPECT_EQ(ready.first, 503) << ready.second;
  EXPECT_NE(ready.second.find(R"("code":"store_corrupt")"), std::string::npos) << ready.second;
  EXPECT_NE(metrics(b).find("switchboard_store_health{state=\"corrupt\"} 1"), std::string::npos)
      << metrics(b);
  ASSERT_EQ(b.terminate(), 0);
  EXPECT_NE(b.stderr_text().find(sst.string()), std::string::npos) << b.stderr_text();
}

// Item 13: after a restart, GET /v1/channels shows the durable channels' real last seq, also for a
// channel only a pattern makes durable.
TEST(disk_test, channel_list_shows_last_seq_of_durable_channels_after_restart) {
  temp_dir dir;
  const std::string data = dir.path() + "/data";
  {
    broker_process b(data, token);
    ASSERT_TRUE(b.ok()) << b.stderr_text();
    make_durable(b, "dur.own");
    make_durable(b, "pat.>");
    auto c = connect_client(b);
    ASSERT_TRUE(c);
    for (int i = 0; i < 7; ++i) ASSERT_TRUE(c->publish_sync("dur.own", "{}", 10s));
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(c->publish_sync("pat.child", "{}", 10s));
    c->close();
    ASSERT_EQ(b.terminate(), 0);
  }
  broker_process b(data, token);
  ASSERT_TRUE(b.ok()) << b.stderr_text();
  auto r = b.http(token)->Get("/v1/channels");
  ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no response");
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(r->body);
  std::map<std::string, std::uint64_t> last;
  for (auto ch : doc["channels"].get_array())
    last[std::string(std::string_view(ch["name"]))] = std::uint64_t(ch["last_seq"]);
  EXPECT_EQ(last["dur.own"], 7u) << r->body;
  EXPECT_EQ(last["pat.child"], 3u) << r->body;
  ASSERT_EQ(b.terminate(), 0);
}

// Item 11: a full data disk. Mounts a small tmpfs (root only), fills it, and checks that durable
// publishes are refused with store_full (507 over HTTP), non-durable channels keep flowing,
// readiness says why, writes resume by themselves once space returns, and every acknowledged
// event is still there after a restart.
class full_disk_test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs (CI runs as root)";
    _mount = _dir.path() + "/tmpfs";
    fs::create_directories(_mount);
    // 64 MiB: RocksDB resumes writes once one write buffer (16 MiB by default) is free.
    if (::mount("tmpfs", _mount.c_str(), "tmpfs", 0, "size=64m") != 0) {
      const std::string why = std::strerror(errno);
      _mount.clear();
      GTEST_SKIP() << "cannot mount a tmpfs (" << why << "); the container lacks CAP_SYS_ADMIN";
    }
  }
  void TearDown() override {
    _broker.reset();
    if (!_mount.empty() && ::umount2(_mount.c_str(), MNT_DETACH) != 0) {
      ADD_FAILURE() << "umount " << _mount << ": " << std::strerror(errno);
    }
  }
  // Writes a filler file until the disk is full.
  void fill_disk() {
    std::FILE* f = std::fopen(filler().c_str(), "wb");
    ASSERT_NE(f, nullptr);
    const std::string block(1 << 16, 'f');
    while (std::fwrite(block.data(), 1, block.size(), f) == block.size()) {
    }
    std::fclose(f);
  }
  [[nodiscard]] std::string filler() const { return _mount + "/filler"; }

  temp_dir _dir;
  std::string _mount;
  std::optional<broker_process> _broker;
};

TEST_F(full_disk_test, durable_publishes_get_store_full_and_resume_when_space_returns) {
  const std::string data = _mount + "/data";
  _broker.emplace(data, token);
  auto& b = *_broker;
  ASSERT_TRUE(b.ok()) << b.stderr_text();
  // With a dedupe window: a refused publish must not leave its idempotency key behind (issue 12).
  auto put = b.http(token)->Put("/v1/channels/dur.full", R"({"durable":true,"dedupe_window":"10m"})",
                                "application/json");
  ASSERT_TRUE(put && put->status == 200) << (put ? put->body : "no response");
  auto pub = connect_client(b);
  ASSERT_TRUE(pub);
  auto sub_client = connect_client(b);
  ASSERT_TRUE(sub_client);
  auto live = sub_client->subscribe("live.ticks");
  ASSERT_TRUE(live.has_value()) << live.error().message;

  fill_disk();
  // Durable publishes until the store refuses: WAL space RocksDB preallocated runs out first.
  std::map<std::uint64_t, std::string> acked;
  std::optional<error> refusal;
  std::string refused_key;
  const std::string pad(4000, 'x');
  for (int i = 0; i < 50000 && !refusal; ++i) {
    const std::string payload = "{\"i\":" + std::to_string(i) + ",\"pad\":\"" + pad + "\"}";
    const std::string key = "key-" + std::to_string(i);
    auto ack = pub->publish_sync("dur.full", payload, 20s, key);
    if (ack) {
      acked.emplace(ack->seq, payload);
    } else {
      refusal = ack.error();
      refused_key = key;
    }
  }
  ASSERT_TRUE(refusal.has_value()) << "the disk never filled";
  EXPECT_EQ(refusal->broker_code, "store_full") << refusal->message;
  RecordProperty("acknowledged_before_full", static_cast<int>(acked.size()));

  // The broker is alive: non-durable channels flow, readiness and metrics say why, HTTP gets 507.
  auto tick = pub->publish_sync("live.ticks", R"({"tick":1})", 10s);
  ASSERT_TRUE(tick.has_value()) << tick.error().message;
  auto got = (*live)->next(10s);
  ASSERT_TRUE(got.has_value() && got->has_value()) << "a non-durable channel stopped flowing";
  EXPECT_EQ((*got)->payload, R"({"tick":1})");
  const auto ready = probe(b, "/readyz", [](int s, const std::string&) { return s == 503; });
  EXPECT_EQ(ready.first, 503) << ready.second;
  EXPECT_NE(ready.second.find(R"("code":"store_full")"), std::string::npos) << ready.second;
  EXPECT_NE(metrics(b).find("switchboard_store_health{state=\"full\"} 1"), std::string::npos) << metrics(b);
  auto http_pub =
      b.http(token)->Post("/v1/channels/dur.full/events", R"({"via":"http"})", "application/json");
  ASSERT_TRUE(http_pub);
  EXPECT_EQ(http_pub->status, 507) << http_pub->body;
  EXPECT_NE(http_pub->body.find("\"store_full\""), std::string::npos) << http_pub->body;

  // Space returns: writes resume by themselves, no restart.
  fs::remove(filler());
  // Probed on /metrics: a refused /readyz logs a warning each time, and nothing drains the
  // broker's stderr pipe meanwhile.
  const auto healthy = probe(
      b, "/metrics",
      [](int, const std::string& body) {
        return body.find("switchboard_store_health{state=\"ok\"} 1") != std::string::npos;
      },
      60s);
  const auto back = probe(
      b, "/readyz", [](int s, const std::string&) { return s == 200; }, 5s);
  if (back.first != 200) {
    (void)b.terminate();
    FAIL() << "writes did not resume: " << back.second << "\n" << healthy.second << "\n" << b.stderr_text();
  }
  // The retry of the refused publish, same idempotency key: stored as a new event, not answered
  // with the seq that holds nothing.
  std::optional<publish_ack> resumed;
  const std::string retry_payload = R"({"after":"space returned"})";
  for (const auto end = std::chrono::steady_clock::now() + 30s;
       !resumed && std::chrono::steady_clock::now() < end;) {
    if (auto ack = pub->publish_sync("dur.full", retry_payload, 10s, refused_key)) {
      resumed = *ack;
      acked.emplace(ack->seq, retry_payload);
    }
  }
  ASSERT_TRUE(resumed.has_value()) << "durable publishes did not resume";
  ASSERT_FALSE(acked.empty());
  EXPECT_GT(resumed->seq, std::prev(acked.find(resumed->seq))->first + 1)
      << "the refused publish's seq is a hole; the retry is numbered after it";
  // A durable reader of the whole log crosses the hole without a `gap` notice: nothing was lost.
  std::vector<std::string> notices;
  std::mutex notices_mutex;
  client_options reader_options;
  reader_options.url = b.endpoint;
  reader_options.token = token;
  reader_options.reconnect = false;
  reader_options.on_error = [&](const error& e) {
    std::lock_guard lock(notices_mutex);
    notices.push_back(e.broker_code + ": " + e.message);
  };
  auto reader = client::connect(reader_options);
  ASSERT_TRUE(reader.has_value()) << reader.error().message;
  subscribe_options so;
  so.extra_json = R"("durable":"full-reader","start":"all")";
  auto all = (*reader)->subscribe("dur.full", nullptr, so);
  ASSERT_TRUE(all.has_value()) << all.error().message;
  std::uint64_t read = 0;
  for (std::uint64_t last = 0; last < resumed->seq;) {
    auto m = (*all)->next(20s);
    ASSERT_TRUE(m.has_value() && m->has_value()) << "durable reader stalled after seq " << last;
    last = (*m)->seq;
    ++read;
  }
  EXPECT_EQ(read, acked.size());
  {
    std::lock_guard lock(notices_mutex);
    EXPECT_TRUE(notices.empty()) << notices.front();
  }
  (*reader)->close();
  pub->close();
  sub_client->close();
  ASSERT_EQ(b.terminate(), 0) << b.stderr_text();

  // Every acknowledged event survived, exactly.
  _broker.emplace(data, token);
  ASSERT_TRUE(_broker->ok()) << _broker->stderr_text();
  std::map<std::uint64_t, std::string> stored;
  for (auto& [seq, payload] : read_history(*_broker, "dur.full")) stored.emplace(seq, std::move(payload));
  for (const auto& [seq, payload] : acked) {
    auto it = stored.find(seq);
    ASSERT_NE(it, stored.end()) << "acknowledged seq " << seq << " is missing";
    ASSERT_EQ(it->second, payload) << "seq " << seq;
  }
  ASSERT_EQ(_broker->terminate(), 0);
}

}  // namespace
}  // namespace switchboard
