// A raw TCP client for the admin server tests: sends exactly the bytes a slow, silent or hostile
// HTTP client would, and reads with a deadline (poll), never by sleeping. Move-only; closes its
// socket (linger 0) on destruction. Thread-safety: one thread per tcp_peer.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace switchboard::test {

class tcp_peer {
 public:
  // Connects (blocking) to 127.0.0.1:port; connected() says whether it worked.
  explicit tcp_peer(std::uint16_t port) {
    _fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (_fd < 0) return;
    const linger l{1, 0};
    ::setsockopt(_fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    const int one = 1;
    ::setsockopt(_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(_fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      ::close(_fd);
      _fd = -1;
    }
  }
  tcp_peer(tcp_peer&& o) noexcept : _fd(std::exchange(o._fd, -1)), _in(std::move(o._in)) {}
  tcp_peer& operator=(tcp_peer&&) = delete;
  tcp_peer(const tcp_peer&) = delete;
  ~tcp_peer() {
    if (_fd >= 0) ::close(_fd);
  }

  [[nodiscard]] bool connected() const { return _fd >= 0; }
  [[nodiscard]] int fd() const { return _fd; }

  // Writes all of `bytes`; false when the connection is gone.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads until `pred(received so far)` holds, the peer closes, or `timeout` passes. Returns
  // everything received (also kept in received()).
  template <class Pred>
    requires std::predicate<Pred, const std::string&>
  const std::string& read_until(Pred pred, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred(_in) && !_eof) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{_fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[16384];
      const ssize_t n = ::recv(_fd, buf, sizeof buf, 0);
      if (n <= 0) {
        _eof = true;
      } else {
        _in.append(buf, static_cast<std::size_t>(n));
      }
    }
    return _in;
  }
  const std::string& read_until(std::string_view needle, std::chrono::milliseconds timeout) {
    return read_until([needle](const std::string& s) { return s.find(needle) != std::string::npos; }, timeout);
  }
  // One whole response with a Content-Length body (or none); "" when none arrived in time.
  std::string read_response(std::chrono::milliseconds timeout) {
    read_until(
        [](const std::string& s) {
          const auto end = s.find("\r\n\r\n");
          if (end == std::string::npos) return false;
          return s.size() >= end + 4 + content_length(s.substr(0, end));
        },
        timeout);
    const auto end = _in.find("\r\n\r\n");
    if (end == std::string::npos) return {};
    const std::size_t total = end + 4 + content_length(_in.substr(0, end));
    if (_in.size() < total) return {};
    std::string r = _in.substr(0, total);
    _in.erase(0, total);
    return r;
  }
  // Reads whatever is already available without waiting (notes EOF).
  void read_available() {
    char buf[16384];
    while (!_eof) {
      const ssize_t n = ::recv(_fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        _in.append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        _eof = true;
      } else {
        break;
      }
    }
  }
  // True once the server closed the connection (EOF or reset) within `timeout`; data is discarded.
  bool closed_within(std::chrono::milliseconds timeout) {
    read_until([](const std::string&) { return false; }, timeout);
    return _eof;
  }
  [[nodiscard]] const std::string& received() const { return _in; }
  [[nodiscard]] bool eof() const { return _eof; }

 private:
  static std::size_t content_length(std::string_view head) {
    for (std::size_t pos = 0; (pos = head.find("\r\n", pos)) != std::string_view::npos;) {
      pos += 2;
      std::string name(head.substr(pos, 15));
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (name == "content-length:") return std::stoul(std::string(head.substr(pos + 15, head.find("\r\n", pos) - pos - 15)));
    }
    return 0;
  }

  int _fd = -1;
  std::string _in;
  bool _eof = false;
};

}  // namespace switchboard::test
