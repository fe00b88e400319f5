#include "engine/core/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"

namespace banger::log {
namespace {

std::mutex mu;
UniqueFd log_fd;
Level file_level = Level::info;
std::optional<Level> stderr_level;

std::string timestamp() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

Level parse_level(std::string_view s) {
  if (s == "debug") return Level::debug;
  if (s == "info") return Level::info;
  if (s == "warn") return Level::warn;
  if (s == "error") return Level::error;
  throw Error("EINVAL", "unknown log level '" + std::string(s) + "' (debug, info, warn, error)");
}

std::string_view level_name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "info";
}

void open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) throw Error::last("open log", path);
  std::lock_guard lock(mu);
  log_fd = std::move(fd);
}

void set_file_level(Level l) {
  std::lock_guard lock(mu);
  file_level = l;
}

void set_stderr_level(std::optional<Level> l) {
  std::lock_guard lock(mu);
  stderr_level = l;
}

void write(Level l, std::string_view component, std::string_view message, const nlohmann::json& fields) {
  std::lock_guard lock(mu);
  bool to_file = log_fd && l >= file_level;
  bool to_stderr = stderr_level && l >= *stderr_level;
  if (!to_file && !to_stderr) return;
  nlohmann::json rec = {{"time", timestamp()},
                        {"level", level_name(l)},
                        {"pid", ::getpid()},
                        {"component", component},
                        {"msg", message}};
  if (fields.is_object()) {
    for (auto it = fields.begin(); it != fields.end(); ++it) rec[it.key()] = it.value();
  }
  std::string line = rec.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  // Logging must never take the program down: short writes and errors are dropped.
  if (to_file) {
    ssize_t n = ::write(log_fd.get(), line.data(), line.size());
    (void)n;
  }
  if (to_stderr) {
    ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
    (void)n;
  }
}

}  // namespace banger::log
