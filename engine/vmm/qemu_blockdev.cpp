#include "engine/vmm/qemu_blockdev.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>

#include "engine/core/error.hpp"

namespace banger::vmm {

using nlohmann::json;

UniqueFd reopen_read_only(int fd, const std::string& what) {
  UniqueFd ro(::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC));
  if (!ro) throw Error::last("reopen read-only", what);
  return ro;
}

std::string file_opaque(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error::last("fstat", path);
  return path + "|" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

std::string current_name(const std::string& opaque) {
  size_t bar = opaque.rfind('|');
  if (bar == std::string::npos) return opaque;
  std::string path = opaque.substr(0, bar), id = opaque.substr(bar + 1);
  auto same = [&](const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) == id;
  };
  if (same(path)) return path;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path(), ec)) {
    if (same(e.path().string())) return e.path().string();
  }
  return path + " (deleted)";
}

int add_fdset(Qmp& qmp, const std::vector<int>& fds, const std::string& opaque) {
  int set = -1;
  try {
    for (int fd : fds) {
      json args = {{"opaque", opaque}};
      if (set >= 0) args["fdset-id"] = set;
      json r = qmp.execute("add-fd", args, {fd});
      set = r.at("fdset-id").get<int>();
    }
  } catch (...) {
    if (set >= 0) remove_fdset(qmp, set);
    throw;
  }
  return set;
}

void remove_fdset(Qmp& qmp, int id) noexcept {
  try {
    qmp.execute("remove-fd", {{"fdset-id", id}});
  } catch (const std::exception&) {
    // best effort: the set goes with QEMU
  }
}

json fdset_node(const std::string& node, const std::string& format, int set, bool read_only, const json& backing) {
  json n = {{"driver", format},
            {"node-name", node},
            {"read-only", read_only},
            {"file", {{"driver", "file"}, {"filename", fdset_path(set)}, {"read-only", read_only}}}};
  if (format == "qcow2") n["backing"] = backing;
  return n;
}

std::string block_disk_id(const json& entry) {
  std::string dev = entry.value("device", "");
  if (!dev.empty()) return dev;
  std::string qdev = entry.value("qdev", "");
  const std::string peripheral = "/machine/peripheral/";
  if (qdev.rfind(peripheral, 0) == 0) {
    std::string rest = qdev.substr(peripheral.size());
    return rest.substr(0, rest.find('/'));
  }
  return qdev.find('/') == std::string::npos ? qdev : "";
}

void check_disk_id(const std::string& id) {
  bool ok = !id.empty() && id.size() <= 16 && id[0] >= 'a' && id[0] <= 'z';
  for (char c : id) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
  if (!ok) throw Error("EINVAL", "invalid disk id '" + id + "': 1..16 of [a-z0-9-], starting with a letter");
}

}  // namespace banger::vmm
