#include "engine/vmm/qemu.hpp"

#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <thread>

#include "engine/core/error.hpp"
#include "engine/core/read_file.hpp"
#include "engine/core/process.hpp"
#include "engine/core/unix_socket.hpp"
#include "engine/vmm/host_caps.hpp"
#include "engine/vmm/qemu_migration.hpp"
#include "engine/vmm/qmp.hpp"

namespace banger::vmm {
namespace {

using namespace std::chrono_literals;
constexpr auto kQmpTimeout = 10s;

}  // namespace

std::string qemu_log_tail(const std::string& path, size_t max) {
  std::string s;
  try {
    s = read_file(path);
  } catch (const Error&) {
    return "";  // no log yet: nothing to quote
  }
  if (s.size() > max) s = "..." + s.substr(s.size() - max);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

namespace {

bool resolve_kvm(const std::string& accel) {
  if (accel == "kvm") return true;
  if (accel == "tcg") return false;
  return detect_host().kvm_usable();
}

class QemuDriver final : public Driver {
 public:
  std::string name() const override { return "qemu"; }

  Handles launch(const VmSpec& spec, const StageFn& stage) override {
    const bool kvm = resolve_kvm(spec.accel);
    QemuLayout lay = qemu_layout(spec);
    // QEMU would create a missing private RAM file (in a snapshot's
    // directory, say): a restore maps one that exists, or none.
    if (!spec.memory_file.empty() && !spec.memory_shared && !std::filesystem::exists(spec.memory_file)) {
      throw Error("ENOENT", "qemu: the RAM file " + spec.memory_file +
                                " does not exist (a snapshot whose RAM is in its stream has none: give no memory_file)");
    }
    for (const auto& stale : {lay.qmp_socket, lay.agent_socket, lay.forward_socket}) ::unlink(stale.c_str());

    process::SpawnOptions opts;
    opts.argv = qemu_argv(spec, kvm);
    for (const NicSpec& n : spec.nics) {
      if (n.tap_fd >= 0) opts.pass_fds.push_back(n.tap_fd);
    }
    opts.new_session = true;  // the VM outlives this CLI
    opts.umask = 077;         // sockets are 0600 from birth
    opts.in = process::Stdio::null();
    opts.out = process::Stdio::file(lay.log, false);
    opts.err = process::Stdio::file(lay.log, true);
    if (stage) stage("launch", kvm ? "qemu -M microvm (kvm)" : "qemu -M pc (tcg)");
    process::Child child = process::spawn(opts);

    Handles h;
    h.driver = name();
    h.pid = child.pid();
    h.cmdline = opts.argv;
    h.control_socket = lay.qmp_socket;
    h.agent = spec.agent;
    h.agent.kind = AgentTransport::Kind::serial_socket;
    h.agent.path = lay.agent_socket;
    h.memory_file = spec.memory_file;
    h.memory_shared = !spec.memory_file.empty() && spec.memory_shared;
    try {
      wait_for_qmp(lay, [&] { return !child.try_wait().has_value(); }, stage, h.pid);
      if (spec.restore.active()) restore_incoming(h, spec.restore, lay.log, stage);
    } catch (...) {
      child.kill(SIGKILL);
      child.wait(5s);
      throw;
    }
    return h;
  }

  RunState status(const Handles& h) override {
    if (!alive(h)) return RunState::stopped;
    try {
      Qmp qmp(h.control_socket, 2s);
      std::string s = qmp.execute("query-status").value("status", "");
      if (s == "running") return RunState::running;
      // postmigrate: a snapshot was written (vmm.snapshot leaves it so);
      // inmigrate: a restore waits for its state.
      if (s == "paused" || s == "suspended" || s == "prelaunch" || s == "postmigrate" || s == "inmigrate") {
        return RunState::paused;
      }
      if (s == "shutdown" || s == "guest-panicked" || s == "internal-error") return RunState::stopped;
      return RunState::unknown;
    } catch (const Error&) {
      return alive(h) ? RunState::unknown : RunState::stopped;
    }
  }

  bool shutdown(const Handles& h, std::chrono::milliseconds grace) override {
    if (!alive(h)) return true;
    auto deadline = std::chrono::steady_clock::now() + grace;
    try {
      Qmp qmp(h.control_socket, 2s);
      // ACPI power button for guests that listen (systemd), Ctrl-Alt-Del for
      // the rest (busybox init, banger's init); with -no-reboot a guest
      // reboot also ends QEMU.
      qmp.execute("system_powerdown");
      qmp.execute("send-key", {{"keys", {{{"type", "qcode"}, {"data", "ctrl"}},
                                         {{"type", "qcode"}, {"data", "alt"}},
                                         {{"type", "qcode"}, {"data", "delete"}}}}});
    } catch (const Error&) {
      // The process may be exiting already; the wait below decides.
    }
    while (std::chrono::steady_clock::now() < deadline) {
      if (!alive(h)) return true;
      std::this_thread::sleep_for(50ms);
    }
    try {
      Qmp qmp(h.control_socket, 1s);
      qmp.execute("quit");
    } catch (const Error&) {
    }
    for (int i = 0; i < 40 && alive(h); ++i) std::this_thread::sleep_for(50ms);
    // A QEMU the root helper launched runs as a uid of its own: only the
    // helper may signal it, and the caller asks it (Handles::launcher).
    if (h.launcher.empty()) kill(h);
    return false;
  }

  void pause(const Handles& h) override { Qmp(h.control_socket, 5s).execute("stop"); }
  void resume(const Handles& h) override { Qmp(h.control_socket, 5s).execute("cont"); }
};

}  // namespace

void wait_for_qmp(const QemuLayout& lay, const std::function<bool()>& running, const StageFn& stage, pid_t pid) {
  // QEMU answers QMP after parsing its arguments and loading the kernel; a
  // bad argument or a missing file makes it exit instead.
  auto deadline = std::chrono::steady_clock::now() + kQmpTimeout;
  for (;;) {
    if (!running()) throw Error("EHYPERVISOR", "qemu exited during start: " + qemu_log_tail(lay.log));
    try {
      Qmp qmp(lay.qmp_socket, 200ms);
      std::string status = qmp.execute("query-status").value("status", "");
      if (stage) stage("started", "qemu pid " + std::to_string(pid) + ", " + status);
      return;
    } catch (const Error&) {
      if (std::chrono::steady_clock::now() > deadline)
        throw Error("ETIMEDOUT", "qemu did not answer on its control socket in time: " + qemu_log_tail(lay.log));
    }
    std::this_thread::sleep_for(20ms);
  }
}

std::vector<std::string> qemu_machine_args(const std::string& binary, const std::string& name, bool kvm, int vcpus,
                                           int memory_mib, const MemoryBackend& memory) {
  std::vector<std::string> a = {binary.empty() ? "qemu-system-x86_64" : binary, "-name", "banger-" + name};
  // The backend is named pc.ram, the name of the RAM block a plain -m VM
  // has on -M pc: a state saved either way loads into both.
  std::string backend = memory.path.empty() ? "" : ",memory-backend=pc.ram";
  if (kvm) {
    a.insert(a.end(), {"-M", "microvm,x-option-roms=off,pit=off,pic=off,isa-serial=on,rtc=on" + backend, "-accel",
                       "kvm", "-cpu", "host"});
  } else {
    a.insert(a.end(), {"-M", "pc" + backend, "-accel", "tcg"});
  }
  a.insert(a.end(), {"-smp", std::to_string(vcpus), "-m", std::to_string(memory_mib)});
  if (!memory.path.empty()) {
    if (memory.path.find(',') != std::string::npos) throw Error("EINVAL", "qemu: RAM file path contains a comma: " + memory.path);
    a.insert(a.end(), {"-object", "memory-backend-file,id=pc.ram,size=" + std::to_string(memory_mib) + "M,mem-path=" +
                                      memory.path + ",share=" + (memory.shared ? "on" : "off")});
  }
  a.insert(a.end(), {"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-sandbox",
                     "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"});
  return a;
}

void check_generation(const std::string& s) {
  bool ok = s.size() == 36;
  for (size_t i = 0; ok && i < s.size(); ++i) {
    char c = s[i];
    ok = (i == 8 || i == 13 || i == 18 || i == 23) ? c == '-' : std::isxdigit(static_cast<unsigned char>(c)) != 0;
  }
  if (!ok) throw Error("EINVAL", "invalid VM generation '" + s + "': expected a UUID (8-4-4-4-12 hex digits)");
}

void qemu_tail_args(std::vector<std::string>& a, bool kvm, const std::string& generation, bool incoming) {
  // vmgenid needs ACPI and fw_cfg DMA, which microvm lacks.
  if (!generation.empty() && !kvm) {
    check_generation(generation);
    a.insert(a.end(), {"-device", "vmgenid,guid=" + generation});
  }
  // -S: whatever run state the stream carries, the restored VM stays
  // paused until the caller has attached what it adds and says cont.
  if (incoming) a.insert(a.end(), {"-S", "-incoming", "defer"});
}

namespace {
// ",serial=..." for -device: at most 20 bytes (VIRTIO_BLK_ID_BYTES) of a
// character set that cannot end the option or start another.
std::string disk_serial_arg(const DiskSpec& d) {
  if (d.serial.empty()) return "";
  bool ok = d.serial.size() <= 20;
  for (char c : d.serial) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
  if (!ok) throw Error("EINVAL", "qemu: disk serial '" + d.serial + "' must be 1 to 20 letters, digits, '.', '_' or '-'");
  return ",serial=" + d.serial;
}
}  // namespace

QemuLayout qemu_layout(const VmSpec& spec) {
  return {spec.runtime_dir + "/qmp.sock", spec.runtime_dir + "/agent.sock", spec.runtime_dir + "/forward.sock",
          spec.vm_dir + "/qemu.log"};
}

std::vector<std::string> qemu_argv(const VmSpec& spec, bool kvm) {
  if (spec.kernel.empty()) throw Error("EINVAL", "qemu: no kernel given");
  QemuLayout lay = qemu_layout(spec);
  const std::string bus = qemu_bus(kvm);
  std::vector<std::string> a = qemu_machine_args(spec.binary, spec.name, kvm, spec.vcpus, spec.memory_mib,
                                                 {spec.memory_file, spec.memory_shared});
  if (!spec.console_log.empty()) {
    a.insert(a.end(), {"-chardev", "file,id=console,path=" + spec.console_log + ",append=on", "-serial",
                       "chardev:console"});
  }
  a.insert(a.end(), {"-kernel", spec.kernel});
  if (!spec.initrd.empty()) a.insert(a.end(), {"-initrd", spec.initrd});
  if (!spec.cmdline.empty()) a.insert(a.end(), {"-append", spec.cmdline});
  for (const DiskSpec& d : spec.disks) {
    if (d.path.find(',') != std::string::npos) throw Error("EINVAL", "qemu: disk path contains a comma: " + d.path);
    std::string drive = "file=" + d.path + ",format=" + d.format + ",if=none,id=" + d.id + ",cache=writeback";
    if (d.read_only) drive += ",readonly=on";
    a.insert(a.end(), {"-drive", drive, "-device", "virtio-blk-" + bus + ",drive=" + d.id + disk_serial_arg(d)});
  }
  int passed = 0;  // descriptors handed over become fds 3, 4, ... (launch passes them in NIC order)
  for (const NicSpec& n : spec.nics) {
    std::string backend = n.tap_fd >= 0 ? "tap,id=" + n.id + ",fd=" + std::to_string(3 + passed++)
                                        : "tap,id=" + n.id + ",ifname=" + n.tap + ",script=no,downscript=no";
    a.insert(a.end(), {"-netdev", backend, "-device",
                       "virtio-net-" + bus + ",netdev=" + n.id + (n.mac.empty() ? "" : ",mac=" + n.mac)});
  }
  a.insert(a.end(), {"-device", "virtio-serial-" + bus, "-chardev",
                     "socket,id=agent,path=" + lay.agent_socket + ",server=on,wait=off", "-device",
                     "virtserialport,chardev=agent,name=banger.agent", "-chardev",
                     "socket,id=forward,path=" + lay.forward_socket + ",server=on,wait=off", "-device",
                     "virtserialport,chardev=forward,name=banger.forward", "-qmp",
                     "unix:" + lay.qmp_socket + ",server=on,wait=off"});
  qemu_tail_args(a, kvm, spec.generation, spec.restore.active());
  return a;
}

std::unique_ptr<Driver> make_qemu_driver() { return std::make_unique<QemuDriver>(); }

namespace {
// One connection attempt: false when nothing listens (no file, or refused).
bool listening(const std::string& path) {
  try {
    net_unix::connect(path, 0ms);  // closed at once: only the answer counts
    return true;
  } catch (const Error& e) {
    if (e.code() == "ENOENT" || e.code() == "ECONNREFUSED") return false;
    throw;
  }
}
}  // namespace

bool qmp_quit(const std::string& qmp_socket, std::chrono::milliseconds timeout) {
  if (!listening(qmp_socket)) return false;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  try {
    Qmp qmp(qmp_socket, timeout);
    qmp.execute("quit");
  } catch (const Error& e) {
    // QEMU may close the connection while quitting; the wait below decides.
    if (e.code() == "ETIMEDOUT" && listening(qmp_socket)) throw;
  }
  while (listening(qmp_socket)) {
    if (std::chrono::steady_clock::now() > deadline)
      throw Error("ETIMEDOUT", "the QEMU on " + qmp_socket + " did not quit in time");
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

}  // namespace banger::vmm
