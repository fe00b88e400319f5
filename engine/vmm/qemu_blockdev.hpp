#pragma once
// Block nodes added to a running QEMU from descriptors (snapshot overlays,
// hot-plugged disks): the helpers both share.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "engine/core/unique_fd.hpp"
#include "engine/vmm/qmp.hpp"

namespace banger::vmm {

// The same file opened read-only, through the descriptor (not its path).
UniqueFd reopen_read_only(int fd, const std::string& what);

// What an fdset's opaque says about the file: its path when added and
// its identity (device and inode), so the file can be found again after a
// rename ("path|dev:ino").
std::string file_opaque(int fd, const std::string& path);
// The file's name now: the path it was added with if that is still the
// same file, else the entry of that directory that is (the caller renamed
// it), else "<path> (deleted)".
std::string current_name(const std::string& opaque);

// A new fdset holding `fds` (add-fd each, `opaque` naming the file);
// returns its id. QEMU picks from a set the descriptor whose access mode
// matches the open it does, and reopens a node read-only when it becomes a
// backing file: a writable node's set needs a read-only twin.
int add_fdset(Qmp& qmp, const std::vector<int>& fds, const std::string& opaque);
void remove_fdset(Qmp& qmp, int id) noexcept;
inline std::string fdset_path(int id) { return "/dev/fdset/" + std::to_string(id); }

// A format node over a file node reading /dev/fdset/`set`; `backing` is a
// node name, or null for none.
nlohmann::json fdset_node(const std::string& node, const std::string& format, int set, bool read_only,
                          const nlohmann::json& backing);

// The disk id behind a query-block entry: its BlockBackend name (-drive
// id=), else the device id of the virtio-blk device holding it
// ("/machine/peripheral/<id>/virtio-backend"); "" when it has neither.
std::string block_disk_id(const nlohmann::json& entry);

// Throws EINVAL unless `id` is a disk/node id banger uses: [a-z0-9-], 1..16, starting with a letter.
void check_disk_id(const std::string& id);

}  // namespace banger::vmm
