// The hypervisor operations: launch_vmm starts QEMU as a uid of its own
// (never root, never the owner) from a typed request whose every file is a
// descriptor the owner opened, and signal_vmm signals only such processes.
// Why: a guest that escapes QEMU lands in a process that can read none of
// the owner's files and signal none of the owner's processes
// (docs/privileges.md, "Isolated hypervisors").
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>

#include "engine/core/error.hpp"
#include "engine/core/file_lock.hpp"
#include "engine/priv/ops.hpp"
#include "engine/priv/ram_grant.hpp"
#include "engine/priv/sandbox_exec.hpp"
#include "engine/priv/validate.hpp"
#include "engine/priv/vmm_uids.hpp"
#include "engine/vmm/qemu.hpp"
#include "engine/vmm/qemu_isolated.hpp"

namespace banger::priv {
namespace {

using nlohmann::json;

bool boolean(const json& p, const char* key) {
  const auto& v = p.at(key);
  if (!v.is_boolean()) throw Error("EINVAL", std::string("field '") + key + "' must be a boolean");
  return v.get<bool>();
}

long bounded(const json& p, const char* key, long lo, long hi) {
  long v = integer(p, key);
  if (v < lo || v > hi) {
    throw Error("EINVAL", std::string(key) + " " + std::to_string(v) + " is outside " + std::to_string(lo) + ".." +
                              std::to_string(hi));
  }
  return v;
}

// The request's descriptors, each claimed by exactly one role.
class Claims {
 public:
  explicit Claims(Fds& fds) : fds_(fds), used_(fds.size(), false) {}
  // The descriptor at index p[key], or -1 when the index is -1 and `optional`.
  int take(const json& p, const char* key, bool optional) {
    long i = integer(p, key);
    if (i == -1 && optional) return -1;
    if (i < 0 || static_cast<size_t>(i) >= fds_.size()) {
      throw Error("EINVAL", std::string(key) + ": descriptor index " + std::to_string(i) + " was not passed");
    }
    if (used_[static_cast<size_t>(i)]) throw Error("EINVAL", std::string(key) + ": descriptor " + std::to_string(i) + " is used twice");
    used_[static_cast<size_t>(i)] = true;
    return fds_[static_cast<size_t>(i)].get();
  }
  void all_used() const {
    for (bool u : used_) {
      if (!u) throw Error("EINVAL", "a descriptor was passed that no field names");
    }
  }

 private:
  Fds& fds_;
  std::vector<bool> used_;
};

struct stat stat_of(int fd, const std::string& what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error::last("fstat", what);
  return st;
}

int access_mode(int fd) { return ::fcntl(fd, F_GETFL) & O_ACCMODE; }

void regular_file(int fd, const std::string& what, bool writable) {
  if (!S_ISREG(stat_of(fd, what).st_mode)) throw Error("EINVAL", what + " must be a regular file");
  int mode = access_mode(fd);
  if (writable ? mode == O_RDONLY : mode == O_WRONLY) {
    throw Error("EINVAL", what + " must be opened " + (writable ? "for writing" : "for reading"));
  }
}

void listening_socket(int fd, const std::string& what) {
  int v = 0;
  socklen_t len = sizeof v;
  auto opt = [&](int name) {
    len = sizeof v;
    if (::getsockopt(fd, SOL_SOCKET, name, &v, &len) != 0) throw Error("EINVAL", what + " must be a socket");
    return v;
  };
  if (opt(SO_DOMAIN) != AF_UNIX || opt(SO_TYPE) != SOCK_STREAM || opt(SO_ACCEPTCONN) != 1) {
    throw Error("EINVAL", what + " must be a listening Unix stream socket");
  }
}

// A queue of a banger tap: /dev/net/tun attached to an interface whose
// name passes the tap gate.
void tap_queue(int fd) {
  struct stat st = stat_of(fd, "tap");
  if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 10 || minor(st.st_rdev) != 200) {
    throw Error("EINVAL", "tap must be an open /dev/net/tun queue");
  }
  ifreq ifr{};
  if (::ioctl(fd, TUNGETIFF, &ifr) != 0) throw Error("EINVAL", "tap: the queue is attached to no interface");
  validate::tap_name(std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ)));
}

// QEMU opens kernel and initrd by /proc/self/fd/N, which checks the file's
// permissions against the VMM uid. A file readable by others is handed on
// as it is; any other is copied into a sealed memfd, a file that uid may
// read and nobody can change.
UniqueFd sealed_copy(int src, const std::string& what) {
  off_t size = stat_of(src, what).st_size;
  // Bounded: the copy stays in memory (the helper's) as long as QEMU runs.
  if (size <= 0 || size > (off_t{256} << 20)) throw Error("EINVAL", what + ": size must be 1 byte .. 256 MiB");
  UniqueFd mem(static_cast<int>(::syscall(SYS_memfd_create, what.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING)));
  if (!mem) throw Error::last("memfd_create", what);
  off_t off = 0;
  while (off < size) {
    ssize_t n = ::sendfile(mem.get(), src, &off, static_cast<size_t>(size - off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error::last("copy", what);
    if (n == 0) throw Error("EIO", what + " shrank while it was copied");
  }
  if (::fcntl(mem.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0) {
    throw Error::last("seal", what);
  }
  // Only the read-only view goes to QEMU.
  UniqueFd ro(::open(("/proc/self/fd/" + std::to_string(mem.get())).c_str(), O_RDONLY | O_CLOEXEC));
  if (!ro) throw Error::last("reopen", what);
  return ro;
}

void printable(const std::string& s, const char* what, size_t max) {
  if (s.size() > max) throw Error("EINVAL", std::string(what) + " is longer than " + std::to_string(max) + " bytes");
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) throw Error("EINVAL", std::string(what) + " may only hold printable ASCII");
  }
}

void mac_address(const std::string& mac) {
  bool ok = mac.size() == 17;
  for (size_t i = 0; ok && i < mac.size(); ++i) {
    char c = mac[i];
    ok = (i % 3 == 2) ? c == ':' : ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  }
  if (!ok) throw Error("EINVAL", "invalid MAC address '" + mac + "': expected xx:xx:xx:xx:xx:xx in lower-case hex");
}

void disk_id(const std::string& id) {
  bool ok = !id.empty() && id.size() <= 16;
  for (char c : id) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));
  if (!ok) throw Error("EINVAL", "invalid disk id '" + id + "': 1..16 of [a-z0-9]");
}

// The group that may open /dev/kvm, when it is a group other than root's.
std::vector<gid_t> kvm_groups() {
  struct stat st {};
  if (::stat("/dev/kvm", &st) != 0 || !S_ISCHR(st.st_mode)) {
    throw Error("ENODEV", "accel kvm: /dev/kvm is missing");
  }
  if (st.st_gid != 0 && (st.st_mode & S_IRGRP) && (st.st_mode & S_IWGRP)) return {st.st_gid};
  if ((st.st_mode & S_IROTH) && (st.st_mode & S_IWOTH)) return {};
  throw Error("EACCES", "accel kvm: /dev/kvm is open to root only; give it a kvm group (udev does by default)");
}

// The descriptor QEMU gets for a kernel or initrd (see sealed_copy).
int boot_file(int fd, const std::string& what, std::vector<UniqueFd>& keep) {
  regular_file(fd, what, false);
  if (stat_of(fd, what).st_mode & S_IROTH) return fd;
  keep.push_back(sealed_copy(fd, what));
  return keep.back().get();
}

// A RAM file an isolated QEMU may map: the caller's own regular file (the
// helper lends the VMM uid access to it, see RamGrant), opened read-write,
// exactly the VM's memory size (QEMU must not grow it).
void ram_file(int fd, const Caller& caller, int memory_mib) {
  regular_file(fd, "memory", true);
  if (access_mode(fd) != O_RDWR) throw Error("EINVAL", "memory must be opened read-write");
  struct stat st = stat_of(fd, "memory");
  if (st.st_uid != caller.uid) {
    throw Error("EPERM", "memory: the RAM file is owned by uid " + std::to_string(st.st_uid) + ", not by the caller");
  }
  if (st.st_size != static_cast<off_t>(memory_mib) << 20) {
    throw Error("EINVAL", "memory: the RAM file must be exactly memory_mib MiB");
  }
}

// The file behind `fd` opened again, read-only. Root reopens the very inode
// the owner passed (/proc/self/fd names the open file, not a path).
UniqueFd read_only_twin(int fd, const std::string& what) {
  UniqueFd ro(::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC));
  if (!ro) throw Error::last("reopen read-only", what);
  return ro;
}

constexpr size_t kMaxChain = 16;  // images below one disk

std::mutex launch_mu;  // one uid pick at a time within this process

}  // namespace

Result launch_vmm(const json& p, const Caller& caller, Fds& fds) {
  expect_fields(p, {"name", "vcpus", "memory_mib", "accel", "binary", "cmdline", "mac", "kernel", "initrd", "qmp",
                    "agent", "forward", "console", "log", "tap", "disks", "memory", "generation", "incoming"});
  vmm::IsolatedQemu q;
  q.name = str(p, "name");
  validate::vm_name(q.name);
  q.vcpus = static_cast<int>(bounded(p, "vcpus", 1, 64));
  q.memory_mib = static_cast<int>(bounded(p, "memory_mib", 64, 1 << 20));
  auto accel = str(p, "accel");
  if (accel != "kvm" && accel != "tcg") throw Error("EINVAL", "accel must be kvm or tcg");
  q.kvm = accel == "kvm";
  q.cmdline = str(p, "cmdline");
  printable(q.cmdline, "cmdline", 4096);
  q.mac = str(p, "mac");
  if (!q.mac.empty()) mac_address(q.mac);
  q.generation = str(p, "generation");
  if (!q.generation.empty()) vmm::check_generation(q.generation);
  q.incoming = boolean(p, "incoming");

  auto binary = str(p, "binary");
  if (std::filesystem::path(binary).filename().string().rfind("qemu-system-", 0) != 0) {
    throw Error("EPERM", "refusing " + binary + ": launch_vmm runs qemu-system-* binaries only");
  }
  UniqueFd exe = validate::open_root_executable(binary);
  q.binary = binary;

  // Check every descriptor for its role; the child sees them as 3, 4, ...
  Claims claims(fds);
  std::vector<int> child;  // host descriptors in child order
  std::vector<UniqueFd> keep;  // sealed copies made here
  auto place = [&](int fd) {
    child.push_back(fd);
    return 2 + static_cast<int>(child.size());
  };
  q.kernel = place(boot_file(claims.take(p, "kernel", false), "kernel", keep));
  if (int fd = claims.take(p, "initrd", true); fd >= 0) q.initrd = place(boot_file(fd, "initrd", keep));
  for (auto [role, slot] : {std::pair{"qmp", &q.qmp}, std::pair{"agent", &q.agent}, std::pair{"forward", &q.forward}}) {
    int fd = claims.take(p, role, false);
    listening_socket(fd, role);
    *slot = place(fd);
  }
  int console = claims.take(p, "console", false);
  regular_file(console, "console", true);
  q.console = place(console);
  int log = claims.take(p, "log", false);
  regular_file(log, "log", true);
  if (int tap = claims.take(p, "tap", true); tap >= 0) {
    tap_queue(tap);
    q.tap = place(tap);
  }
  int memory = claims.take(p, "memory", true);
  if (memory >= 0) {
    ram_file(memory, caller, q.memory_mib);
    q.memory = place(memory);
  }
  const auto& disks = p.at("disks");
  if (!disks.is_array() || disks.empty() || disks.size() > 4) throw Error("EINVAL", "disks must be a list of 1..4");
  std::set<std::string> ids;
  for (const auto& d : disks) {
    expect_fields(d, {"id", "format", "read_only", "fd", "backing"});
    vmm::IsolatedQemu::Disk disk;
    disk.id = str(d, "id");
    disk_id(disk.id);
    if (!ids.insert(disk.id).second) throw Error("EINVAL", "disk id '" + disk.id + "' is used twice");
    disk.format = str(d, "format");
    if (disk.format != "raw" && disk.format != "qcow2") throw Error("EINVAL", "disk format must be raw or qcow2");
    disk.read_only = boolean(d, "read_only");
    int fd = claims.take(d, "fd", false);
    regular_file(fd, "disk " + disk.id, !disk.read_only);
    if (!disk.read_only && access_mode(fd) != O_RDWR) throw Error("EINVAL", "disk " + disk.id + " must be opened read-write");
    disk.fd = place(fd);
    if (!disk.read_only) {
      // Its read-only twin, for when a snapshot makes it a backing file
      // (QEMU then reopens it read-only): the same open file's inode,
      // nothing the owner did not already hand over.
      keep.push_back(read_only_twin(fd, "disk " + disk.id));
      disk.ro = place(keep.back().get());
    }
    const auto& chain = d.at("backing");
    if (!chain.is_array() || chain.size() > kMaxChain) {
      throw Error("EINVAL", "disk " + disk.id + ": backing must be a list of at most " + std::to_string(kMaxChain));
    }
    std::string above = disk.format;
    for (const auto& b : chain) {
      expect_fields(b, {"fd", "format"});
      // Only a qcow2 image has a backing file; a raw one ends the chain.
      if (above != "qcow2") throw Error("EINVAL", "disk " + disk.id + ": a " + above + " image has no backing file");
      vmm::IsolatedQemu::Backing link;
      link.format = str(b, "format");
      if (link.format != "raw" && link.format != "qcow2") throw Error("EINVAL", "backing format must be raw or qcow2");
      int bfd = claims.take(b, "fd", false);
      regular_file(bfd, "backing of " + disk.id, false);
      link.fd = place(bfd);
      disk.backing.push_back(link);
      above = link.format;
    }
    q.disks.push_back(disk);
  }
  claims.all_used();

  SandboxExec exec;
  exec.exe_fd = exe.get();
  exec.argv = vmm::isolated_argv(q);
  exec.fds = child;
  exec.output_fd = log;
  if (q.kvm) exec.groups = kvm_groups();

  std::lock_guard<std::mutex> g(launch_mu);
  // Across processes too (banger as root runs this in-process): the uid is
  // taken once the child runs as it, so the pick and the exec stay under
  // the lock.
  FileLock lock = vmm_uid_lock();
  uid_t uid = pick_vmm_uid();
  exec.uid = uid;
  exec.gid = static_cast<gid_t>(uid);
  std::optional<RamGrant> grant;
  if (memory >= 0) grant.emplace(memory, uid, "the RAM file");
  pid_t pid = sandbox_exec(exec);
  if (grant) {
    // QEMU maps its RAM while it starts, before it runs the guest (or, for
    // a restore, before anyone can say cont): the grant ends before the
    // owner hears back.
    wait_for_mapping(pid, memory, std::chrono::seconds(60));
    grant->restore();
  }
  return {{{"pid", pid}, {"uid", uid}, {"argv", exec.argv}}, UniqueFd{}};
}

Result signal_vmm(const json& p, const Caller&, Fds&) {
  expect_fields(p, {"pid", "signal"});
  long pid = integer(p, "pid");
  auto sig_name = str(p, "signal");
  int sig = sig_name == "TERM" ? SIGTERM : sig_name == "KILL" ? SIGKILL : 0;
  if (sig == 0) throw Error("EINVAL", "signal must be TERM or KILL");
  if (pid <= 1 || pid > 4194304) throw Error("EINVAL", "invalid pid " + std::to_string(pid));
  // The pidfd pins the process: if it exits and its pid is reused after the
  // check below, the signal fails with ESRCH instead of reaching the new one.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0)));
  if (!pidfd) throw Error::last("pidfd_open", "pid " + std::to_string(pid));
  launched_vmm(static_cast<pid_t>(pid));  // throws EPERM unless it is one of ours
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) != 0) {
    throw Error::last("signal", "pid " + std::to_string(pid));
  }
  return {{{"signalled", true}}, UniqueFd{}};
}

}  // namespace banger::priv
