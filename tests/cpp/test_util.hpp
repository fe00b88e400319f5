#pragma once
// Small helpers shared by the C++ tests.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"

// A test case that cannot run here says why and returns; ctest reports it
// as skipped, never as passed (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt).
#define BANGER_SKIP(why)                          \
  do {                                            \
    std::printf("banger-skip: %s\n", (why));      \
    std::fflush(stdout);                          \
    return;                                       \
  } while (0)
// The cases that need root skip without it (README.md, "Tests and root").
#define BANGER_NEEDS_ROOT(why) \
  if (::geteuid() != 0) BANGER_SKIP("needs root: " why)

namespace banger::test {

// A temporary directory removed when the object goes out of scope.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "banger-cpp-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

// Runs fn in a forked child and returns its exit code (fn's return value).
// Used for tests that change uid or environment.
inline int in_child(const std::function<int()>& fn) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 99;
    try {
      rc = fn();
    } catch (...) {
      rc = 98;
    }
    ::_exit(rc);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// The banger::Error code `fn` throws, or "" when it throws nothing.
std::string error_code_of(const std::function<void()>& fn);

// Sets (or, with nullopt, unsets) an environment variable for the scope and
// puts the old value back, even when an assertion ends the test early.
class EnvVar {
 public:
  EnvVar(std::string name, const std::optional<std::string>& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value) {
      ::setenv(name_.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  EnvVar(std::string name, const char* value) : EnvVar(std::move(name), std::optional<std::string>(value)) {}
  ~EnvVar() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  EnvVar(const EnvVar&) = delete;
  EnvVar& operator=(const EnvVar&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// Sets the process umask for the scope and restores the previous one.
class Umask {
 public:
  explicit Umask(mode_t mask) : old_(::umask(mask)) {}
  ~Umask() { ::umask(old_); }
  Umask(const Umask&) = delete;
  Umask& operator=(const Umask&) = delete;
  mode_t previous() const { return old_; }

 private:
  mode_t old_;
};

// Clears the process-wide cancel flag when the scope ends, so a test that
// requests cancellation (or fails while it is set) never cancels the next.
class CancelReset {
 public:
  CancelReset() = default;
  ~CancelReset() { cancel::reset(); }
  CancelReset(const CancelReset&) = delete;
  CancelReset& operator=(const CancelReset&) = delete;
};

// Joins `thread` when the scope ends, after calling `stop` (whatever makes
// it return), so a REQUIRE that fires while it runs unwinds the test case
// instead of destroying a joinable std::thread (std::terminate).
class JoinOnExit {
 public:
  explicit JoinOnExit(std::thread& thread, std::function<void()> stop = {}) : thread_(thread), stop_(std::move(stop)) {}
  ~JoinOnExit() {
    if (!thread_.joinable()) return;
    if (stop_) stop_();
    thread_.join();
  }
  JoinOnExit(const JoinOnExit&) = delete;
  JoinOnExit& operator=(const JoinOnExit&) = delete;

 private:
  std::thread& thread_;
  std::function<void()> stop_;
};

// Polls `f` until it holds or `limit` passes; returns its last value. For a
// condition another thread or process makes true: never a fixed sleep.
template <class F>
bool eventually(F&& f, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return f();
}

// The uid tests drop to when they need "somebody else".
inline constexpr uid_t kNobody = 65534;

// "CODE: message" of the banger::Error `fn` throws, or "no error".
inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code() + ": " + e.what();
  }
  return "no error";
}

inline std::string error_code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  return "";
}

}  // namespace banger::test
