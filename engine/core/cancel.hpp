#pragma once
// Process-wide cancellation (SIGINT, SIGTERM). The signal handler only sets a
// flag, remembers the signal and writes one byte to a self-pipe; long-running
// natives poll the flag at safe points (or wait on the pipe with
// cancel::poll, so a blocking wait wakes at once) and throw ECANCELED, so
// their RAII cleanup runs and the Lua recipe's <close> handlers run after them.
#include <poll.h>

#include <atomic>
#include <chrono>

namespace banger::cancel {

// Async-signal-safe. `sig` is the signal that asked (SIGINT when the request
// comes from code); the first one is kept until reset().
void request(int sig = 2) noexcept;
bool requested() noexcept;
// The signal that requested cancellation, 0 when none did.
int signal() noexcept;
// 128 + signal(): the exit status of a process ended by that signal's
// request (130 for SIGINT, 143 for SIGTERM), 130 when none is recorded.
int exit_status() noexcept;
void reset() noexcept;
// Throws banger::Error("ECANCELED", "interrupted") when cancellation was requested.
void check();

// poll(2) over `fds` that also wakes when cancellation is requested, and
// then throws ECANCELED. EINTR counts as a timeout (0). Returns poll's count.
int poll(pollfd* fds, nfds_t n, std::chrono::milliseconds timeout);
// Sleeps, or throws ECANCELED as soon as cancellation is requested.
void sleep_for(std::chrono::milliseconds d);

}  // namespace banger::cancel
