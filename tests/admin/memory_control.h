// A small in-memory implementation of admin::control for in-process admin server tests: channel
// configs are stored as the JSON sent, publishes get increasing seqs, subscriptions and dead letters
// are empty lists. publish() can be held at a gate to occupy every request worker, and records which
// worker called it (admin_server::current_worker()).
//
// Thread-safety: every member may be called from any thread (one mutex).
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "broker/admin/admin_server.h"
#include "broker/admin/control.h"

namespace switchboard::test {

class memory_control : public admin::control {
 public:
  using api_error = admin::api_error;
  template <class T>
  using result = std::expected<T, api_error>;

  // While closed, publish() waits (up to 20 s) until open_gate().
  void close_gate() {
    const std::lock_guard l(_m);
    _gate_open = false;
  }
  void open_gate() {
    {
      const std::lock_guard l(_m);
      _gate_open = true;
    }
    _cv.notify_all();
  }
  // Waits (up to `timeout`) until `n` publishes are waiting at the gate.
  bool wait_for_waiting(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock l(_m);
    return _cv.wait_for(l, timeout, [&] { return _waiting >= n; });
  }
  std::set<unsigned> workers_seen() {
    const std::lock_guard l(_m);
    return _workers;
  }
  bool saw_non_worker() {
    const std::lock_guard l(_m);
    return _non_worker;
  }

  result<std::string> put_channel(std::string_view name, std::string_view body) override {
    note();
    const std::lock_guard l(_m);
    _channels[std::string(name)] = std::string(body);
    return doc(name, body);
  }
  result<std::string> patch_channel(std::string_view name, std::string_view body) override {
    return put_channel(name, body);
  }
  result<std::string> get_channel(std::string_view name) override {
    note();
    const std::lock_guard l(_m);
    const auto it = _channels.find(std::string(name));
    if (it == _channels.end()) return std::unexpected(api_error{404, "not_found", "no config"});
    return doc(name, it->second);
  }
  result<void> delete_channel(std::string_view name) override {
    note();
    const std::lock_guard l(_m);
    if (_channels.erase(std::string(name)) == 0) return std::unexpected(api_error{404, "not_found", "no config"});
    return {};
  }
  result<std::vector<admin::channel_stats>> list_channels() override {
    note();
    return std::vector<admin::channel_stats>{};
  }
  result<admin::publish_result> publish(std::string_view, std::string_view, std::string_view,
                                        std::chrono::milliseconds) override {
    note();
    std::unique_lock l(_m);
    ++_waiting;
    _cv.notify_all();
    _cv.wait_for(l, std::chrono::seconds(20), [&] { return _gate_open; });
    --_waiting;
    return admin::publish_result{.epoch = 1, .seq = ++_seq, .duplicate = false};
  }
  result<admin::history_page> history(std::string_view, std::uint64_t, std::size_t) override {
    note();
    return std::unexpected(api_error{404, "not_found", "not durable"});
  }
  result<std::uint64_t> wipe_history(std::string_view) override {
    note();
    return std::unexpected(api_error{404, "not_found", "not durable"});
  }
  result<std::string> create_subscription(std::string_view body) override {
    note();
    return std::string(body);
  }
  result<std::string> get_subscription(std::string_view) override {
    note();
    return std::unexpected(api_error{404, "not_found", "no such subscription"});
  }
  result<std::string> list_subscriptions() override {
    note();
    return std::string(R"({"subscriptions":[]})");
  }
  result<void> delete_subscription(std::string_view) override {
    note();
    return std::unexpected(api_error{404, "not_found", "no such subscription"});
  }
  result<std::string> list_dead_letters() override {
    note();
    return std::string(R"({"dead_letters":[]})");
  }
  result<admin::publish_result> redrive_dead_letter(std::string_view) override {
    note();
    return std::unexpected(api_error{404, "not_found", "no such dead letter"});
  }
  // Everyone may use every channel here: permissions are enforced by the broker (admin_server_test).
  admin::channel_permissions permissions(std::string_view) override { return {}; }

  std::string metrics() override {
    note();
    return "# TYPE switchboard_published_total counter\nswitchboard_published_total 0\n";
  }
  std::expected<void, admin::api_error> ready() override {
    note();
    return {};
  }

 private:
  static std::string doc(std::string_view name, std::string_view body) {
    return "{\"name\":\"" + std::string(name) + "\",\"config\":" + std::string(body) + "}";
  }
  void note() {
    const auto w = admin::admin_server::current_worker();
    const std::lock_guard l(_m);
    if (w) {
      _workers.insert(*w);
    } else {
      _non_worker = true;
    }
  }

  std::mutex _m;
  std::condition_variable _cv;
  bool _gate_open = true;         // guarded by _m
  std::size_t _waiting = 0;       // guarded by _m
  std::uint64_t _seq = 0;         // guarded by _m
  std::map<std::string, std::string> _channels;  // guarded by _m
  std::set<unsigned> _workers;    // guarded by _m
  bool _non_worker = false;       // guarded by _m
};

}  // namespace switchboard::test
