#include "engine/vmm/qemu_migration.hpp"

#include <fcntl.h>

#include <thread>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"
#include "engine/vmm/qemu.hpp"

namespace banger::vmm {

using namespace std::chrono_literals;
using nlohmann::json;

void set_ignore_shared(Qmp& qmp, bool on) {
  qmp.execute("migrate-set-capabilities",
              {{"capabilities", json::array({{{"capability", "x-ignore-shared"}, {"state", on}}})}});
}

json wait_for_migration(Qmp& qmp, std::chrono::milliseconds timeout, const std::string& what) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    json m = qmp.execute("query-migrate");
    std::string status = m.value("status", "");
    if (status == "completed") return m;
    if (status == "failed" || status == "cancelled") {
      throw Error("EHYPERVISOR", what + " failed: " + m.value("error-desc", status));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw Error("ETIMEDOUT", what + " did not finish in time (status " + status + ")");
    }
    cancel::check();
    // The device state alone takes milliseconds: poll finely.
    std::this_thread::sleep_for(1ms);
  }
}

void restore_incoming(const Handles& h, const RestoreSpec& restore, const std::string& log, const StageFn& stage) {
  if (restore.ram != "file" && restore.ram != "stream") {
    throw Error("EINVAL", "restore: ram must be \"file\" or \"stream\", not \"" + restore.ram + "\"");
  }
  UniqueFd state(::open(restore.state.c_str(), O_RDONLY | O_CLOEXEC));
  if (!state) throw Error::last("open", restore.state);
  if (stage) stage("restore", restore.state);
  try {
    Qmp qmp(h.control_socket, 10s);
    // A stream of a whole guest's RAM takes seconds under load.
    qmp.set_timeout(120s);
    set_ignore_shared(qmp, restore.ram == "file");
    qmp.execute("getfd", {{"fdname", "banger-restore"}}, {state.get()});
    qmp.execute("migrate-incoming", {{"uri", "fd:banger-restore"}});
    wait_for_migration(qmp, 300s, "loading the state");
    std::string status = qmp.execute("query-status").value("status", "");
    if (status != "paused") throw Error("EHYPERVISOR", "restore: the VM is " + status + ", not paused");
  } catch (const Error& e) {
    // QEMU exits when a stream does not load: its log says why.
    bool gone = e.code() == "ECONNRESET" || e.code() == "EPIPE" || e.code() == "EPROTO";
    std::string tail = qemu_log_tail(log);
    throw Error(gone ? "EHYPERVISOR" : e.code(), "restore of " + restore.state + " failed: " + e.what() +
                                                     (tail.empty() ? "" : ": " + tail));
  }
}

}  // namespace banger::vmm
