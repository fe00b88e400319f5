#include "engine/vmm/host_caps.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

namespace banger::vmm {
namespace {
bool exists(const char* p) {
  struct stat st {};
  return ::stat(p, &st) == 0;
}
}  // namespace

HostCaps detect_host() {
  HostCaps c;
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    c.kvm_device = true;
    ::close(fd);
  }
  c.kvm_hardware = exists("/sys/module/kvm_intel") || exists("/sys/module/kvm_amd");
  c.kvm_pvm = exists("/sys/module/kvm_pvm");
  c.vhost_vsock = exists("/dev/vhost-vsock");
  c.tun = exists("/dev/net/tun");
  return c;
}

std::string find_executable(const std::string& name) {
  auto executable = [](const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string::npos) return executable(name) ? name : "";
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    std::string p = dir + "/" + name;
    if (executable(p)) return p;
  }
  return "";
}

}  // namespace banger::vmm
