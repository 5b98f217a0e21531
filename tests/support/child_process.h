// A child process with captured stdout/stderr, for tests that run the real broker, CLI and bench
// binaries.
//
// Thread-safety: one thread uses a child_process at a time.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace switchboard::test {

class child_process {
 public:
  // Starts `argv[0]` with the given arguments; stdin gets `input` (then EOF).
  [[nodiscard]] pid_t pid() const noexcept { return _pid; }

  explicit child_process(const std::vector<std::string>& argv, const std::string& input = {}) {
    int out[2], err[2], in[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 || ::pipe2(in, O_CLOEXEC) != 0) return;
    _pid = ::fork();
    if (_pid == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    ::close(in[0]);
    if (!input.empty()) [[maybe_unused]] auto n = ::write(in[1], input.data(), input.size());
    ::close(in[1]);
    _out = out[0];
    _err = err[0];
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process() {
    if (_pid > 0 && !_reaped) {
      ::kill(_pid, SIGKILL);
      ::waitpid(_pid, nullptr, 0);
    }
    if (_out >= 0) ::close(_out);
    if (_err >= 0) ::close(_err);
  }

  // Reads both pipes until EOF and reaps the child. Returns the exit code, or -1 when the child
  // did not finish within `timeout` (it is then killed) or died from a signal.
  int wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (_out >= 0 || _err >= 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd fds[2] = {{_out, POLLIN, 0}, {_err, POLLIN, 0}};
      if (::poll(fds, 2, static_cast<int>(left.count())) < 0) continue;
      drain(fds[0], _out, stdout_text);
      drain(fds[1], _err, stderr_text);
    }
    if (_out >= 0 || _err >= 0) {
      ::kill(_pid, SIGKILL);
    }
    int status = 0;
    ::waitpid(_pid, &status, 0);
    _reaped = true;
    if (_out >= 0 || _err >= 0) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // The next complete stdout line (without the newline), or nullopt when none arrives within
  // `timeout` or stdout closed. Keeps draining stderr meanwhile so the child never blocks on it.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto nl = stdout_text.find('\n', _line_pos); nl != std::string::npos) {
        std::string line = stdout_text.substr(_line_pos, nl - _line_pos);
        _line_pos = nl + 1;
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || _out < 0) return std::nullopt;
      pollfd fds[2] = {{_out, POLLIN, 0}, {_err, POLLIN, 0}};
      if (::poll(fds, 2, static_cast<int>(left.count())) < 0) continue;
      drain(fds[0], _out, stdout_text);
      drain(fds[1], _err, stderr_text);
    }
  }

  void signal(int sig) {
    if (_pid > 0 && !_reaped) ::kill(_pid, sig);
  }

  std::string stdout_text;
  std::string stderr_text;

 private:
  std::size_t _line_pos = 0;
  static void drain(const pollfd& p, int& fd, std::string& into) {
    if (fd < 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR))) return;
    char buf[65536];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      into.append(buf, static_cast<std::size_t>(n));
    } else {
      ::close(fd);
      fd = -1;
    }
  }

  pid_t _pid = -1;
  bool _reaped = false;
  int _out = -1;
  int _err = -1;
};

}  // namespace switchboard::test
