// The QEMU driver against a real qemu-system-x86_64 under TCG, booting the
// multiboot mini kernel from tests/fixtures (no Linux needed for these).
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <thread>

#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/core/unix_socket.hpp"
#include "engine/vmm/qemu.hpp"
#include "test_util.hpp"

using namespace banger;
using namespace std::chrono_literals;

namespace {

std::string build_mini_kernel(const std::string& dir) {
  std::string src = std::string(BANGER_TEST_SOURCE_DIR) + "/tests/fixtures/mini-kernel.S";
  auto as = process::run({{"as", "--32", "-o", dir + "/mini.o", src}, {}, {}, {}, false, {}, {}, {}});
  REQUIRE(as.status.shell_code() == 0);
  auto ld = process::run(
      {{"ld", "-m", "elf_i386", "-Ttext=0x100000", "-e", "_start", "-o", dir + "/mini.elf", dir + "/mini.o"},
       {}, {}, {}, false, {}, {}, {}});
  REQUIRE(ld.status.shell_code() == 0);
  return dir + "/mini.elf";
}

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

vmm::VmSpec mini_spec(const test::TempDir& t) {
  vmm::VmSpec s;
  s.id = "0123456789ab";
  s.name = "mini";
  s.vcpus = 1;
  s.memory_mib = 64;
  s.kernel = build_mini_kernel(t.path());
  s.vm_dir = t.path();
  s.runtime_dir = t / "run";
  ::mkdir(s.runtime_dir.c_str(), 0700);
  s.console_log = t / "console.log";
  s.accel = "tcg";
  return s;
}

mode_t mode_of(const std::string& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("qemu argv: pc + TCG with virtio-pci, microvm + KVM with virtio-mmio", "[qemu]") {
  vmm::VmSpec s;
  s.name = "box";
  s.kernel = "/k/vmlinux";
  s.initrd = "/k/initrd";
  s.cmdline = "console=ttyS0";
  s.runtime_dir = "/run/b";
  s.vm_dir = "/state/vm";
  s.disks = {{"rootfs", "/state/vm/root.qcow2", "qcow2", false, true}, {"work", "/state/vm/work.ext4", "raw", false, false}};
  s.nics = {{"eth0", "bgtap01", "02:00:00:00:00:01"}};
  auto tcg = vmm::qemu_argv(s, false);
  auto has = [](const std::vector<std::string>& a, const std::string& x) {
    return std::find(a.begin(), a.end(), x) != a.end();
  };
  CHECK(has(tcg, "pc"));
  CHECK(has(tcg, "tcg"));
  CHECK(has(tcg, "virtio-blk-pci,drive=rootfs"));
  CHECK(has(tcg, "virtio-net-pci,netdev=eth0,mac=02:00:00:00:00:01"));
  CHECK(has(tcg, "tap,id=eth0,ifname=bgtap01,script=no,downscript=no"));
  CHECK(has(tcg, "unix:/run/b/qmp.sock,server=on,wait=off"));
  CHECK(has(tcg, "-no-reboot"));
  auto kvm = vmm::qemu_argv(s, true);
  CHECK(has(kvm, "kvm"));
  CHECK(has(kvm, "virtio-blk-device,drive=rootfs"));
  CHECK(has(kvm, "virtio-serial-device"));
  s.disks[0].path = "/evil,file=/etc/shadow";
  CHECK_THROWS_AS(vmm::qemu_argv(s, false), Error);
}

TEST_CASE("qemu argv: a disk's serial reaches the guest, and cannot smuggle options", "[qemu][attack]") {
  vmm::VmSpec s;
  s.name = "box";
  s.kernel = "/k/vmlinux";
  s.runtime_dir = "/run/b";
  s.vm_dir = "/state/vm";
  s.disks = {{"rootfs", "/state/vm/root.qcow2", "qcow2", false, true, ""},
             {"ws", "/state/vm/ws.ext4", "raw", false, false, "banger-ws"}};
  auto a = vmm::qemu_argv(s, false);
  CHECK(std::find(a.begin(), a.end(), "virtio-blk-pci,drive=rootfs") != a.end());
  CHECK(std::find(a.begin(), a.end(), "virtio-blk-pci,drive=ws,serial=banger-ws") != a.end());
  for (const char* bad : {"ws,drive=rootfs", "ws serial", "a-serial-of-21-chars!", "abcdefghijklmnopqrstu"}) {
    s.disks[1].serial = bad;
    CHECK(test::error_code_of([&] { vmm::qemu_argv(s, false); }) == "EINVAL");
  }
}

TEST_CASE("qemu driver: launch, status, pause/resume, forced shutdown", "[qemu]") {
  test::TempDir t;
  vmm::VmSpec spec = mini_spec(t);
  auto driver = vmm::make_qemu_driver();
  std::vector<std::string> stages;
  vmm::Handles h = driver->launch(spec, [&](const std::string& s, const std::string&) { stages.push_back(s); });
  CHECK(stages.front() == "launch");
  CHECK(vmm::alive(h));
  CHECK(h.agent.kind == vmm::AgentTransport::Kind::serial_socket);
  // Sockets are private from birth (umask 077 at spawn): no group/other bits.
  CHECK((mode_of(h.control_socket) & 077) == 0);
  CHECK((mode_of(h.agent.path) & 077) == 0);
  CHECK(driver->status(h) == vmm::RunState::running);
  CHECK(test::eventually([&] { return slurp(spec.console_log).find("banger-mini-kernel: up") != std::string::npos; }));

  driver->pause(h);
  CHECK(driver->status(h) == vmm::RunState::paused);
  driver->resume(h);
  CHECK(driver->status(h) == vmm::RunState::running);

  // The mini kernel ignores ACPI and Ctrl-Alt-Del: shutdown falls back to
  // quit/kill and says the guest did not stop by itself.
  CHECK_FALSE(driver->shutdown(h, 500ms));
  CHECK_FALSE(vmm::alive(h));
  CHECK(driver->status(h) == vmm::RunState::stopped);
}

TEST_CASE("qemu driver: a failed launch reports QEMU's error and leaves no process", "[qemu]") {
  test::TempDir t;
  vmm::VmSpec spec = mini_spec(t);
  spec.kernel = t / "no-such-kernel";
  auto driver = vmm::make_qemu_driver();
  try {
    driver->launch(spec, nullptr);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.code() == "EHYPERVISOR");
    CHECK(std::string(e.what()).find("no-such-kernel") != std::string::npos);
  }
  auto r = process::run({{"pgrep", "-f", "banger-mini.*" + t.path()}, {}, {}, {}, false, {}, {}, {}});
  CHECK(r.out.empty());
}

TEST_CASE("liveness needs pid, command line and socket", "[qemu][vmm]") {
  test::TempDir t;
  vmm::VmSpec spec = mini_spec(t);
  auto driver = vmm::make_qemu_driver();
  vmm::Handles h = driver->launch(spec, nullptr);
  REQUIRE(vmm::alive(h));
  vmm::Handles other_cmd = h;
  other_cmd.cmdline.back() += "x";
  CHECK_FALSE(vmm::alive(other_cmd));  // a recycled pid running something else
  vmm::Handles no_socket = h;
  no_socket.control_socket = t / "gone.sock";
  CHECK_FALSE(vmm::alive(no_socket));
  vmm::kill(h);
  CHECK_FALSE(vmm::alive(h));
}

TEST_CASE("qcow2 overlays are O(1) copies of a raw base", "[qemu]") {
  test::TempDir t;
  std::string base = t / "base.img";
  { std::ofstream(base) << std::string(1 << 20, 'x'); }
  vmm::create_qcow2_overlay(base, t / "overlay.qcow2", 64ll << 20);
  auto info = process::run({{"qemu-img", "info", "--output=json", t / "overlay.qcow2"}, {}, {}, {}, false, {}, {}, {}});
  REQUIRE(info.status.shell_code() == 0);
  CHECK(info.out.find("\"backing-filename\": \"" + base + "\"") != std::string::npos);
  CHECK(info.out.find("\"virtual-size\": 67108864") != std::string::npos);
  struct stat st {};
  REQUIRE(::stat((t / "overlay.qcow2").c_str(), &st) == 0);
  CHECK(st.st_size < (1 << 20));
}

TEST_CASE("qmp_quit stops the QEMU on a socket, and says when nothing listens", "[qemu][vmm]") {
  test::TempDir t;
  vmm::VmSpec spec = mini_spec(t);
  vmm::Handles h = vmm::make_qemu_driver()->launch(spec, nullptr);
  REQUIRE(vmm::alive(h));
  // No pid needed: whoever holds this VM's own socket is told to quit.
  CHECK(vmm::qmp_quit(h.control_socket, 5s));
  CHECK_FALSE(vmm::alive(h));
  CHECK_FALSE(vmm::qmp_quit(h.control_socket, 1s));  // the file is left, nobody listens
  CHECK_FALSE(vmm::qmp_quit(t / "run/none.sock", 1s));

  // Something listens but never speaks QMP (a launch still under way):
  // an error, so the caller keeps its record and tries again later.
  UniqueFd mute = net_unix::bind(t / "run/mute.sock");
  REQUIRE(::listen(mute.get(), 4) == 0);
  try {
    vmm::qmp_quit(t / "run/mute.sock", 300ms);
    FAIL("expected ETIMEDOUT");
  } catch (const Error& e) {
    CHECK(e.code() == "ETIMEDOUT");
  }
}
