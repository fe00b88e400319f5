// vmm.hotplug_disk for QEMU (engine/vmm/qemu_snapshot.hpp).
#include <fcntl.h>

#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"
#include "engine/vmm/qcow2_chain.hpp"
#include "engine/vmm/qemu_blockdev.hpp"
#include "engine/vmm/qemu_snapshot.hpp"
#include "engine/vmm/qmp.hpp"

namespace banger::vmm {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

void check_serial(const std::string& s) {
  // virtio-blk serials are at most 20 bytes; a comma would end the property.
  bool ok = !s.empty() && s.size() <= 20;
  for (unsigned char c : s) ok = ok && c > 0x20 && c < 0x7f && c != ',';
  if (!ok) throw Error("EINVAL", "invalid disk serial '" + s + "': 1..20 printable characters, no comma or space");
}

}  // namespace

void qemu_hotplug_disk(const Handles& h, const HotplugDisk& d) {
  check_disk_id(d.id);
  check_serial(d.serial);
  if (d.format != "raw" && d.format != "qcow2") throw Error("EINVAL", "hotplug: format must be raw or qcow2");
  Qmp qmp(h.control_socket, 10s);
  std::string machine = qmp.execute("qom-get", {{"path", "/machine"}, {"property", "type"}}).get<std::string>();
  if (machine.rfind("microvm", 0) == 0) {
    throw Error("ENOTSUP", "disk hot-plug needs -M pc: microvm has no hot-pluggable bus");
  }
  UniqueFd top(::open(d.path.c_str(), (d.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  if (!top) throw Error::last("open", d.path);
  std::vector<ChainLink> chain = open_backing_chain(top.get(), d.path, d.format);

  std::vector<int> sets;
  std::vector<std::string> nodes;
  try {
    // Bottom up: each node's backing exists before the node naming it.
    json backing = nullptr;
    for (size_t i = chain.size(); i-- > 0;) {
      std::string node = d.id + "-b" + std::to_string(i + 1);
      sets.push_back(add_fdset(qmp, {chain[i].fd.get()}, file_opaque(chain[i].fd.get(), chain[i].path)));
      qmp.execute("blockdev-add", fdset_node(node, chain[i].format, sets.back(), true, backing));
      nodes.push_back(node);
      backing = node;
    }
    UniqueFd ro;
    std::vector<int> fds = {top.get()};
    if (!d.read_only) {
      ro = reopen_read_only(top.get(), d.path);  // for when a snapshot makes it a backing file
      fds.push_back(ro.get());
    }
    sets.push_back(add_fdset(qmp, fds, file_opaque(top.get(), d.path)));
    qmp.execute("blockdev-add", fdset_node(d.id, d.format, sets.back(), d.read_only, backing));
    nodes.push_back(d.id);
    qmp.execute("device_add", {{"driver", "virtio-blk-pci"}, {"drive", d.id}, {"id", d.id}, {"serial", d.serial}});
  } catch (...) {
    for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
      try {
        qmp.execute("blockdev-del", {{"node-name", *it}});
      } catch (const Error&) {
      }
    }
    for (int s : sets) remove_fdset(qmp, s);
    throw;
  }
}

}  // namespace banger::vmm
