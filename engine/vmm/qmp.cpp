#include "engine/vmm/qmp.hpp"

#include <unistd.h>

#include "engine/core/error.hpp"
#include "engine/core/unix_socket.hpp"

namespace banger::vmm {

Qmp::Qmp(const std::string& socket_path, std::chrono::milliseconds timeout) : path_(socket_path), timeout_(timeout) {
  fd_ = net_unix::connect(socket_path, timeout);
  greeting_ = read_message();
  if (!greeting_.contains("QMP")) throw Error("EPROTO", "not a QMP greeting on " + path_);
  execute("qmp_capabilities");
}

Qmp::~Qmp() = default;

nlohmann::json Qmp::read_message() {
  auto deadline = std::chrono::steady_clock::now() + timeout_;
  std::string line = net_unix::read_line(fd_.get(), buffer_, deadline, "QMP " + path_);
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error("EPROTO", "malformed QMP message from " + path_);
  return j;
}

nlohmann::json Qmp::execute(const std::string& command, const nlohmann::json& args, const std::vector<int>& fds) {
  nlohmann::json req = {{"execute", command}};
  if (!args.is_null()) req["arguments"] = args;
  net_unix::write_all_with_fds(fd_.get(), req.dump() + "\n", fds, "QMP " + path_);
  for (;;) {
    nlohmann::json msg = read_message();
    if (msg.contains("event")) {
      events_.push_back(std::move(msg));
      continue;
    }
    if (msg.contains("error")) {
      std::string desc = msg["error"].value("desc", "unknown error");
      throw Error("EHYPERVISOR", "qemu: " + command + ": " + desc);
    }
    if (msg.contains("return")) return msg["return"];
  }
}

}  // namespace banger::vmm
