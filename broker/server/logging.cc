#include "broker/server/logging.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>

namespace switchboard::server {
namespace {

std::expected<spdlog::level::level_enum, std::string> parse_level(std::string_view level) {
  const auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    return std::unexpected(fmt::format("the argument ('{}') for option '--log-level' is invalid", level));
  }
  return parsed;
}

class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    const auto since = msg.time.time_since_epoch();
    const auto ms = duration_cast<milliseconds>(since).count() % 1000;
    const std::string time =
        fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", fmt::gmtime(system_clock::to_time_t(msg.time)), ms);
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("time");
    w.String(time.data(), static_cast<rapidjson::SizeType>(time.size()));
    w.Key("level");
    const auto level = spdlog::level::to_string_view(msg.level);
    w.String(level.data(), static_cast<rapidjson::SizeType>(level.size()));
    w.Key("logger");
    w.String(msg.logger_name.data(), static_cast<rapidjson::SizeType>(msg.logger_name.size()));
    w.Key("thread");
    w.Uint64(msg.thread_id);
    w.Key("message");
    w.String(msg.payload.data(), static_cast<rapidjson::SizeType>(msg.payload.size()));
    w.EndObject();
    dest.append(buf.GetString(), buf.GetString() + buf.GetSize());
    dest.push_back('\n');
  }
  [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>();
  }
};

}  // namespace

std::expected<void, std::string> check_logging(std::string_view level, std::string_view format) {
  if (auto ok = parse_level(level); !ok) return std::unexpected(ok.error());
  if (format != "text" && format != "json") {
    return std::unexpected(
        fmt::format("the argument ('{}') for option '--log-format' is invalid: text or json", format));
  }
  return {};
}

std::expected<void, std::string> configure_logging(std::string_view level, std::string_view format) {
  if (auto ok = check_logging(level, format); !ok) return ok;
  auto logger = spdlog::get("switchboard");
  if (!logger) logger = spdlog::stderr_color_mt("switchboard");
  if (format == "json") {
    logger->set_formatter(json_log_formatter());
  } else {
    logger->set_formatter(std::make_unique<spdlog::pattern_formatter>());
  }
  spdlog::set_default_logger(logger);
  spdlog::set_level(*parse_level(level));
  return {};
}

std::expected<void, std::string> set_log_level(std::string_view level) {
  auto parsed = parse_level(level);
  if (!parsed) return std::unexpected(parsed.error());
  spdlog::set_level(*parsed);
  return {};
}

std::unique_ptr<spdlog::formatter> json_log_formatter() { return std::make_unique<json_formatter>(); }

}  // namespace switchboard::server
