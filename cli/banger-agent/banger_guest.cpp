#include "banger_guest.hpp"

#include "engine/core/unique_fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

namespace banger::agent {

bool in_banger_guest() {
  UniqueFd fd(::open("/proc/cmdline", O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  char buf[4096];
  ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return false;
  buf[n] = '\0';
  // A whole argument: at the start or after a space.
  for (const char* p = std::strstr(buf, "banger.name="); p; p = std::strstr(p + 1, "banger.name=")) {
    if (p == buf || p[-1] == ' ') return true;
  }
  return false;
}

}  // namespace banger::agent
