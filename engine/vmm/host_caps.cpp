#include "engine/vmm/host_caps.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/core/host_tools.hpp"
#include "engine/core/unique_fd.hpp"

namespace banger::vmm {
namespace {
bool exists(const char* p) {
  struct stat st {};
  return ::stat(p, &st) == 0;
}
}  // namespace

HostCaps detect_host() {
  HostCaps c;
  c.kvm_device = static_cast<bool>(UniqueFd(::open("/dev/kvm", O_RDWR | O_CLOEXEC)));
  c.kvm_hardware = exists("/sys/module/kvm_intel") || exists("/sys/module/kvm_amd");
  c.kvm_pvm = exists("/sys/module/kvm_pvm");
  c.vhost_vsock = exists("/dev/vhost-vsock");
  c.tun = exists("/dev/net/tun");
  return c;
}

std::string find_executable(const std::string& name) { return host_tools::find(name); }

}  // namespace banger::vmm
