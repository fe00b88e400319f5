// Snapshots, restores and disk hot-plug of the QEMU driver against a real
// qemu-system-x86_64 under TCG, booting the counting multiboot kernel from
// tests/fixtures/tick-kernel.S: its counter lives in guest RAM, so a restored
// VM that continues the count (instead of starting at 1) proves that RAM
// and CPU state came back. Timings are printed as "[measure]" lines.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <thread>

#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/core/read_file.hpp"
#include "engine/core/sha256.hpp"
#include "engine/vmm/qemu.hpp"
#include "engine/vmm/qemu_snapshot.hpp"
#include "engine/vmm/qmp.hpp"
#include "test_util.hpp"

using namespace banger;
using namespace std::chrono_literals;
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

std::string tick_kernel(const test::TempDir& t) {
  run_ok({"as", "--32", "-o", t / "tick.o", std::string(BANGER_TEST_SOURCE_DIR) + "/tests/fixtures/tick-kernel.S"});
  run_ok({"ld", "-m", "elf_i386", "-Ttext=0x100000", "-e", "_start", "-o", t / "tick.elf", t / "tick.o"});
  return t / "tick.elf";
}

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// The counts a console shows, in order (complete lines only).
std::vector<long> ticks(const std::string& console) {
  std::vector<long> out;
  std::string text = slurp(console);
  size_t pos = 0;
  while ((pos = text.find("tick ", pos)) != std::string::npos) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;
    out.push_back(std::stol(text.substr(pos + 5, nl - pos - 5), nullptr, 16));
    pos = nl;
  }
  return out;
}

// The first count a VM restored from a snapshot of `console`'s VM prints
// in full: the next one, unless the pause cut a line short (the restored
// VM then finishes that line first, without its "tick " prefix).
long next_full_tick(const std::string& console) {
  std::string text = slurp(console);
  return ticks(console).back() + (!text.empty() && text.back() == '\n' ? 1 : 2);
}

bool wait_for(const std::function<bool()>& pred, std::chrono::seconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

long ms_since(Clock::time_point t) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count());
}

std::string status_of(const vmm::Handles& h) { return vmm::Qmp(h.control_socket, 5s).execute("query-status").value("status", ""); }

constexpr const char* kGeneration = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0";

// A VM dir: the counting kernel, a qcow2 root overlay over a raw base, a
// raw work disk, a 0700 runtime dir, and RAM in <dir>/ram.
struct Vm {
  test::TempDir t;
  vmm::VmSpec spec;
  explicit Vm(const std::string& name, const std::string& kernel = "") {
    spec.id = "0123456789ab";
    spec.name = name;
    spec.memory_mib = 64;
    spec.kernel = kernel.empty() ? tick_kernel(t) : kernel;
    spec.vm_dir = t.path();
    spec.runtime_dir = t / "run";
    ::mkdir(spec.runtime_dir.c_str(), 0700);
    spec.console_log = t / "console.log";
    spec.accel = "tcg";
    spec.memory_file = t / "ram";
    spec.memory_shared = true;
    spec.generation = kGeneration;
  }
  void own_disks() {
    run_ok({"truncate", "-s", "16M", t / "base.img"});
    vmm::create_qcow2_overlay(t / "base.img", t / "root.qcow2", 16 << 20);
    run_ok({"truncate", "-s", "8M", t / "work.img"});
    spec.disks = {{"rootfs", t / "root.qcow2", "qcow2", false, true}, {"work", t / "work.img", "raw", false, false}};
  }
};

std::vector<vmm::SnapshotDisk> plan(const Vm& vm, const std::string& snap) {
  return {{"rootfs", vm.t / "root.qcow2", snap + "/rootfs.qcow2", vm.t / "root.next.qcow2", "qcow2"},
          {"work", vm.t / "work.img", snap + "/work.img", vm.t / "work.next.qcow2", ""}};
}

std::map<std::string, std::string> sums(const std::vector<std::string>& files) {
  std::map<std::string, std::string> m;
  for (const auto& f : files) m[f] = sha256_file_hex(f);
  return m;
}

// A fork of the snapshot in `snap`: its own overlays above the snapshot's
// layers, the snapshot's RAM mapped privately.
void fork_of(Vm& fork, const std::string& snap, const std::string& ram) {
  vmm::create_qcow2_overlay(snap + "/rootfs.qcow2", fork.t / "root.qcow2", 0, "qcow2");
  vmm::create_qcow2_overlay(snap + "/work.img", fork.t / "work.qcow2", 0, "raw");
  fork.spec.disks = {{"rootfs", fork.t / "root.qcow2", "qcow2", false, true},
                     {"work", fork.t / "work.qcow2", "qcow2", false, false}};
  fork.spec.memory_file = snap + "/" + ram;
  fork.spec.memory_shared = false;
  fork.spec.restore = {snap + "/state", "file"};
}

bool maps_privately(pid_t pid, const std::string& file) {
  std::string maps = read_file("/proc/" + std::to_string(pid) + "/maps");
  size_t at = maps.find(file);
  if (at == std::string::npos) return false;
  size_t line = maps.rfind('\n', at);
  line = line == std::string::npos ? 0 : line + 1;
  // "start-end rw-p ...": p is a private (copy-on-write) mapping
  return maps.compare(maps.find(' ', line) + 1, 4, "rw-p") == 0;
}

}  // namespace

TEST_CASE("qemu argv: RAM file, VM generation and incoming keep the devices of a cold launch", "[qemu][snapshot]") {
  vmm::VmSpec s;
  s.name = "box";
  s.kernel = "/k/vmlinux";
  s.runtime_dir = "/run/b";
  s.vm_dir = "/state/vm";
  s.disks = {{"rootfs", "/state/vm/root.qcow2", "qcow2", false, true}};
  s.memory_mib = 256;
  s.memory_file = "/state/vm/ram";
  s.generation = kGeneration;
  auto cold = vmm::qemu_argv(s, false);
  auto has = [](const std::vector<std::string>& a, const std::string& x) {
    return std::find(a.begin(), a.end(), x) != a.end();
  };
  CHECK(has(cold, "pc,memory-backend=pc.ram"));
  CHECK(has(cold, "memory-backend-file,id=pc.ram,size=256M,mem-path=/state/vm/ram,share=on"));
  CHECK(has(cold, "vmgenid,guid=" + std::string(kGeneration)));
  CHECK_FALSE(has(cold, "-incoming"));
  CHECK(has(vmm::qemu_argv(s, true), "microvm,x-option-roms=off,pit=off,pic=off,isa-serial=on,rtc=on,memory-backend=pc.ram"));
  CHECK_FALSE(has(vmm::qemu_argv(s, true), "vmgenid,guid=" + std::string(kGeneration)));  // microvm has no ACPI for it

  vmm::VmSpec r = s;
  r.memory_file = "/snap/ram";
  r.memory_shared = false;
  r.generation = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f1";
  r.restore = {"/snap/state", "file"};
  auto restore = vmm::qemu_argv(r, false);
  REQUIRE(restore.size() == cold.size() + 3);
  CHECK(std::vector<std::string>(restore.end() - 3, restore.end()) == std::vector<std::string>{"-S", "-incoming", "defer"});
  // Argument by argument the same machine; only the RAM file, its
  // sharing and the generation differ.
  for (size_t i = 0; i < cold.size(); ++i) {
    if (cold[i] == restore[i]) continue;
    INFO(cold[i] << " vs " << restore[i]);
    CHECK((cold[i].rfind("memory-backend-file", 0) == 0 || cold[i].rfind("vmgenid", 0) == 0));
  }
  s.generation = "1,file=/etc/shadow";
  CHECK(test::error_code_of([&] { vmm::qemu_argv(s, false); }) == "EINVAL");
  s.generation = "";
  s.memory_file = "/a,b";
  CHECK(test::error_code_of([&] { vmm::qemu_argv(s, false); }) == "EINVAL");
}

TEST_CASE("qemu snapshot: two restores at once continue the source's count, and the snapshot stays unchanged",
          "[qemu][snapshot]") {
  Vm src("snapsrc");
  src.own_disks();
  auto driver = vmm::make_qemu_driver();
  vmm::Handles h = driver->launch(src.spec, nullptr);
  CHECK(h.memory_file == src.spec.memory_file);
  REQUIRE(wait_for([&] { return ticks(src.spec.console_log).size() >= 3; }, 60s));

  test::TempDir snap;
  vmm::SnapshotFiles files{snap / "state", snap / "ram", plan(src, snap.path()), true};
  auto before = vmm::qemu_block_files(h);
  CHECK(before["rootfs"] == src.t / "root.qcow2");
  CHECK(before["work"] == src.t / "work.img");
  auto t0 = Clock::now();
  vmm::SnapshotStats st = vmm::qemu_snapshot(h, files);
  std::cerr << "[measure] snapshot pause " << st.pause_ms_so_far << " ms (disks " << st.disks_ms << ", state "
            << st.migrate_ms << ", ram copy " << st.ram_copy_ms << ", fsync " << st.sync_ms << "; call "
            << ms_since(t0) << " ms), state " << st.state_bytes << " B, ram data " << st.ram_bytes << " B\n";
  CHECK(st.ram == "file");
  CHECK(st.state_bytes > 0);
  CHECK(st.state_bytes < (4u << 20));  // device state only: the RAM stayed out
  CHECK(st.ram_bytes > 0);
  CHECK(st.ram_bytes <= (64u << 20));
  CHECK(driver->status(h) == vmm::RunState::paused);
  // The source now writes to its next overlays, which name the layers.
  auto after = vmm::qemu_block_files(h);
  CHECK(after["rootfs"] == src.t / "root.next.qcow2");
  CHECK(after["work"] == src.t / "work.next.qcow2");
  struct stat a {}, b {};
  REQUIRE(::stat((src.t / "root.qcow2").c_str(), &a) == 0);
  REQUIRE(::stat((snap / "rootfs.qcow2").c_str(), &b) == 0);
  CHECK(a.st_ino == b.st_ino);  // the layer is the file the VM wrote, linked

  // Paused: the console's last count is the one in the saved RAM.
  long saved = ticks(src.spec.console_log).back(), expected = next_full_tick(src.spec.console_log);
  std::this_thread::sleep_for(300ms);
  CHECK(ticks(src.spec.console_log).back() == saved);
  auto snapshot_files = std::vector<std::string>{snap / "state", snap / "ram", snap / "rootfs.qcow2", snap / "work.img"};
  auto sums_before = sums(snapshot_files);

  Vm fork1("snapfork1", src.spec.kernel), fork2("snapfork2", src.spec.kernel);
  fork_of(fork1, snap.path(), "ram");
  fork_of(fork2, snap.path(), "ram");
  fork2.spec.generation = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f2";
  auto restore = [&](Vm& vm) {
    auto t = Clock::now();
    vmm::Handles fh = vmm::make_qemu_driver()->launch(vm.spec, nullptr);
    std::cerr << "[measure] restore to paused " << ms_since(t) << " ms\n";
    return fh;
  };
  auto f1 = std::async(std::launch::async, restore, std::ref(fork1));
  auto f2 = std::async(std::launch::async, restore, std::ref(fork2));
  vmm::Handles h1 = f1.get(), h2 = f2.get();
  for (const auto* fh : {&h1, &h2}) {
    CHECK(status_of(*fh) == "paused");
    CHECK(maps_privately(fh->pid, snap / "ram"));  // copy-on-write: the forks share unchanged pages
  }
  CHECK(ticks(fork1.spec.console_log).empty());  // nothing ran before cont
  driver->resume(h1);
  driver->resume(h2);
  driver->resume(h);
  for (const auto* fh : {&h1, &h2, &h}) CHECK(status_of(*fh) == "running");
  for (const Vm* vm : {&fork1, &fork2, &src}) {
    INFO(vm->spec.name);
    REQUIRE(wait_for([&] { return ticks(vm->spec.console_log).size() >= 3 && ticks(vm->spec.console_log).back() > saved + 2; }, 60s));
  }
  // Both forks and the source continue the saved count: not a reboot.
  CHECK(ticks(fork1.spec.console_log).front() == expected);
  CHECK(ticks(fork2.spec.console_log).front() == expected);
  CHECK(vmm::qemu_block_files(h)["rootfs"] == src.t / "root.next.qcow2");
  CHECK(vmm::qemu_block_files(h1)["rootfs"] == fork1.t / "root.qcow2");
  // The caller renames next over current: the name follows the file, so a
  // later snapshot's switch to a new root.next.qcow2 still shows.
  REQUIRE(::rename((src.t / "root.next.qcow2").c_str(), (src.t / "root.qcow2").c_str()) == 0);
  CHECK(vmm::qemu_block_files(h)["rootfs"] == src.t / "root.qcow2");

  // Running forks and source change nothing of the snapshot.
  CHECK(sums(snapshot_files) == sums_before);

  // A fork's RAM is private: its snapshot carries the RAM in the stream.
  test::TempDir snap2;
  vmm::SnapshotFiles files2{snap2 / "state", snap2 / "ram", {}, true};
  files2.disks = {{"rootfs", fork1.t / "root.qcow2", snap2 / "rootfs.qcow2", fork1.t / "root.next.qcow2", ""},
                  {"work", fork1.t / "work.qcow2", snap2 / "work.qcow2", fork1.t / "work.next.qcow2", ""}};
  vmm::SnapshotStats st2 = vmm::qemu_snapshot(h1, files2);
  std::cerr << "[measure] snapshot of a fork (RAM in the stream) pause " << st2.pause_ms_so_far << " ms, state "
            << st2.state_bytes << " B\n";
  CHECK(st2.ram == "stream");
  CHECK(st2.ram_bytes == 0);
  CHECK_FALSE(std::filesystem::exists(snap2 / "ram"));
  CHECK(st2.state_bytes > st.state_bytes);
  // ... and restores from it into a plain -m VM (the RAM block is named pc.ram either way).
  Vm fork3("snapfork3", src.spec.kernel);
  vmm::create_qcow2_overlay(snap2 / "rootfs.qcow2", fork3.t / "root.qcow2", 0, "qcow2");
  vmm::create_qcow2_overlay(snap2 / "work.qcow2", fork3.t / "work.qcow2", 0, "qcow2");
  fork3.spec.disks = {{"rootfs", fork3.t / "root.qcow2", "qcow2", false, true},
                      {"work", fork3.t / "work.qcow2", "qcow2", false, false}};
  fork3.spec.memory_file = "";
  fork3.spec.restore = {snap2 / "state", "stream"};
  vmm::Handles h3 = vmm::make_qemu_driver()->launch(fork3.spec, nullptr);
  long expected2 = next_full_tick(fork1.spec.console_log);
  driver->resume(h3);
  REQUIRE(wait_for([&] { return !ticks(fork3.spec.console_log).empty(); }, 60s));
  CHECK(ticks(fork3.spec.console_log).front() == expected2);

  for (const auto* fh : {&h, &h1, &h2, &h3}) vmm::kill(*fh);
  CHECK(sums(snapshot_files) == sums_before);
}

TEST_CASE("qemu snapshot: a plan that leaves a disk out is refused before the VM pauses", "[qemu][snapshot]") {
  Vm src("snapplan");
  src.own_disks();
  vmm::Handles h = vmm::make_qemu_driver()->launch(src.spec, nullptr);
  test::TempDir snap;
  auto disks = plan(src, snap.path());
  disks.pop_back();
  CHECK(test::error_code_of([&] { vmm::qemu_snapshot(h, {snap / "state", snap / "ram", disks, true}); }) == "EINVAL");
  disks = plan(src, snap.path());
  disks[1].id = "nosuch";
  CHECK(test::error_code_of([&] { vmm::qemu_snapshot(h, {snap / "state", snap / "ram", disks, true}); }) == "EINVAL");
  CHECK(test::error_code_of([&] { vmm::qemu_snapshot(h, {snap / "state", "", plan(src, snap.path()), true}); }) ==
        "EINVAL");  // a shared RAM file needs somewhere to go
  CHECK(status_of(h) == "running");
  CHECK(std::filesystem::is_empty(snap.path()));
  vmm::kill(h);
}

TEST_CASE("qemu restore: a bad state file is QEMU's error with its log, and leaves no process", "[qemu][snapshot]") {
  Vm vm("snapbad");
  vm.own_disks();
  { std::ofstream(vm.t / "state") << "not a migration stream"; }
  vm.spec.restore = {vm.t / "state", "stream"};
  vm.spec.memory_file = "";
  try {
    vmm::make_qemu_driver()->launch(vm.spec, nullptr);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.code() == "EHYPERVISOR");
    INFO(e.what());
    CHECK(std::string(e.what()).find("restore of") != std::string::npos);
  }
  process::SpawnOptions o;
  o.argv = {"pgrep", "-f", "banger-snapbad"};
  o.out = process::Stdio::pipe();
  CHECK(process::run(o).out.empty());
}

TEST_CASE("qemu hot-plug: a raw disk joins a running VM on -M pc, and bad ids and serials are refused",
          "[qemu][snapshot]") {
  Vm vm("hotplug");
  vm.own_disks();
  vmm::Handles h = vmm::make_qemu_driver()->launch(vm.spec, nullptr);
  run_ok({"truncate", "-s", "4M", vm.t / "ws.img"});
  vmm::qemu_hotplug_disk(h, {"ws", vm.t / "ws.img", "raw", "banger-ws", false});
  CHECK(vmm::qemu_block_files(h)["ws"] == vm.t / "ws.img");
  std::string pci = vmm::Qmp(h.control_socket, 5s).execute("query-pci").dump();
  CHECK(pci.find("\"qdev_id\":\"ws\"") != std::string::npos);
  CHECK(test::error_code_of([&] { vmm::qemu_hotplug_disk(h, {"ws", vm.t / "ws.img", "raw", "banger-ws", false}); }) ==
        "EHYPERVISOR");  // the id is taken
  CHECK(test::error_code_of([&] { vmm::qemu_hotplug_disk(h, {"Bad,id", vm.t / "ws.img", "raw", "x", false}); }) ==
        "EINVAL");
  CHECK(test::error_code_of(
            [&] { vmm::qemu_hotplug_disk(h, {"ws2", vm.t / "ws.img", "raw", "a,drive=rootfs", false}); }) == "EINVAL");
  CHECK(test::error_code_of([&] { vmm::qemu_hotplug_disk(h, {"ws3", vm.t / "ws.img", "vvfat", "x", false}); }) ==
        "EINVAL");
  // A VM with a hot-plugged disk cannot be snapshotted: a restore would lack it.
  test::TempDir snap;
  CHECK(test::error_code_of([&] { vmm::qemu_snapshot(h, {snap / "state", snap / "ram", plan(vm, snap.path()), true}); }) ==
        "EINVAL");
  vmm::kill(h);
}
