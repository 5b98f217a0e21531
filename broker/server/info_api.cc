#include "broker/server/info_api.h"

#include <dirent.h>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <switchboard/build_info.h>
#include <switchboard/protocol.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <string_view>

namespace switchboard::server {
namespace {

double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// A Prometheus label value: `\`, `"` and newline escaped (exposition format 0.0.4).
std::string label_value(std::string_view v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Resident and virtual memory in bytes from /proc/self/statm (0 when unreadable).
std::pair<std::uint64_t, std::uint64_t> memory_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return {0, 0};
  unsigned long long size = 0;
  unsigned long long resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (n != 2) return {0, 0};
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  return {resident * page, size * page};
}

// Open file descriptors: the entries of /proc/self/fd, less the one opendir itself holds.
std::uint64_t open_fds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  std::uint64_t n = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n > 0 ? n - 1 : 0;
}

void gauge(std::string& out, std::string_view name, std::string_view type, std::string_view help,
           double value) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
}

}  // namespace

info_api::info_api(broker_facts facts)
    : _facts(std::move(facts)),
      _started_at(std::chrono::system_clock::now()),
      _started(std::chrono::steady_clock::now()) {}

admin::route_module info_api::module() const {
  admin::route_module m;
  m.prefix = "/v1/info";
  m.methods = {"GET"};
  m.on_io_thread = true;
  m.handle = [this](const admin::module_request& r) -> std::expected<admin::http_response, admin::api_error> {
    if (!r.rest.empty()) return std::unexpected(admin::api_error{404, "not_found", "no such endpoint"});
    return admin::json_response(200, info_json());
  };
  m.metrics = [this] { return metrics(); };
  return m;
}

std::string info_api::info_json() const {
  namespace bi = switchboard::build_info;
  const auto started = std::chrono::time_point_cast<std::chrono::milliseconds>(_started_at);
  const std::string started_at =
      fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", fmt::gmtime(std::chrono::system_clock::to_time_t(started)));
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto str = [&w](std::string_view key, std::string_view value) {
    w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  w.StartObject();
  str("name", "switchboard");
  str("version", bi::version);
  str("commit", bi::commit);
  str("build_type", bi::build_type);
  w.Key("protocol_version");
  w.Uint(protocol::version);
  str("started_at", started_at);
  w.Key("uptime_seconds");
  w.Uint64(static_cast<std::uint64_t>(seconds_between(_started, std::chrono::steady_clock::now())));
  w.Key("pid");
  w.Int64(::getpid());
  str("store", _facts.store);
  w.Key("shards");
  w.Uint(_facts.shards);
  w.Key("inline_shards");
  w.Bool(_facts.inline_shards);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

std::string info_api::metrics() const {
  namespace bi = switchboard::build_info;
  std::string out;
  out += fmt::format(
      "# HELP switchboard_build_info Version and commit of the running broker (always 1).\n"
      "# TYPE switchboard_build_info gauge\n"
      "switchboard_build_info{{version=\"{}\",commit=\"{}\"}} 1\n",
      label_value(bi::version), label_value(bi::commit));
  gauge(out, "switchboard_uptime_seconds", "gauge", "Seconds since the broker started.",
        seconds_between(_started, std::chrono::steady_clock::now()));
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                     static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  gauge(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", cpu);
  const auto [resident, virt] = memory_bytes();
  gauge(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
        static_cast<double>(resident));
  gauge(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
        static_cast<double>(virt));
  gauge(out, "process_open_fds", "gauge", "Number of open file descriptors.",
        static_cast<double>(open_fds()));
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY) {
    gauge(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
          static_cast<double>(files.rlim_cur));
  }
  gauge(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
        std::chrono::duration<double>(_started_at.time_since_epoch()).count());
  return out;
}

}  // namespace switchboard::server
