// Snapshots and restores of isolated QEMUs (launch_vmm, in-process as root:
// the entry point the helper serves): RAM in a file the VMM uid is lent by
// an ACL entry only until QEMU has it mapped, a restored VM's backing chain
// opened by the owner and passed down, the state and overlays passed on
// QMP; and the new gates, each tried with its attack.
#include <catch2/catch.hpp>

#include <acl/libacl.h>
#include <fcntl.h>
#include <sys/acl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/core/read_file.hpp"
#include "engine/core/sha256.hpp"
#include "engine/priv/ops.hpp"
#include "engine/priv/vmm_uids.hpp"
#include "engine/vmm/qemu.hpp"
#include "engine/vmm/qemu_isolated.hpp"
#include "engine/vmm/qemu_snapshot.hpp"
#include "engine/vmm/qmp.hpp"
#include "test_util.hpp"

using namespace banger;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

void run_ok(std::vector<std::string> argv) {
  process::SpawnOptions o;
  o.argv = std::move(argv);
  o.out = process::Stdio::pipe();
  o.err = process::Stdio::pipe();
  auto r = process::run(o);
  INFO(o.argv[0] << ": " << r.err);
  REQUIRE(r.status.shell_code() == 0);
}

std::vector<long> ticks(const std::string& console) {
  std::ifstream f(console);
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<long> out;
  size_t pos = 0;
  while ((pos = text.find("tick ", pos)) != std::string::npos) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;
    out.push_back(std::stol(text.substr(pos + 5, nl - pos - 5), nullptr, 16));
    pos = nl;
  }
  return out;
}

bool wait_for(const std::function<bool()>& pred, std::chrono::seconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

long uid_of(pid_t pid) {
  std::string s = read_file("/proc/" + std::to_string(pid) + "/status");
  return std::strtol(s.c_str() + s.find("\nUid:") + 5, nullptr, 10);
}

// Whether the file's ACL is nothing but its mode bits (no entry lent to anyone).
bool minimal_acl(const std::string& path) {
  acl_t acl = acl_get_file(path.c_str(), ACL_TYPE_ACCESS);
  REQUIRE(acl);
  bool minimal = acl_equiv_mode(acl, nullptr) == 0;
  acl_free(acl);
  return minimal;
}

std::string launch_error(json params, priv::Fds fds) {
  return test::error_code_of([&] { priv::execute("launch_vmm", params, {0, 0}, std::move(fds)); });
}

// An isolated VM's dir: the counting kernel, disks, RAM in <dir>/ram.
struct Vm {
  test::TempDir t;
  vmm::VmSpec spec;
  Vm(const std::string& name, const std::string& kernel) {
    ::chmod(t.path().c_str(), 0700);
    spec.id = "0123456789ab";
    spec.name = name;
    spec.memory_mib = 64;
    spec.kernel = kernel;
    spec.vm_dir = t.path();
    spec.runtime_dir = t / "run";
    ::mkdir(spec.runtime_dir.c_str(), 0700);
    spec.console_log = t / "console.log";
    spec.binary = "/usr/bin/qemu-system-x86_64";
    spec.memory_file = t / "ram";
    spec.memory_shared = true;
    spec.generation = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0";
  }
};

struct Launched {
  vmm::Handles h;
  pid_t pid = -1;
};

Launched launch(const Vm& vm) {
  auto req = vmm::isolated_request(vm.spec, false);
  auto r = priv::execute("launch_vmm", req.params, {0, 0}, std::move(req.fds));
  Launched l;
  l.pid = r.value["pid"].get<pid_t>();
  l.h = vmm::adopt_isolated(vm.spec, l.pid, r.value["argv"].get<std::vector<std::string>>(), {});
  return l;
}

void stop(const Launched& l) {
  priv::execute("signal_vmm", {{"pid", l.pid}, {"signal", "KILL"}}, {0, 0});
  ::waitpid(l.pid, nullptr, 0);  // our child: the in-process launch
}

}  // namespace

TEST_CASE("isolated QEMU: RAM file, snapshot over QMP, restore through a backing chain of descriptors",
          "[priv][vmm][qemu][snapshot]") {
  test::TempDir k;
  run_ok({"as", "--32", "-o", k / "tick.o", std::string(BANGER_TEST_SOURCE_DIR) + "/tests/fixtures/tick-kernel.S"});
  run_ok({"ld", "-m", "elf_i386", "-Ttext=0x100000", "-e", "_start", "-o", k / "tick.elf", k / "tick.o"});
  ::chmod(k.path().c_str(), 0755);
  Vm src("isosnap-src", k / "tick.elf");
  run_ok({"truncate", "-s", "16M", src.t / "base.img"});
  vmm::create_qcow2_overlay(src.t / "base.img", src.t / "root.qcow2", 16 << 20);
  src.spec.disks = {{"rootfs", src.t / "root.qcow2", "qcow2", false, true}};
  Launched s = launch(src);
  CHECK(priv::is_vmm_uid(static_cast<uid_t>(uid_of(s.pid))));
  CHECK(s.h.memory_file == src.t / "ram");
  // The grant ended once QEMU had the file mapped; no command line names it.
  CHECK(minimal_acl(src.t / "ram"));
  CHECK(read_file("/proc/" + std::to_string(s.pid) + "/maps").find(src.t / "ram") != std::string::npos);
  for (const auto& a : process::cmdline(s.pid)) CHECK(a.find(src.t.path()) == std::string::npos);
  REQUIRE(wait_for([&] { return ticks(src.spec.console_log).size() >= 3; }, 60s));

  // The owner snapshots it: descriptors go over QMP (getfd, add-fd).
  test::TempDir snap;
  vmm::SnapshotFiles files{snap / "state", snap / "ram",
                           {{"rootfs", src.t / "root.qcow2", snap / "rootfs.qcow2", src.t / "root.next.qcow2", "qcow2"}},
                           true};
  vmm::SnapshotStats st = vmm::qemu_snapshot(s.h, files);
  std::cerr << "[measure] isolated snapshot pause " << st.pause_ms_so_far << " ms, state " << st.state_bytes
            << " B, ram data " << st.ram_bytes << " B\n";
  CHECK(st.ram == "file");
  CHECK(vmm::qemu_block_files(s.h)["rootfs"] == src.t / "root.next.qcow2");
  std::string console = read_file(src.spec.console_log);
  long expected = ticks(src.spec.console_log).back() + (console.back() == '\n' ? 1 : 2);
  std::vector<std::string> frozen = {snap / "state", snap / "ram", snap / "rootfs.qcow2"};
  std::map<std::string, std::string> sums;
  for (const auto& f : frozen) sums[f] = sha256_file_hex(f);

  // A fork: overlay -> the snapshot's layer (qcow2) -> the raw base, each
  // opened by the owner; its RAM a private copy of the snapshot's.
  Vm fork("isosnap-fork", k / "tick.elf");
  vmm::create_qcow2_overlay(snap / "rootfs.qcow2", fork.t / "root.qcow2", 0, "qcow2");
  fork.spec.disks = {{"rootfs", fork.t / "root.qcow2", "qcow2", false, true}};
  fork.spec.memory_file = snap / "ram";
  fork.spec.memory_shared = false;
  fork.spec.restore = {snap / "state", "file"};
  auto t0 = Clock::now();
  auto req = vmm::isolated_request(fork.spec, false);
  CHECK(req.params["disks"][0]["backing"].size() == 2);
  CHECK(req.params["disks"][0]["backing"][0]["format"] == "qcow2");
  CHECK(req.params["disks"][0]["backing"][1]["format"] == "raw");
  auto r = priv::execute("launch_vmm", req.params, {0, 0}, std::move(req.fds));
  Launched f{vmm::adopt_isolated(fork.spec, r.value["pid"].get<pid_t>(), r.value["argv"].get<std::vector<std::string>>(), {}),
             r.value["pid"].get<pid_t>()};
  std::cerr << "[measure] isolated restore to paused "
            << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count() << " ms\n";
  CHECK(vmm::Qmp(f.h.control_socket, 5s).execute("query-status").value("status", "") == "paused");
  CHECK(f.h.memory_file == fork.t / "ram");  // its own copy: an isolated QEMU never gets a file other VMs map
  std::string maps = read_file("/proc/" + std::to_string(f.pid) + "/maps");
  CHECK(maps.find(fork.t / "ram") != std::string::npos);
  CHECK(maps.find(snap / "ram") == std::string::npos);
  CHECK(minimal_acl(fork.t / "ram"));
  auto driver = vmm::make_qemu_driver();
  driver->resume(f.h);
  driver->resume(s.h);
  REQUIRE(wait_for([&] { return !ticks(fork.spec.console_log).empty(); }, 60s));
  CHECK(ticks(fork.spec.console_log).front() == expected);
  REQUIRE(wait_for([&] { return ticks(src.spec.console_log).back() >= expected + 1; }, 60s));

  // Hot-plug through descriptors too.
  run_ok({"truncate", "-s", "4M", fork.t / "ws.img"});
  vmm::qemu_hotplug_disk(f.h, {"ws", fork.t / "ws.img", "raw", "banger-ws", false});
  CHECK(vmm::qemu_block_files(f.h)["ws"] == fork.t / "ws.img");

  for (const auto& [file, sum] : sums) CHECK(sha256_file_hex(file) == sum);
  stop(f);
  stop(s);
}

TEST_CASE("launch_vmm: the RAM file, generation, incoming and backing chain gates refuse their attacks",
          "[priv][vmm][attack]") {
  test::TempDir k;
  run_ok({"as", "--32", "-o", k / "tick.o", std::string(BANGER_TEST_SOURCE_DIR) + "/tests/fixtures/tick-kernel.S"});
  run_ok({"ld", "-m", "elf_i386", "-Ttext=0x100000", "-e", "_start", "-o", k / "tick.elf", k / "tick.o"});
  Vm vm("isosnap-gates", k / "tick.elf");
  run_ok({"truncate", "-s", "16M", vm.t / "base.img"});
  vmm::create_qcow2_overlay(vm.t / "base.img", vm.t / "root.qcow2", 16 << 20);
  vm.spec.disks = {{"rootfs", vm.t / "root.qcow2", "qcow2", false, true}};
  auto with = [&](const std::function<void(json&, priv::Fds&)>& tamper) {
    auto r = vmm::isolated_request(vm.spec, false);
    priv::Fds fds = std::move(r.fds);
    tamper(r.params, fds);
    return launch_error(r.params, std::move(fds));
  };
  auto memory_slot = [](const json& p) { return p["memory"].get<size_t>(); };

  // Someone else's file as RAM: the helper would lend its VMM uid write
  // access to it (the guest's RAM would be /etc/passwd, say).
  std::string other = vm.t / "other";
  run_ok({"truncate", "-s", "64M", other});
  REQUIRE(::chown(other.c_str(), test::kNobody, test::kNobody) == 0);
  CHECK(with([&](json& p, priv::Fds& f) { f[memory_slot(p)].reset(::open(other.c_str(), O_RDWR)); }) == "EPERM");
  CHECK(minimal_acl(other));
  // Read-only, the wrong size, not a regular file.
  CHECK(with([&](json& p, priv::Fds& f) { f[memory_slot(p)].reset(::open((vm.t / "ram").c_str(), O_RDONLY)); }) ==
        "EINVAL");
  CHECK(with([&](json& p, priv::Fds& f) {
          REQUIRE(::ftruncate(f[memory_slot(p)].get(), 32 << 20) == 0);
        }) == "EINVAL");
  CHECK(with([&](json& p, priv::Fds& f) { f[memory_slot(p)].reset(::open(vm.t.path().c_str(), O_RDONLY | O_DIRECTORY)); }) ==
        "EINVAL");
  // Typed fields: a generation that would smuggle a property, a string for a boolean.
  CHECK(with([](json& p, priv::Fds&) { p["generation"] = "x,guid=auto"; }) == "EINVAL");
  CHECK(with([](json& p, priv::Fds&) { p["incoming"] = "yes"; }) == "EINVAL");
  // Backing chains: below a raw image, an unknown format, not a list, too deep.
  CHECK(with([](json& p, priv::Fds&) { p["disks"][0]["backing"][0]["format"] = "vvfat"; }) == "EINVAL");
  CHECK(with([](json& p, priv::Fds&) { p["disks"][0]["format"] = "raw"; }) == "EINVAL");
  CHECK(with([](json& p, priv::Fds&) { p["disks"][0]["backing"] = 3; }) == "EINVAL");
  CHECK(with([&](json& p, priv::Fds& f) {
          for (int i = 0; i < 16; ++i) {
            f.emplace_back(::open((vm.t / "base.img").c_str(), O_RDONLY));
            p["disks"][0]["backing"].insert(p["disks"][0]["backing"].begin(), {{"fd", f.size() - 1}, {"format", "qcow2"}});
          }
        }) == "EINVAL");
  CHECK(with([&](json& p, priv::Fds& f) {
          f.emplace_back(::open("/dev/null", O_RDONLY));
          p["disks"][0]["backing"].push_back({{"fd", f.size() - 1}, {"format", "raw"}});
        }) == "EINVAL");
  CHECK(minimal_acl(vm.t / "ram"));
  process::SpawnOptions o;
  o.argv = {"pgrep", "-f", "banger-isosnap-gates"};
  o.out = process::Stdio::pipe();
  CHECK(process::run(o).out.empty());
}
