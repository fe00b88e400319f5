#include "listeners.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <unordered_map>

#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"

namespace banger::agent {
namespace {

// At most `cap` bytes of a file; `cut` says there was more. procfs
// produces its tables a page at a time, so this reads until EOF or the cap.
std::string read_capped(const std::string& path, size_t cap, bool& cut) {
  cut = false;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return "";
    throw Error::last("open", path);
  }
  std::string out;
  char buf[64 * 1024];
  while (out.size() < cap) {
    ssize_t n = ::read(fd.get(), buf, std::min(sizeof buf, cap - out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error::last("read", path);
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
  char probe;
  cut = ::read(fd.get(), &probe, 1) > 0;
  if (cut) out.erase(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);  // no torn last line
  return out;
}

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using Dir = std::unique_ptr<DIR, DirCloser>;

bool all_digits(const char* s) {
  if (!*s) return false;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9') return false;
  }
  return true;
}

// "" when the process is gone or hides it: a name is a nicety, never a failure.
std::string comm_of(const std::string& proc, const std::string& pid) {
  bool cut = false;
  std::string c;
  try {
    c = read_capped(proc + "/" + pid + "/comm", 64, cut);
  } catch (const Error&) {
    return "";
  }
  while (!c.empty() && c.back() == '\n') c.pop_back();
  return c;
}

// Gives each listener the lowest pid holding its socket (a forking server's
// parent rather than its workers), looking at no more than `max_fds`
// descriptors in all. Processes that vanish or hide their fds meanwhile are
// passed over; so is everything past the limit (those sockets have no pid).
void find_owners(const std::string& proc, size_t max_fds, guest::ListenersResult& r) {
  std::unordered_map<std::uint64_t, std::vector<size_t>> by_inode;
  for (size_t i = 0; i < r.listeners.size(); ++i) {
    if (r.listeners[i].inode) by_inode[r.listeners[i].inode].push_back(i);
  }
  if (by_inode.empty()) return;
  size_t scanned = 0;
  Dir procdir(::opendir(proc.c_str()));
  if (!procdir) return;
  while (dirent* p = ::readdir(procdir.get())) {
    if (!all_digits(p->d_name)) continue;
    int pid = std::atoi(p->d_name);
    Dir fds(::opendir((proc + "/" + p->d_name + "/fd").c_str()));
    if (!fds) continue;
    while (dirent* e = ::readdir(fds.get())) {
      if (!all_digits(e->d_name)) continue;
      if (++scanned > max_fds) return;
      char link[64];
      ssize_t n = ::readlinkat(::dirfd(fds.get()), e->d_name, link, sizeof link - 1);
      if (n <= 0) continue;
      link[n] = 0;
      std::string_view target(link, static_cast<size_t>(n));
      if (target.substr(0, 8) != "socket:[" || target.back() != ']') continue;
      auto it = by_inode.find(std::strtoull(link + 8, nullptr, 10));
      if (it == by_inode.end()) continue;
      auto& first = r.listeners[it->second.front()];
      if (first.pid && *first.pid <= pid) continue;
      std::string comm = comm_of(proc, p->d_name);
      for (size_t i : it->second) {
        r.listeners[i].pid = pid;
        r.listeners[i].comm = comm;
      }
    }
  }
}

}  // namespace

guest::ListenersResult list_listeners(const std::string& proc, size_t max_fds) {
  guest::ListenersResult r;
  static const struct {
    const char* file;
    const char* proto;
    bool ipv6;
  } tables[] = {{"tcp", "tcp", false}, {"tcp6", "tcp", true}, {"udp", "udp", false}, {"udp6", "udp", true}};
  for (const auto& t : tables) {
    bool cut = false;
    std::string text = read_capped(proc + "/net/" + t.file, guest::kMaxProcNetBytes, cut);
    guest::parse_proc_net(text, t.proto, t.ipv6, r);
    if (cut) r.truncated = true;
  }
  find_owners(proc, max_fds, r);
  return r;
}

}  // namespace banger::agent
