// 10 000 open streamed responses on one in-process admin server (test-only stream route): the
// process's thread count must not grow with them, and the memory each costs is measured and printed
// (docs/PERFORMANCE.md, "Admin API: open streams"). The clients live in a forked child process so
// that the server's RSS and descriptors are its own. SWITCHBOARD_STREAMS overrides the count.
//
//   build-admin/tests/admin/stream_scale_test      (Release build for the quoted numbers)
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "admin/memory_control.h"
#include "admin/tcp_peer.h"
#include "broker/admin/admin_server.h"

namespace switchboard {
namespace {

using namespace std::chrono_literals;

// A field of /proc/self/status ("Threads", "VmRSS" in kB).
long proc_status(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

bool write_line(int fd, const std::string& s) {
  const std::string l = s + "\n";
  return ::write(fd, l.data(), l.size()) == static_cast<ssize_t>(l.size());
}

// The next line from `fd` within `timeout`, "" on timeout or EOF.
std::string read_line(int fd, std::chrono::milliseconds timeout) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char c = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (::poll(&p, 1, static_cast<int>(std::max<long>(left.count(), 0))) <= 0) continue;
    if (::read(fd, &c, 1) != 1) return {};
    if (c == '\n') return out;
    out += c;
  }
  return {};
}

// The child: opens `n` streams, reports when each has received `first` then `second`, and when all
// were closed by the server. Talks over the two pipes; exits with 0 on success.
[[noreturn]] void run_clients(int from_parent, int to_parent, std::size_t n) {
  const std::string port_text = read_line(from_parent, 60s);
  if (port_text.empty()) ::_exit(2);
  const auto port = static_cast<std::uint16_t>(std::stoi(port_text));
  std::vector<test::tcp_peer> peers;
  peers.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    peers.emplace_back(port);
    if (!peers.back().connected() || !peers.back().send("GET /test/stream HTTP/1.1\r\nHost: t\r\n\r\n")) {
      write_line(to_parent, "connect failed at " + std::to_string(i));
      ::_exit(3);
    }
  }
  // Waits until every peer satisfies `done` (polling all pending sockets at once).
  const auto wait_all = [&](auto done, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    std::vector<std::size_t> pending(n);
    for (std::size_t i = 0; i < n; ++i) pending[i] = i;
    while (!pending.empty() && std::chrono::steady_clock::now() < deadline) {
      std::vector<pollfd> fds;
      for (const std::size_t i : pending) fds.push_back({peers[i].fd(), POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 1000) <= 0) continue;
      std::vector<std::size_t> still;
      for (std::size_t k = 0; k < pending.size(); ++k) {
        auto& p = peers[pending[k]];
        if (fds[k].revents != 0) p.read_available();
        if (!done(p)) still.push_back(pending[k]);
      }
      pending.swap(still);
    }
    return pending.size();
  };
  const auto has = [](std::string needle) {
    return [needle](const test::tcp_peer& p) { return p.received().find(needle) != std::string::npos; };
  };
  std::size_t missing = wait_all(has("hello\n"), 120s);
  write_line(to_parent, missing == 0 ? "opened" : "missing " + std::to_string(missing));
  if (read_line(from_parent, 120s) != "pushed") ::_exit(4);
  missing = wait_all(has("data: ping\n\n"), 120s);
  write_line(to_parent, missing == 0 ? "delivered" : "missing " + std::to_string(missing));
  if (read_line(from_parent, 120s) != "closed") ::_exit(5);
  missing = wait_all([](const test::tcp_peer& p) { return p.eof(); }, 120s);
  write_line(to_parent, missing == 0 ? "ended" : "missing " + std::to_string(missing));
  ::_exit(0);
}

TEST(stream_scale_test, ten_thousand_open_streams_hold_no_threads) {
  std::size_t n = 10'000;
  if (const char* env = std::getenv("SWITCHBOARD_STREAMS")) n = std::stoul(env);
  // Descriptors: the server holds n sockets here; the clients' n are in the child.
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  const rlim_t want = n + 1024;
  if (lim.rlim_cur < want) {
    rlimit raised{want, std::max(want, lim.rlim_max)};
    if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
      GTEST_SKIP() << "RLIMIT_NOFILE is " << lim.rlim_cur << " (hard " << lim.rlim_max << ") and cannot be raised to "
                   << want << " for " << n << " streams";
    }
  }

  int down[2], up[2];
  ASSERT_EQ(::pipe(down), 0);
  ASSERT_EQ(::pipe(up), 0);
  const pid_t child = ::fork();  // before any thread of ours exists
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(down[1]);
    ::close(up[0]);
    run_clients(down[0], up[1], n);
  }
  ::close(down[0]);
  ::close(up[1]);
  struct reaper {
    pid_t pid;
    ~reaper() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{child};

  test::memory_control ctl;
  auth::token_table tokens;
  std::mutex m;
  std::vector<std::shared_ptr<admin::response_stream>> streams;  // guarded by m
  admin::stream_route route{"/test/stream", [&](const admin::stream_request&) -> std::expected<admin::http_response, admin::api_error> {
                              auto s = std::make_shared<admin::response_stream>(4096);
                              (void)s->push("hello\n");
                              admin::http_response r;
                              r.content_type = "text/event-stream";
                              r.stream = s;
                              const std::lock_guard l(m);
                              streams.push_back(std::move(s));
                              return r;
                            }};
  admin::admin_options o;
  o.port = 0;
  o.max_connections = n + 100;
  auto srv = admin::admin_server::start(o, tokens, ctl, {route});
  ASSERT_TRUE(srv) << srv.error();

  const long threads_before = proc_status("Threads");
  const long rss_before = proc_status("VmRSS");
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(write_line(down[1], std::to_string((*srv)->port())));
  ASSERT_EQ(read_line(up[0], 180s), "opened");
  const auto opened = std::chrono::steady_clock::now() - t0;
  const long threads_open = proc_status("Threads");
  const long rss_open = proc_status("VmRSS");
  {
    const std::lock_guard l(m);
    ASSERT_EQ(streams.size(), n);
  }

  const auto t1 = std::chrono::steady_clock::now();
  {
    const std::lock_guard l(m);
    for (auto& s : streams) EXPECT_EQ(s->push("data: ping\n\n"), admin::response_stream::push_result::queued);
  }
  ASSERT_TRUE(write_line(down[1], "pushed"));
  ASSERT_EQ(read_line(up[0], 180s), "delivered");
  const auto delivered = std::chrono::steady_clock::now() - t1;
  const std::string metrics = (*srv)->metrics_text();

  {
    const std::lock_guard l(m);
    for (auto& s : streams) s->close();
  }
  ASSERT_TRUE(write_line(down[1], "closed"));
  ASSERT_EQ(read_line(up[0], 180s), "ended");

  const double per_conn_kib = static_cast<double>(rss_open - rss_before) / static_cast<double>(n);
  std::printf("streams=%zu threads_before=%ld threads_open=%ld rss_before_kib=%ld rss_open_kib=%ld "
              "rss_per_stream_kib=%.2f open_all_ms=%lld push_to_all_delivered_ms=%lld\n",
              n, threads_before, threads_open, rss_before, rss_open, per_conn_kib,
              static_cast<long long>(opened / 1ms), static_cast<long long>(delivered / 1ms));
  EXPECT_EQ(threads_open, threads_before);
  EXPECT_NE(metrics.find("switchboard_admin_streams " + std::to_string(n) + "\n"), std::string::npos) << metrics;
  EXPECT_LT(per_conn_kib, 64.0);  // sanity bound; the measured value is printed above
}

}  // namespace
}  // namespace switchboard
