#include "engine/core/cancel.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <vector>

#include "engine/core/error.hpp"

namespace banger::cancel {
namespace {
std::atomic<bool> flag{false};
std::atomic<int> signo{0};
static_assert(std::atomic<bool>::is_always_lock_free, "the flag is set from a signal handler");
static_assert(std::atomic<int>::is_always_lock_free, "the signal is recorded from a signal handler");

// The self-pipe: readable while cancellation is requested. Made before main
// runs, so the signal handler never races its creation.
struct WakePipe {
  int rd = -1, wr = -1;
  WakePipe() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0) {
      rd = p[0];
      wr = p[1];
    }
  }
} wake;

void drain() noexcept {
  char buf[64];
  while (wake.rd >= 0 && ::read(wake.rd, buf, sizeof buf) > 0) {
  }
}
}  // namespace

void request(int sig) noexcept {
  int none = 0;
  signo.compare_exchange_strong(none, sig, std::memory_order_relaxed);
  flag.store(true, std::memory_order_relaxed);
  if (wake.wr >= 0) {
    char b = 1;
    ssize_t ignored = ::write(wake.wr, &b, 1);  // a full pipe is already readable
    (void)ignored;
  }
}
bool requested() noexcept { return flag.load(std::memory_order_relaxed); }
int signal() noexcept { return requested() ? signo.load(std::memory_order_relaxed) : 0; }
int exit_status() noexcept {
  int s = signal();
  return 128 + (s > 0 ? s : SIGINT);
}
void reset() noexcept {
  flag.store(false, std::memory_order_relaxed);
  signo.store(0, std::memory_order_relaxed);
  drain();
}
void check() {
  if (requested()) throw Error("ECANCELED", "interrupted");
}

int poll(pollfd* fds, nfds_t n, std::chrono::milliseconds timeout) {
  check();
  std::vector<pollfd> all(fds, fds + n);
  all.push_back(pollfd{wake.rd, POLLIN, 0});
  int ms = static_cast<int>(std::clamp<long long>(timeout.count(), 0, 1 << 30));
  int r = ::poll(all.data(), all.size(), ms);
  check();
  if (r < 0) {
    if (errno == EINTR) return 0;
    throw Error::last("poll");
  }
  std::copy_n(all.begin(), n, fds);
  // Only the caller's descriptors count: a wake byte without the flag (a
  // reset racing a signal) must not look like a ready socket.
  return static_cast<int>(std::count_if(fds, fds + n, [](const pollfd& p) { return p.revents != 0; }));
}

void sleep_for(std::chrono::milliseconds d) {
  auto end = std::chrono::steady_clock::now() + d;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    cancel::poll(nullptr, 0, left);
  }
}

}  // namespace banger::cancel
