#pragma once
// Child processes through posix_spawn: no fd but 0-2 is inherited
// (closefrom), a chosen umask, optionally a new session for detached
// daemons (hypervisors outlive the CLI that started them).
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/unique_fd.hpp"

namespace banger::process {

struct Stdio {
  enum class Kind { inherit, null, pipe, file_truncate, file_append };
  Kind kind = Kind::inherit;
  std::string path;  // for file_*
  static Stdio inherit() { return {}; }
  static Stdio null() { return {Kind::null, {}}; }
  static Stdio pipe() { return {Kind::pipe, {}}; }
  static Stdio file(std::string p, bool append = true) {
    return {append ? Kind::file_append : Kind::file_truncate, std::move(p)};
  }
};

struct SpawnOptions {
  std::vector<std::string> argv;                // argv[0]: host_tools::find (PATH, then sbin)
  std::optional<std::vector<std::string>> env;  // "K=V" entries; nullopt inherits
  std::string cwd;                              // empty: inherit
  std::optional<mode_t> umask;                  // see spawn() on how it is applied
  bool new_session = false;                     // setsid(): detached from our terminal
  Stdio in, out, err;
  std::vector<int> pass_fds = {};               // become the child's fds 3, 4, ... in this order
};

struct ExitStatus {
  bool exited = false;  // false: killed by `signal`
  int code = 0;
  int signal = 0;
  // The shell convention: code, or 128 + signal.
  int shell_code() const { return exited ? code : 128 + signal; }
};

class Child {
 public:
  Child() = default;
  Child(pid_t pid, UniqueFd in, UniqueFd out, UniqueFd err);
  // The destructor closes the pipes; it does not kill or reap (a detached child lives on).
  Child(Child&& o) noexcept;
  Child& operator=(Child&& o) noexcept;

  pid_t pid() const { return pid_; }
  int stdin_fd() const { return in_.get(); }
  int stdout_fd() const { return out_.get(); }
  int stderr_fd() const { return err_.get(); }
  void close_stdin();
  void close_fd(int fd);  // closes whichever of our pipe ends is `fd`

  // Waits for exit. With a timeout, returns nullopt when it passes. Polls the
  // cancel flag; on Ctrl-C it throws ECANCELED (the child is left to the caller).
  std::optional<ExitStatus> wait(std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  std::optional<ExitStatus> try_wait();
  void kill(int sig);  // no-op once reaped

 private:
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  UniqueFd in_, out_, err_;
  std::optional<ExitStatus> status_;
};

// posix_spawn has no umask attribute, so the umask is set in the parent
// around the spawn under a lock and restored right after. The child gets
// `requested | current`, which is at least as strict as both: the brief
// window can only make files created meanwhile by other threads stricter,
// never looser.
Child spawn(const SpawnOptions& opts);

struct RunResult {
  ExitStatus status;
  std::string out;
  std::string err;
};
// Runs to completion feeding `input` and capturing stdout/stderr (unless the
// options route them elsewhere). On timeout or Ctrl-C the child is killed
// (SIGTERM, then SIGKILL after a grace period) and the call throws.
RunResult run(SpawnOptions opts, std::string_view input = {},
              std::optional<std::chrono::milliseconds> timeout = std::nullopt);

// /proc/<pid>/cmdline split on NULs; empty when the process is gone.
std::vector<std::string> cmdline(pid_t pid);

}  // namespace banger::process
