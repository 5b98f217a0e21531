// libcurl multi engine: one thread, one multi handle, one easy handle per transfer.
#include "broker/http_client/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace switchboard::http_client {

std::string_view errc_name(errc code) noexcept {
  switch (code) {
    case errc::invalid_request: return "invalid_request";
    case errc::connect_failed: return "connect_failed";
    case errc::timeout: return "timeout";
    case errc::too_large: return "too_large";
    case errc::too_many_redirects: return "too_many_redirects";
    case errc::tls: return "tls";
    case errc::cancelled: return "cancelled";
    case errc::overloaded: return "overloaded";
    case errc::other: return "other";
  }
  return "other";
}

namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  return std::ranges::equal(a, b, [](char x, char y) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    return lower(x) == lower(y);
  });
}

bool starts_with_icase(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

std::once_flag global_init_once;
CURLcode global_init_result = CURLE_OK;

// One transfer: the request, its completion and what has been received so far. Owned by the client's
// queue until started, then by the engine's active map; the easy handle points back to it.
struct transfer {
  transfer_id id = 0;
  request req;
  completion done;
  CURL* easy = nullptr;
  curl_slist* header_slist = nullptr;
  response resp;
  bool too_large = false;
  std::array<char, CURL_ERROR_SIZE> error_buffer{};

  transfer() = default;
  transfer(const transfer&) = delete;
  transfer& operator=(const transfer&) = delete;
  ~transfer() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    curl_slist_free_all(header_slist);
  }

  void complete(std::expected<response, error> result) {
    if (done) {
      auto callback = std::move(done);
      callback(std::move(result));
    }
  }
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto& t = *static_cast<transfer*>(user);
  const std::size_t n = size * count;
  const std::size_t limit = t.req.max_response_bytes;
  if (limit != 0 && t.resp.body.size() + n > limit) {
    t.too_large = true;
    return 0;  // != n: libcurl aborts the transfer with CURLE_WRITE_ERROR
  }
  t.resp.body.append(data, n);
  return n;
}

// Called once per header line of every response, including those of redirects and 1xx: a status line
// starts a new header block, so only the final response's fields remain.
std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto& t = *static_cast<transfer*>(user);
  const std::size_t n = size * count;
  const std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {
    t.resp.headers.clear();
    return n;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0 || line.front() == ' ' || line.front() == '\t') return n;
  t.resp.headers.add(std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  return n;
}

error transfer_error(const transfer& t, CURLcode code) {
  std::string detail = t.error_buffer[0] != '\0' ? std::string(t.error_buffer.data()) : curl_easy_strerror(code);
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return {errc::connect_failed, std::move(detail)};
    case CURLE_OPERATION_TIMEDOUT:
      return {errc::timeout, std::move(detail)};
    case CURLE_FILESIZE_EXCEEDED:
      return {errc::too_large, "response body larger than " + std::to_string(t.req.max_response_bytes) + " bytes"};
    case CURLE_WRITE_ERROR:
      if (t.too_large) {
        return {errc::too_large, "response body larger than " + std::to_string(t.req.max_response_bytes) + " bytes"};
      }
      return {errc::other, std::move(detail)};
    case CURLE_TOO_MANY_REDIRECTS:
      return {errc::too_many_redirects, std::move(detail)};
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
      return {errc::tls, std::move(detail)};
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return {errc::invalid_request, std::move(detail)};
    default:
      return {errc::other, std::move(detail)};
  }
}

bool known_method(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "POST" || m == "PUT" || m == "DELETE" || m == "PATCH";
}

class engine final : public client {
 public:
  engine(const options& opts, CURLM* multi) : _options(opts), _multi(multi) {}

  ~engine() override {
    stop();
    curl_multi_cleanup(_multi);
  }

  void start() override {
    std::lock_guard lock(_mutex);
    if (_started || _stopping) return;
    _started = true;
    _thread = std::jthread([this] { run(); });
  }

  void stop() override {
    std::deque<std::unique_ptr<transfer>> orphans;
    {
      std::lock_guard lock(_mutex);
      if (_stopping) return;
      _stopping = true;
      if (!_started) orphans.swap(_queue);  // no engine thread: complete them here
    }
    curl_multi_wakeup(_multi);
    if (_thread.joinable()) _thread.join();
    for (auto& t : orphans) t->complete(std::unexpected(error{errc::cancelled, "client stopped"}));
  }

  std::expected<transfer_id, error> submit(request req, completion done) override {
    if (!starts_with_icase(req.url, "http://") && !starts_with_icase(req.url, "https://")) {
      return std::unexpected(error{errc::invalid_request, "not an http:// or https:// URL: " + req.url});
    }
    if (!known_method(req.method)) {
      return std::unexpected(error{errc::invalid_request, "unsupported method: " + req.method});
    }
    auto t = std::make_unique<transfer>();
    t->req = std::move(req);
    t->done = std::move(done);
    transfer_id id = 0;
    {
      std::lock_guard lock(_mutex);
      if (_stopping) return std::unexpected(error{errc::cancelled, "client stopped"});
      if (_queue.size() >= _options.max_queued) {
        return std::unexpected(
            error{errc::overloaded, "more than " + std::to_string(_options.max_queued) + " requests waiting"});
      }
      id = t->id = ++_last_id;
      _queue.push_back(std::move(t));
    }
    curl_multi_wakeup(_multi);
    return id;
  }

  std::expected<response, error> fetch(request req) override {
    std::promise<std::expected<response, error>> promise;
    auto future = promise.get_future();
    auto queued = submit(std::move(req), [&promise](std::expected<response, error> result) {
      promise.set_value(std::move(result));
    });
    if (!queued) return std::unexpected(std::move(queued.error()));
    return future.get();
  }

  void cancel(transfer_id id) override {
    {
      std::lock_guard lock(_mutex);
      _cancels.push_back(id);
    }
    curl_multi_wakeup(_multi);
  }

 private:
  void run() {
    for (;;) {
      std::vector<std::unique_ptr<transfer>> to_start;
      std::vector<std::unique_ptr<transfer>> cancelled;
      std::vector<transfer_id> cancels;
      bool stopping = false;
      {
        std::lock_guard lock(_mutex);
        stopping = _stopping;
        cancels.swap(_cancels);
        for (transfer_id id : cancels) {
          const auto it = std::ranges::find_if(_queue, [id](const auto& t) { return t->id == id; });
          if (it != _queue.end()) {
            cancelled.push_back(std::move(*it));
            _queue.erase(it);
          }
        }
        if (stopping) {
          for (auto& t : _queue) cancelled.push_back(std::move(t));
          _queue.clear();
        }
        while (!stopping && !_queue.empty() && _active.size() + to_start.size() < _options.max_in_flight) {
          to_start.push_back(std::move(_queue.front()));
          _queue.pop_front();
        }
      }
      if (stopping) {
        for (auto& [easy, t] : _active) {
          curl_multi_remove_handle(_multi, easy);
          cancelled.push_back(std::move(t));
        }
        _active.clear();
      } else {
        for (transfer_id id : cancels) {
          const auto it = std::ranges::find_if(_active, [id](const auto& kv) { return kv.second->id == id; });
          if (it == _active.end()) continue;
          curl_multi_remove_handle(_multi, it->first);
          cancelled.push_back(std::move(it->second));
          _active.erase(it);
        }
      }
      for (auto& t : cancelled) t->complete(std::unexpected(error{errc::cancelled, "transfer cancelled"}));
      if (stopping) return;

      for (auto& t : to_start) begin(std::move(t));
      int running = 0;
      curl_multi_perform(_multi, &running);
      finish_done();
      curl_multi_poll(_multi, nullptr, 0, 1000, nullptr);
    }
  }

  void begin(std::unique_ptr<transfer> t) {
    if (auto e = configure(*t); !e) {
      t->complete(std::unexpected(std::move(e.error())));
      return;
    }
    if (curl_multi_add_handle(_multi, t->easy) != CURLM_OK) {
      t->complete(std::unexpected(error{errc::other, "curl_multi_add_handle failed"}));
      return;
    }
    CURL* easy = t->easy;
    _active.emplace(easy, std::move(t));
  }

  std::expected<void, error> configure(transfer& t) {
    t.easy = curl_easy_init();
    if (t.easy == nullptr) return std::unexpected(error{errc::other, "curl_easy_init failed"});
    CURL* e = t.easy;
    const request& r = t.req;
    for (const auto& [name, value] : r.headers.fields()) {
      // "Name;" is curl's spelling of a header with an empty value.
      const std::string line = value.empty() ? name + ";" : name + ": " + value;
      curl_slist* next = curl_slist_append(t.header_slist, line.c_str());
      if (next == nullptr) return std::unexpected(error{errc::other, "out of memory"});
      t.header_slist = next;
    }
    bool ok = true;
    const auto set = [&](CURLoption option, auto value) { ok = ok && curl_easy_setopt(e, option, value) == CURLE_OK; };
    set(CURLOPT_URL, r.url.c_str());
    set(CURLOPT_PROTOCOLS_STR, "http,https");
    set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    set(CURLOPT_NOSIGNAL, 1L);
    set(CURLOPT_ERRORBUFFER, t.error_buffer.data());
    set(CURLOPT_PRIVATE, static_cast<void*>(&t));
    set(CURLOPT_WRITEFUNCTION, &on_body);
    set(CURLOPT_WRITEDATA, static_cast<void*>(&t));
    set(CURLOPT_HEADERFUNCTION, &on_header);
    set(CURLOPT_HEADERDATA, static_cast<void*>(&t));
    set(CURLOPT_HTTPHEADER, t.header_slist);
    set(CURLOPT_USERAGENT, _options.user_agent.c_str());
    set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(r.connect_timeout.count()));
    set(CURLOPT_TIMEOUT_MS, static_cast<long>(r.total_timeout.count()));
    set(CURLOPT_FOLLOWLOCATION, r.max_redirects > 0 ? 1L : 0L);
    set(CURLOPT_MAXREDIRS, static_cast<long>(std::max(r.max_redirects, 0)));
    if (r.max_response_bytes != 0) {
      set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(r.max_response_bytes));
    }
    set(CURLOPT_SSL_VERIFYPEER, _options.verify_tls ? 1L : 0L);
    set(CURLOPT_SSL_VERIFYHOST, _options.verify_tls ? 2L : 0L);
    if (r.method == "HEAD") {
      set(CURLOPT_NOBODY, 1L);
    } else if (r.method != "GET") {
      set(CURLOPT_CUSTOMREQUEST, r.method.c_str());
    }
    if (!r.body.empty()) {
      set(CURLOPT_POSTFIELDS, r.body.data());
      set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    }
    if (!ok) return std::unexpected(error{errc::invalid_request, "libcurl refused an option for " + r.url});
    return {};
  }

  void finish_done() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(_multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      const auto it = _active.find(msg->easy_handle);
      if (it == _active.end()) continue;
      std::unique_ptr<transfer> t = std::move(it->second);
      _active.erase(it);
      curl_multi_remove_handle(_multi, t->easy);
      const CURLcode code = msg->data.result;
      if (code != CURLE_OK) {
        t->complete(std::unexpected(transfer_error(*t, code)));
        continue;
      }
      long status = 0;
      long new_connections = 0;
      char* url = nullptr;
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
      curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &new_connections);
      curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &url);
      t->resp.status = static_cast<int>(status);
      t->resp.reused_connection = new_connections == 0;
      if (url != nullptr) t->resp.effective_url = url;
      response resp = std::move(t->resp);
      t->complete(std::move(resp));
    }
  }

  const options _options;
  CURLM* const _multi;  // thread-safe calls only from other threads: curl_multi_wakeup

  std::mutex _mutex;  // protects the members up to _thread
  std::deque<std::unique_ptr<transfer>> _queue;
  std::vector<transfer_id> _cancels;
  transfer_id _last_id = 0;
  bool _started = false;
  bool _stopping = false;
  std::jthread _thread;

  // Engine thread only.
  std::unordered_map<CURL*, std::unique_ptr<transfer>> _active;
};

}  // namespace

std::optional<std::string_view> header_list::find(std::string_view name) const noexcept {
  for (const auto& [n, v] : _fields) {
    if (iequals(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

std::expected<std::unique_ptr<client>, error> client::create(const options& opts) {
  std::call_once(global_init_once, [] { global_init_result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (global_init_result != CURLE_OK) {
    return std::unexpected(error{errc::other, std::string("curl_global_init: ") + curl_easy_strerror(global_init_result)});
  }
  CURLM* multi = curl_multi_init();
  if (multi == nullptr) return std::unexpected(error{errc::other, "curl_multi_init failed"});
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, static_cast<long>(opts.max_idle_connections));
  options checked = opts;
  checked.max_in_flight = std::max<std::size_t>(checked.max_in_flight, 1);
  return std::make_unique<engine>(checked, multi);
}

}  // namespace switchboard::http_client
