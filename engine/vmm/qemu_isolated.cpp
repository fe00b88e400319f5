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
#include "engine/vmm/qcow2_chain.hpp"
#include "engine/vmm/qemu.hpp"
#include "engine/vmm/qemu_migration.hpp"
#include "engine/vmm/ram_file.hpp"

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
  std::vector<std::string> a = qemu_machine_args(
      q.binary, q.name, q.kvm, q.vcpus, q.memory_mib,
      q.memory >= 0 ? MemoryBackend{fd_path(q.memory), true} : MemoryBackend{});
  int set = 0;  // fdset ids: QEMU opens /dev/fdset/N by dup'ing a descriptor of set N with the access mode it wants
  auto add_fds = [&](std::initializer_list<int> fds) {
    ++set;
    for (int fd : fds) {
      if (fd >= 0) a.insert(a.end(), {"-add-fd", "fd=" + std::to_string(fd) + ",set=" + std::to_string(set)});
    }
    return "/dev/fdset/" + std::to_string(set);
  };
  a.insert(a.end(), {"-chardev", "file,id=console,path=" + add_fds({q.console}) + ",append=on", "-serial",
                     "chardev:console"});
  // -kernel and -initrd take paths; /proc/self/fd/N of a memfd is one that
  // any uid may open.
  a.insert(a.end(), {"-kernel", fd_path(q.kernel)});
  if (q.initrd >= 0) a.insert(a.end(), {"-initrd", fd_path(q.initrd)});
  if (!q.cmdline.empty()) a.insert(a.end(), {"-append", q.cmdline});
  for (const auto& d : q.disks) {
    // The backing chain as explicit nodes, bottom up: QEMU follows no name
    // written inside an image.
    json backing = nullptr;
    for (size_t i = d.backing.size(); i-- > 0;) {
      std::string node = d.id + "-b" + std::to_string(i + 1);
      a.insert(a.end(), {"-blockdev", json{{"driver", "file"}, {"filename", add_fds({d.backing[i].fd})},
                                           {"node-name", node + "-file"}, {"read-only", true}}.dump()});
      json fmt = {{"driver", d.backing[i].format}, {"file", node + "-file"}, {"node-name", node}, {"read-only", true}};
      if (d.backing[i].format == "qcow2") fmt["backing"] = backing;
      a.insert(a.end(), {"-blockdev", fmt.dump()});
      backing = node;
    }
    json node = {{"driver", d.format}, {"node-name", d.id}, {"read-only", d.read_only}};
    if (d.format == "qcow2") node["backing"] = backing;  // null: never a backing file named inside the image
    a.insert(a.end(), {"-blockdev", json{{"driver", "file"}, {"filename", add_fds({d.fd, d.ro})},
                                         {"node-name", d.id + "-file"}, {"read-only", d.read_only}}.dump()});
    node["file"] = d.id + "-file";
    // id=: query-block names the disk by its device (crash recovery, snapshots).
    a.insert(a.end(), {"-blockdev", node.dump(), "-device", "virtio-blk-" + bus + ",drive=" + d.id + ",id=" + d.id});
  }
  if (q.tap >= 0) {
    a.insert(a.end(), {"-netdev", "tap,id=eth0,fd=" + std::to_string(q.tap), "-device",
                       "virtio-net-" + bus + ",netdev=eth0" + (q.mac.empty() ? "" : ",mac=" + q.mac)});
  }
  a.insert(a.end(), {"-device", "virtio-serial-" + bus, "-chardev",
                     "socket,id=agent,fd=" + std::to_string(q.agent) + ",server=on,wait=off", "-device",
                     "virtserialport,chardev=agent,name=banger.agent", "-chardev",
                     "socket,id=forward,fd=" + std::to_string(q.forward) + ",server=on,wait=off", "-device",
                     "virtserialport,chardev=forward,name=banger.forward", "-chardev",
                     "socket,id=qmp,fd=" + std::to_string(q.qmp) + ",server=on,wait=off", "-mon",
                     "chardev=qmp,mode=control"});
  qemu_tail_args(a, q.kvm, q.generation, q.incoming);
  return a;
}

std::string isolated_memory_file(const VmSpec& spec) {
  if (spec.memory_file.empty() || spec.memory_shared) return spec.memory_file;
  return spec.vm_dir + "/ram";
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
       {"mac", ""}, {"tap", -1}, {"initrd", -1}, {"memory", -1}, {"generation", spec.generation},
       {"incoming", spec.restore.active()}};
  p["kernel"] = add(open_file(spec.kernel, O_RDONLY));
  if (!spec.initrd.empty()) p["initrd"] = add(open_file(spec.initrd, O_RDONLY));
  p["qmp"] = add(listen_at(lay.qmp_socket));
  p["agent"] = add(listen_at(lay.agent_socket));
  p["forward"] = add(listen_at(lay.forward_socket));
  if (spec.console_log.empty()) throw Error("EINVAL", "qemu: an isolated VM needs a console log");
  p["console"] = add(open_file(spec.console_log, O_WRONLY | O_CREAT | O_APPEND));
  p["log"] = add(open_file(lay.log, O_WRONLY | O_CREAT | O_TRUNC));
  if (!spec.memory_file.empty()) {
    const std::uint64_t bytes = static_cast<std::uint64_t>(spec.memory_mib) << 20;
    std::string own = isolated_memory_file(spec);
    UniqueFd ram;
    if (own == spec.memory_file) {
      ram = create_ram_file(own, bytes);  // a cold boot: empty, sparse
    } else {
      // A restore: the snapshot's RAM data, copied into a file of its own.
      UniqueFd src = open_file(spec.memory_file, O_RDONLY);
      ram = create_ram_file(own, 0);
      copy_data_extents(src.get(), ram.get(), spec.memory_file + " -> " + own);
      struct stat st {};
      if (::fstat(ram.get(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) != bytes) {
        throw Error("EINVAL", spec.memory_file + " is not " + std::to_string(spec.memory_mib) + " MiB of RAM");
      }
    }
    p["memory"] = add(std::move(ram));
  }
  p["disks"] = json::array();
  for (const DiskSpec& d : spec.disks) {
    UniqueFd fd = open_file(d.path, d.read_only ? O_RDONLY : O_RDWR);
    json disk = {{"id", d.id}, {"format", d.format}, {"read_only", d.read_only}, {"backing", json::array()}};
    // The chain the overlay's header names (a snapshot's layers, the
    // image), opened here: the helper and QEMU open nothing by path.
    for (ChainLink& link : open_backing_chain(fd.get(), d.path, d.format)) {
      disk["backing"].push_back({{"fd", add(std::move(link.fd))}, {"format", link.format}});
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
  h.memory_file = isolated_memory_file(spec);
  h.memory_shared = !h.memory_file.empty();
  return h;
}

Handles adopt_isolated(const VmSpec& spec, pid_t pid, std::vector<std::string> argv, const StageFn& stage) {
  Handles h = isolated_handles(spec, pid, std::move(argv));
  wait_for_qmp(qemu_layout(spec), [&] { return alive(h); }, stage, pid);
  if (spec.restore.active()) restore_incoming(h, spec.restore, qemu_layout(spec).log, stage);
  return h;
}

}  // namespace banger::vmm
