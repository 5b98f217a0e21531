// Shared pieces of switchboard-cli: global options, exit codes, failure and usage reporting, JSON
// string escaping. Included by switchboard_cli.cc (pub, sub, main) and admin_commands.cc (the admin
// API subcommands).
#pragma once

#include <boost/program_options/parsers.hpp>
#include <cstdio>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <string_view>
#include <vector>

namespace switchboard::cli {

// Command-line style of every parser: Boost's default without allow_guessing, so that an abbreviated
// flag (`--tok` for `--token`) is refused instead of silently taken for another.
inline constexpr int flag_style =
    boost::program_options::command_line_style::default_style & ~boost::program_options::command_line_style::allow_guessing;

inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;

struct global_options {
  std::string url = "tcp://127.0.0.1:7400";
  std::string admin_url = "http://127.0.0.1:7401";
  std::string token;  // HELLO token and admin API bearer token
  double connect_timeout_s = 2.0;
  bool json = false;  // --json: JSON lines even when stdout is a terminal
};

// Thrown by a command for a usage error (exit 2, message plus the usage text on stderr).
struct usage_error {
  std::string message;
};

// A one-line failure on stderr ("switchboard-cli: <message>"); returns exit_failure.
inline int fail(const std::string& message) {
  std::fprintf(stderr, "switchboard-cli: %s\n", message.c_str());
  return exit_failure;
}

// Appends `s` as a JSON string literal (quotes included), escaped by rapidjson's Writer.
inline void append_json_string(std::string& out, std::string_view s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  out.append(buf.GetString(), buf.GetSize());
}

// Admin API subcommands (admin_commands.cc). Each gets the arguments after its name.
int run_channels(const global_options& g, const std::vector<std::string>& args);
int run_subscriptions(const global_options& g, const std::vector<std::string>& args);
int run_history(const global_options& g, const std::vector<std::string>& args);
int run_dead_letters(const global_options& g, const std::vector<std::string>& args);
int run_media(const global_options& g, const std::vector<std::string>& args);

}  // namespace switchboard::cli
