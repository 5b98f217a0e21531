// A webhook receiver for tests (cpp-httplib on 127.0.0.1): records every POST (path, headers, body,
// arrival time), answers each path from a script ("500 ×5 then 200", "429 with Retry-After: 1",
// "hang until released"), and tracks how many requests per path are open at once.
//
// Ready on construction (bound and accepting). Tests wait with wait_until(), which waits on a
// condition variable notified per request, never with a fixed sleep. Hanging answers are released
// by release() or the destructor, so shutdown never waits for them.
#pragma once

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace switchboard::test {

struct scripted_answer {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  bool hang = false;                   // never answer (until release() or destruction)
  std::chrono::milliseconds delay{0};  // answer after this long (released early by release())
};

inline scripted_answer answer(int status) {
  scripted_answer a;
  a.status = status;
  return a;
}
inline scripted_answer answer(int status, std::string header, std::string value) {
  scripted_answer a = answer(status);
  a.headers.emplace_back(std::move(header), std::move(value));
  return a;
}
inline scripted_answer hang() {
  scripted_answer a;
  a.hang = true;
  return a;
}
inline scripted_answer delayed(int status, std::chrono::milliseconds delay) {
  scripted_answer a = answer(status);
  a.delay = delay;
  return a;
}

struct received {
  std::string path;
  httplib::Headers headers;
  std::string body;
  std::chrono::steady_clock::time_point at;
  int answered = 0;  // status sent (0 while hanging)

  [[nodiscard]] std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class webhook_receiver {
 public:
  // port 0: any free port; else exactly that one (to bring a "down" receiver back). The destructor
  // waits up to `keep_alive_s` for clients that still hold an idle connection: close them first
  // (stop the http_client) or keep it short.
  explicit webhook_receiver(int port = 0, int keep_alive_s = 1, int threads = 32) {
    _server.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
    _server.set_tcp_nodelay(true);  // else Nagle + delayed ACK add ~40 ms to every keep-alive answer
    _server.set_keep_alive_max_count(1'000'000);
    _server.set_keep_alive_timeout(keep_alive_s);
    _server.Post(".*", [this](const httplib::Request& req, httplib::Response& res) { serve(req, res); });
    if (port == 0) {
      _port = _server.bind_to_any_port("127.0.0.1");
    } else {
      _port = _server.bind_to_port("127.0.0.1", port) ? port : -1;
    }
    if (_port <= 0) throw std::runtime_error("webhook_receiver: cannot bind 127.0.0.1");
    _thread = std::thread([this] { _server.listen_after_bind(); });
    while (!_server.is_running()) std::this_thread::yield();
  }

  ~webhook_receiver() {
    release();
    _server.stop();
    _thread.join();
  }

  webhook_receiver(const webhook_receiver&) = delete;
  webhook_receiver& operator=(const webhook_receiver&) = delete;

  [[nodiscard]] int port() const noexcept { return _port; }
  [[nodiscard]] std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(_port) + path;
  }

  // Answers for `path`, used in order; once used up, `then` answers every later request.
  void script(const std::string& path, std::vector<scripted_answer> answers, scripted_answer then = {}) {
    std::lock_guard lock(_mutex);
    _scripts[path] = {std::deque<scripted_answer>(answers.begin(), answers.end()), std::move(then)};
  }

  // Lets every hanging request answer (500) and no later one hang.
  void release() {
    {
      std::lock_guard lock(_mutex);
      _released = true;
    }
    _changed.notify_all();
  }

  // Waits until `done(requests)` holds or `timeout` passes; returns whether it holds.
  bool wait_until(const std::function<bool(const std::vector<received>&)>& done,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::unique_lock lock(_mutex);
    return _changed.wait_for(lock, timeout, [&] { return done(_requests); });
  }
  bool wait_for_count(const std::string& path, std::size_t n,
                      std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    return wait_until([&](const std::vector<received>& all) { return count(all, path) >= n; }, timeout);
  }

  [[nodiscard]] std::vector<received> requests(const std::string& path) const {
    std::lock_guard lock(_mutex);
    std::vector<received> out;
    for (const auto& r : _requests) {
      if (r.path == path) out.push_back(r);
    }
    return out;
  }
  [[nodiscard]] std::size_t count(const std::string& path) const {
    std::lock_guard lock(_mutex);
    return count(_requests, path);
  }
  [[nodiscard]] std::size_t peak_concurrent(const std::string& path) const {
    std::lock_guard lock(_mutex);
    const auto it = _peak.find(path);
    return it == _peak.end() ? 0 : it->second;
  }

  static std::size_t count(const std::vector<received>& all, const std::string& path) {
    return static_cast<std::size_t>(
        std::count_if(all.begin(), all.end(), [&](const received& r) { return r.path == path; }));
  }

 private:
  struct script_state {
    std::deque<scripted_answer> answers;
    scripted_answer then;
  };

  void serve(const httplib::Request& req, httplib::Response& res) {
    std::unique_lock lock(_mutex);
    scripted_answer answer;
    if (const auto it = _scripts.find(req.path); it != _scripts.end()) {
      if (!it->second.answers.empty()) {
        answer = std::move(it->second.answers.front());
        it->second.answers.pop_front();
      } else {
        answer = it->second.then;
      }
    }
    const std::size_t index = _requests.size();
    _requests.push_back(received{req.path, req.headers, req.body, std::chrono::steady_clock::now(), 0});
    _peak[req.path] = std::max(_peak[req.path], ++_open[req.path]);
    _changed.notify_all();
    if (answer.hang) {
      _changed.wait(lock, [this] { return _released; });
      answer.status = 500;
    } else if (answer.delay.count() > 0) {
      _changed.wait_for(lock, answer.delay, [this] { return _released; });
    }
    _requests[index].answered = answer.status;
    --_open[req.path];
    lock.unlock();
    _changed.notify_all();
    res.status = answer.status;
    for (const auto& [name, value] : answer.headers) res.set_header(name, value);
    res.set_content("ok", "text/plain");
  }

  httplib::Server _server;
  int _port = 0;
  std::thread _thread;

  mutable std::mutex _mutex;  // protects everything below
  std::condition_variable _changed;
  bool _released = false;
  std::map<std::string, script_state> _scripts;
  std::vector<received> _requests;
  std::map<std::string, std::size_t> _open;
  std::map<std::string, std::size_t> _peak;
};

}  // namespace switchboard::test
