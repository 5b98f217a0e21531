// The real `switchboard` binary as a child process, for tests that restart or SIGKILL the broker.
// Start-up is detected by the ready line on stdout (never by sleeping); the endpoints are parsed
// from it. Thread-safety: one test thread per broker_process.
#pragma once

#include <httplib.h>
#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "support/child_process.h"

namespace switchboard::test {

// A temporary directory removed (recursively) on destruction.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "switchboard-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) _path = tmpl;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    if (!_path.empty()) std::filesystem::remove_all(_path, ec);
  }
  [[nodiscard]] const std::string& path() const { return _path; }

 private:
  std::string _path;
};

class broker_process {
 public:
  // Starts SWITCHBOARD_BROKER_PATH with the data dir, ephemeral ports and `extra` flags, and waits
  // (up to 20 s) for the ready line. ok() says whether it came.
  broker_process(const std::string& data_dir, const std::string& token, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{SWITCHBOARD_BROKER_PATH, "--data-dir", data_dir, "--bind", "tcp://127.0.0.1:*",
                                  "--admin-port", "0", "--admin-token", token, "--log-level", "warn"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    _child = std::make_unique<child_process>(argv);
    auto line = _child->read_line(std::chrono::seconds(20));
    if (!line) return;
    static const std::regex ready(R"(switchboard listening on (tcp://\S+) \(admin (http://\S+)\))");
    std::smatch m;
    if (std::regex_match(*line, m, ready)) {
      endpoint = m[1];
      admin_url = m[2];
    }
  }

  [[nodiscard]] bool ok() const { return !endpoint.empty(); }
  // The broker's resident set size (VmRSS from /proc), 0 when it cannot be read.
  [[nodiscard]] std::size_t rss_bytes() const {
    std::ifstream status("/proc/" + std::to_string(_child->pid()) + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
    }
    return 0;
  }
  [[nodiscard]] std::string stderr_text() const { return _child->stderr_text; }

  // SIGTERM and wait for the exit code (-1 if it did not exit within 20 s).
  int terminate() {
    _child->signal(SIGTERM);
    return _child->wait(std::chrono::seconds(20));
  }
  // SIGKILL: no chance to flush anything that was not already durable.
  void kill9() {
    _child->signal(SIGKILL);
    (void)_child->wait(std::chrono::seconds(20));
  }

  // An HTTP client for the admin API with the bearer token set.
  [[nodiscard]] std::unique_ptr<httplib::Client> http(const std::string& token) const {
    auto c = std::make_unique<httplib::Client>(admin_url);
    c->set_bearer_token_auth(token);
    c->set_read_timeout(20, 0);
    return c;
  }

  std::string endpoint;
  std::string admin_url;

 private:
  std::unique_ptr<child_process> _child;
};

}  // namespace switchboard::test
