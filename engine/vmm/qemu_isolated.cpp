#include "engine/vmm/qemu_isolated.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "engine/core/error.hpp"
#include "engine/core/unix_socket.hpp"
#include "engine/vmm/qemu.hpp"

namespace banger::vmm {
namespace {

using nlohmann::json;

std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

// A listening Unix socket at `path`, made by the owner under umask 077 (the
// runtime dir is 0700 already; the socket is 0600 from birth too).
UniqueFd listen_at(const std::string& path) {
  ::unlink(path.c_str());
  mode_t old = ::umask(077);
  UniqueFd fd;
  try {
    fd = net_unix::bind(path);
  } catch (...) {
    ::umask(old);
    throw;
  }
  ::umask(old);
  if (::listen(fd.get(), 4) != 0) throw Error::last("listen", path);
  return fd;
}

// The owner opens its own files: symlinks among them are its business. The
// logs it creates are never written through one, though.
UniqueFd open_file(const std::string& path, int flags) {
  if (flags & O_CREAT) flags |= O_NOFOLLOW;
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC, 0600));
  if (!fd) throw Error::last("open", path);
  return fd;
}

}  // namespace

std::vector<std::string> isolated_argv(const IsolatedQemu& q) {
  const std::string bus = qemu_bus(q.kvm);
  std::vector<std::string> a = qemu_machine_args(q.binary, q.name, q.kvm, q.vcpus, q.memory_mib);
  int set = 0;  // fdset ids: QEMU opens /dev/fdset/N by dup'ing the descriptor added to set N
  auto add_fd = [&](int fd) {
    a.insert(a.end(), {"-add-fd", "fd=" + std::to_string(fd) + ",set=" + std::to_string(++set)});
    return "/dev/fdset/" + std::to_string(set);
  };
  a.insert(a.end(), {"-chardev", "file,id=console,path=" + add_fd(q.console) + ",append=on", "-serial",
                     "chardev:console"});
  // -kernel and -initrd take paths; /proc/self/fd/N of a memfd is one that
  // any uid may open.
  a.insert(a.end(), {"-kernel", fd_path(q.kernel)});
  if (q.initrd >= 0) a.insert(a.end(), {"-initrd", fd_path(q.initrd)});
  if (!q.cmdline.empty()) a.insert(a.end(), {"-append", q.cmdline});
  for (const auto& d : q.disks) {
    json node = {{"driver", d.format}, {"node-name", d.id}, {"read-only", d.read_only}};
    if (d.backing >= 0) {
      a.insert(a.end(), {"-blockdev", json{{"driver", "file"}, {"filename", add_fd(d.backing)},
                                           {"node-name", d.id + "-base-file"}, {"read-only", true}}.dump(),
                         "-blockdev", json{{"driver", "raw"}, {"file", d.id + "-base-file"},
                                           {"node-name", d.id + "-base"}, {"read-only", true}}.dump()});
      node["backing"] = d.id + "-base";
    } else if (d.format == "qcow2") {
      node["backing"] = nullptr;  // never a backing file named inside the image
    }
    a.insert(a.end(), {"-blockdev", json{{"driver", "file"}, {"filename", add_fd(d.fd)},
                                         {"node-name", d.id + "-file"}, {"read-only", d.read_only}}.dump()});
    node["file"] = d.id + "-file";
    a.insert(a.end(), {"-blockdev", node.dump(), "-device", "virtio-blk-" + bus + ",drive=" + d.id});
  }
  if (q.tap >= 0) {
    a.insert(a.end(), {"-netdev", "tap,id=eth0,fd=" + std::to_string(q.tap), "-device",
                       "virtio-net-" + bus + ",netdev=eth0" + (q.mac.empty() ? "" : ",mac=" + q.mac)});
  }
  a.insert(a.end(), {"-device", "virtio-serial-" + bus, "-chardev",
                     "socket,id=agent,fd=" + std::to_string(q.agent) + ",server=on,wait=off", "-device",
                     "virtserialport,chardev=agent,name=banger.agent", "-chardev",
                     "socket,id=qmp,fd=" + std::to_string(q.qmp) + ",server=on,wait=off", "-mon",
                     "chardev=qmp,mode=control"});
  return a;
}

std::string qcow2_backing_file(int fd, const std::string& what) {
  // qcow2 header: magic "QFI\xfb", version, then backing_file_offset (be64)
  // and backing_file_size (be32).
  unsigned char h[20];
  if (::pread(fd, h, sizeof h, 0) != static_cast<ssize_t>(sizeof h) || std::memcmp(h, "QFI\xfb", 4) != 0) {
    throw Error("EINVAL", what + " is not a qcow2 image");
  }
  std::uint64_t off = 0;
  for (int i = 8; i < 16; ++i) off = (off << 8) | h[i];
  std::uint32_t size = (std::uint32_t{h[16]} << 24) | (std::uint32_t{h[17]} << 16) | (std::uint32_t{h[18]} << 8) | h[19];
  if (off == 0 || size == 0) return "";
  if (size > 1023) throw Error("EINVAL", what + ": backing file name too long");
  std::string name(size, '\0');
  if (::pread(fd, name.data(), size, static_cast<off_t>(off)) != static_cast<ssize_t>(size)) {
    throw Error("EIO", what + ": short read of the backing file name");
  }
  return name;
}

IsolatedRequest isolated_request(const VmSpec& spec, bool kvm) {
  if (spec.kernel.empty()) throw Error("EINVAL", "qemu: no kernel given");
  IsolatedRequest r;
  auto add = [&](UniqueFd fd) {
    r.fds.push_back(std::move(fd));
    return static_cast<int>(r.fds.size() - 1);
  };
  QemuLayout lay = qemu_layout(spec);
  json& p = r.params;
  p = {{"name", spec.name}, {"vcpus", spec.vcpus}, {"memory_mib", spec.memory_mib}, {"accel", kvm ? "kvm" : "tcg"},
       {"binary", spec.binary.empty() ? "/usr/bin/qemu-system-x86_64" : spec.binary}, {"cmdline", spec.cmdline},
       {"mac", ""}, {"tap", -1}, {"initrd", -1}};
  p["kernel"] = add(open_file(spec.kernel, O_RDONLY));
  if (!spec.initrd.empty()) p["initrd"] = add(open_file(spec.initrd, O_RDONLY));
  p["qmp"] = add(listen_at(lay.qmp_socket));
  p["agent"] = add(listen_at(lay.agent_socket));
  if (spec.console_log.empty()) throw Error("EINVAL", "qemu: an isolated VM needs a console log");
  p["console"] = add(open_file(spec.console_log, O_WRONLY | O_CREAT | O_APPEND));
  p["log"] = add(open_file(lay.log, O_WRONLY | O_CREAT | O_TRUNC));
  p["disks"] = json::array();
  for (const DiskSpec& d : spec.disks) {
    UniqueFd fd = open_file(d.path, d.read_only ? O_RDONLY : O_RDWR);
    json disk = {{"id", d.id}, {"format", d.format}, {"read_only", d.read_only}, {"backing", -1}};
    if (d.format == "qcow2") {
      // banger's overlays name a raw base (create_qcow2_overlay); QEMU
      // resolves a relative name against the overlay's directory.
      std::filesystem::path base = qcow2_backing_file(fd.get(), d.path);
      if (!base.empty() && base.is_relative()) base = std::filesystem::path(d.path).parent_path() / base;
      if (!base.empty()) disk["backing"] = add(open_file(base.string(), O_RDONLY));
    }
    disk["fd"] = add(std::move(fd));
    p["disks"].push_back(disk);
  }
  if (spec.nics.size() > 1) throw Error("ENOTSUP", "an isolated VM has at most one NIC");
  for (const NicSpec& n : spec.nics) {
    if (n.tap_fd < 0) throw Error("EINVAL", "an isolated VM's NIC needs an open tap queue");
    UniqueFd dup(::fcntl(n.tap_fd, F_DUPFD_CLOEXEC, 3));
    if (!dup) throw Error::last("dup", "tap queue");
    p["tap"] = add(std::move(dup));
    p["mac"] = n.mac;
  }
  return r;
}

Handles isolated_handles(const VmSpec& spec, pid_t pid, std::vector<std::string> argv) {
  QemuLayout lay = qemu_layout(spec);
  Handles h;
  h.driver = "qemu";
  h.pid = pid;
  h.cmdline = std::move(argv);
  h.control_socket = lay.qmp_socket;
  h.agent = spec.agent;
  h.agent.kind = AgentTransport::Kind::serial_socket;
  h.agent.path = lay.agent_socket;
  h.launcher = "helper";
  return h;
}

Handles adopt_isolated(const VmSpec& spec, pid_t pid, std::vector<std::string> argv, const StageFn& stage) {
  Handles h = isolated_handles(spec, pid, std::move(argv));
  wait_for_qmp(qemu_layout(spec), [&] { return alive(h); }, stage, pid);
  return h;
}

}  // namespace banger::vmm
