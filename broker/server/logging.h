// The broker's log: spdlog's default logger "switchboard" on stderr, as text or as JSON lines.
//
//   text  [2026-05-01 12:00:00.000] [switchboard] [info] message            (spdlog's default pattern)
//   json {"time":"2026-05-01T12:00:00.000Z","level":"info","logger":"switchboard","thread":123,"message":"…"}
//
// JSON lines are written with rapidjson's Writer, so every field is escaped (a channel name or a
// token name with quotes or control bytes cannot break a line); `time` is UTC with milliseconds.
//
// Thread-safety: configure_logging() and set_log_level() are meant for the main thread (start-up,
// SIGHUP); the logger itself is spdlog's thread-safe `_mt` logger.
#pragma once

#include <expected>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/formatter.h>

namespace switchboard::server {

// Checks a --log-level (trace, debug, info, warn, error, off) and --log-format (text, json) value.
// The error names the option and the value, as Boost.Program_options does for other options.
[[nodiscard]] std::expected<void, std::string> check_logging(std::string_view level, std::string_view format);

// Installs the default logger on stderr in `format` at `level` (both checked as above).
[[nodiscard]] std::expected<void, std::string> configure_logging(std::string_view level,
                                                                 std::string_view format);

// Changes the level of the default logger (SIGHUP).
[[nodiscard]] std::expected<void, std::string> set_log_level(std::string_view level);

// The JSON-lines formatter, for loggers built elsewhere (tests).
[[nodiscard]] std::unique_ptr<spdlog::formatter> json_log_formatter();

}  // namespace switchboard::server
