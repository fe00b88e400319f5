// banger-agent: runs inside the guest as root and serves banger's requests
// (docs/agent-protocol.md) over one of:
//   --serial PATH   a virtio-serial port (QEMU hosts without vhost-vsock)
//   --vsock PORT    AF_VSOCK (firecracker; QEMU with vhost-vsock)
//   --unix PATH     a Unix socket (tests)
// With --grow-fs DEVICE MOUNTPOINT it grows that mounted ext4 filesystem to
// its disk's size and exits (banger's initramfs runs it at every boot).
// With --seed-rng FILE it credits the host's random bytes in FILE to the
// kernel's pool and removes the file (the initramfs, at a VM's first boot).
// Run as "banger-init" it is PID 1 for images without an init (init.hpp).
// Socket transports fork one session per connection; the serial port is a
// single stream served forever. With --serial .../banger.agent it also serves
// the forwarding port .../banger.forward beside it when the VM has one.
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "engine/core/unique_fd.hpp"
#include "growfs.hpp"
#include "init.hpp"
#include "rng_seed.hpp"
#include "session.hpp"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: banger-agent --serial PATH | --vsock PORT | --unix PATH | --grow-fs DEVICE MOUNTPOINT | "
               "--seed-rng FILE | --version\n");
  return 2;
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "banger-agent: %s: %s\n", what, std::strerror(errno));
  ::_exit(1);
}

void serve_listener(int lfd) {
  if (::listen(lfd, 16) != 0) die("listen");
  for (;;) {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    banger::UniqueFd c(::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) {
      if (errno == EINTR) continue;
      die("accept");
    }
    pid_t p = ::fork();
    if (p == 0) {
      ::close(lfd);
      try {
        banger::agent::Session(c.get(), c.get(), false).run();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "banger-agent: session: %s\n", e.what());
      }
      ::_exit(0);
    }
  }
}

// Serves a serial port for ever: hosts come and go on it.
[[noreturn]] void serve_serial(int fd) {
  for (;;) {
    try {
      banger::agent::Session(fd, fd, true).run();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "banger-agent: %s\n", e.what());
      ::usleep(100 * 1000);
    }
  }
}

// The port beside banger.agent that carries only port forwarding
// (banger.forward): a forwarder holds its session for as long as it runs,
// which on the main port would be cut by the next `vm exec`. Served by a
// child that dies with this process, so a restarted agent never finds a
// second reader on the port. VMs started before it existed have none.
void serve_forward_port(const std::string& agent_port) {
  const std::string suffix = "/banger.agent";
  if (agent_port.size() < suffix.size() || agent_port.compare(agent_port.size() - suffix.size(), suffix.size(), suffix) != 0)
    return;
  std::string path = agent_port.substr(0, agent_port.size() - suffix.size()) + "/banger.forward";
  pid_t parent = ::getpid();
  pid_t p = ::fork();
  if (p != 0) return;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(0);
  int fd = -1;
  // Both ports appear once virtio_console has bound the device; give the
  // second one's /dev link a moment.
  for (int i = 0; i < 600 && fd < 0; ++i) {
    fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && i >= 50 && ::access(agent_port.c_str(), F_OK) == 0) ::_exit(0);
    if (fd < 0) ::usleep(100 * 1000);
  }
  if (fd < 0) ::_exit(0);
  serve_serial(fd);
}

}  // namespace

int main(int argc, char** argv) {
  // Invoked as banger-init (a link to this binary): the VM's PID 1.
  const char* base = std::strrchr(argv[0], '/');
  if (std::strcmp(base ? base + 1 : argv[0], "banger-init") == 0) return banger::agent::run_init();
  if (argc < 2) return usage();
  std::string mode = argv[1];
  if (mode == "--version") {
    std::printf("banger-agent %s (protocol %d.%d)\n", banger::agent::agent_version().c_str(),
                banger::guest::kProtocolMajor, banger::guest::kProtocolMinor);
    return 0;
  }
  if (argc < 3) return usage();
  if (mode == "--grow-fs") {
    if (argc != 4) return usage();
    try {
      std::printf("%s\n", banger::agent::describe(argv[2], banger::agent::grow_filesystem(argv[2], argv[3])).c_str());
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "banger-agent: %s\n", e.what());
      return 1;
    }
  }
  if (mode == "--seed-rng") {
    if (argc != 3) return usage();
    try {
      std::printf("seeded the kernel's random pool with %zu bytes from the host\n",
                  banger::agent::seed_rng_from(argv[2]));
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "banger-agent: %s\n", e.what());
      return 1;
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  if (mode == "--serial") {
    serve_forward_port(argv[2]);
    int fd = -1;
    // The port appears once virtio_console has bound it.
    for (int i = 0; i < 600 && fd < 0; ++i) {
      fd = ::open(argv[2], O_RDWR | O_NOCTTY | O_CLOEXEC);
      if (fd < 0) ::usleep(100 * 1000);
    }
    if (fd < 0) die(argv[2]);
    serve_serial(fd);
  }
  if (mode == "--vsock") {
    int fd = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket(AF_VSOCK)");
    sockaddr_vm addr{};
    addr.svm_family = AF_VSOCK;
    addr.svm_cid = VMADDR_CID_ANY;
    addr.svm_port = static_cast<unsigned>(std::stoul(argv[2]));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind vsock");
    serve_listener(fd);
  }
  if (mode == "--unix") {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (std::strlen(argv[2]) >= sizeof addr.sun_path) return usage();
    std::strcpy(addr.sun_path, argv[2]);
    ::unlink(argv[2]);
    ::umask(077);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind");
    serve_listener(fd);
  }
  return usage();
}
