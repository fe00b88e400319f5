// launch_vmm and signal_vmm (engine/priv/vmm_ops.cpp), in-process as root
// (the same entry point the helper serves): a real QEMU under TCG booting
// the multiboot mini kernel as a uid of its own from descriptors only, and
// the attacks each gate exists for, each refused with no process started
// or signalled.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/core/read_file.hpp"
#include "engine/priv/ops.hpp"
#include "engine/priv/vmm_uids.hpp"
#include "engine/vmm/qemu.hpp"
#include "engine/vmm/qemu_isolated.hpp"
#include "engine/vmm/qmp.hpp"
#include "test_util.hpp"

using namespace banger;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::string run_ok(std::vector<std::string> argv) {
  process::SpawnOptions o;
  o.argv = std::move(argv);
  o.out = process::Stdio::pipe();
  o.err = process::Stdio::pipe();
  auto r = process::run(o);
  INFO(o.argv[0] << ": " << r.err);
  REQUIRE(r.status.shell_code() == 0);
  return r.out;
}

// A VM dir as banger lays it out: mini kernel, raw base + qcow2 overlay, a
// raw work disk, a 0700 runtime dir.
struct Vm {
  test::TempDir t;
  vmm::VmSpec spec;
  Vm() {
    run_ok({"as", "--32", "-o", t / "mini.o", std::string(BANGER_TEST_SOURCE_DIR) + "/tests/fixtures/mini-kernel.S"});
    run_ok({"ld", "-m", "elf_i386", "-Ttext=0x100000", "-e", "_start", "-o", t / "mini.elf", t / "mini.o"});
    run_ok({"truncate", "-s", "16M", t / "base.img"});
    vmm::create_qcow2_overlay(t / "base.img", t / "root.qcow2", 32 << 20);
    run_ok({"truncate", "-s", "8M", t / "work.ext4"});
    ::chmod(t.path().c_str(), 0700);  // nobody else may even look in here
    spec.id = "0123456789ab";
    spec.name = "isolated-mini";
    spec.memory_mib = 64;
    spec.kernel = t / "mini.elf";
    spec.vm_dir = t.path();
    spec.runtime_dir = t / "run";
    ::mkdir(spec.runtime_dir.c_str(), 0700);
    spec.console_log = t / "console.log";
    spec.binary = "/usr/bin/qemu-system-x86_64";
    spec.disks = {{"rootfs", t / "root.qcow2", "qcow2", false, true}, {"work", t / "work.ext4", "raw", false, false}};
  }
};

priv::Fds take(vmm::IsolatedRequest& r) { return std::move(r.fds); }

std::string error_code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  return "no error";
}

std::string launch_error(json params, priv::Fds fds) {
  return error_code_of([&] { priv::execute("launch_vmm", params, {0, 0}, std::move(fds)); });
}

long uid_of(pid_t pid) {
  std::string s = read_file("/proc/" + std::to_string(pid) + "/status");
  return std::strtol(s.c_str() + s.find("\nUid:") + 5, nullptr, 10);
}

// No QEMU named banger-<name> runs. Each test case uses names of its own:
// ctest runs them in parallel.
bool no_isolated_qemu(const std::string& name) {
  process::SpawnOptions o;
  o.argv = {"pgrep", "-f", "banger-" + name};
  o.out = process::Stdio::pipe();
  return process::run(o).out.empty();
}

pid_t spawn_sleep(uid_t uid) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (uid != 0 && (::setresgid(uid, uid, uid) != 0 || ::setresuid(uid, uid, uid) != 0)) ::_exit(126);
    ::execlp("sleep", "sleep", "30", nullptr);
    ::_exit(127);
  }
  // Until exec has replaced the command line.
  REQUIRE(test::eventually([&] {
    auto argv = process::cmdline(pid);
    return !argv.empty() && argv[0] == "sleep";
  }));
  return pid;
}

bool running(pid_t pid) {
  std::string s;
  try {
    s = read_file("/proc/" + std::to_string(pid) + "/stat");
  } catch (const Error&) {
    return false;
  }
  return s.find(") Z") == std::string::npos;
}

std::string fd_target(pid_t pid, int fd) {
  char buf[4096];
  ssize_t n = ::readlink(("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd)).c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// The console log once the mini kernel has said it is up (or after 5 s).
std::string console_of(const vmm::VmSpec& spec) {
  std::string console;
  test::eventually([&] { return (console = read_file(spec.console_log)).find("mini-kernel: up") != std::string::npos; }, 5s);
  return console;
}

}  // namespace

TEST_CASE("isolated argv: descriptor numbers only, explicit backing", "[priv][vmm]") {
  vmm::IsolatedQemu q;
  q.binary = "/usr/bin/qemu-system-x86_64";
  q.name = "box";
  q.kernel = 3, q.qmp = 4, q.agent = 5, q.console = 6, q.forward = 11;
  q.disks = {{"rootfs", "qcow2", false, 7, 10, {{8, "raw"}}}, {"work", "qcow2", false, 9, -1, {}}};
  auto argv = vmm::isolated_argv(q);
  std::string joined;
  for (const auto& a : argv) joined += a + " ";
  CHECK_THAT(joined, Catch::Contains("-kernel /proc/self/fd/3 "));
  CHECK_THAT(joined, Catch::Contains("socket,id=qmp,fd=4,server=on"));
  CHECK_THAT(joined, Catch::Contains("socket,id=agent,fd=5,server=on"));
  CHECK_THAT(joined, Catch::Contains("socket,id=forward,fd=11,server=on,wait=off -device virtserialport,chardev=forward,name=banger.forward"));
  CHECK_THAT(joined, Catch::Contains("-add-fd fd=8,set="));
  CHECK_THAT(joined, Catch::Contains("\"backing\":\"rootfs-b1\""));
  // A writable disk's set holds its read-only twin too.
  CHECK_THAT(joined, Catch::Contains("-add-fd fd=7,set=3 -add-fd fd=10,set=3 "));
  // A qcow2 without a base never follows a backing name written in its header.
  CHECK_THAT(joined, Catch::Contains("\"backing\":null,\"driver\":\"qcow2\",\"file\":\"work-file\""));
  CHECK(joined.find("-netdev") == std::string::npos);
}

TEST_CASE("launch_vmm: QEMU runs as a uid of its own from descriptors, and signal_vmm stops it", "[priv][vmm][qemu]") {
  Vm vm;
  // A kernel only its owner may read reaches QEMU as a sealed copy (the
  // second VM's, readable by all, as itself): both must boot.
  REQUIRE(::chmod(vm.spec.kernel.c_str(), 0600) == 0);
  auto req = vmm::isolated_request(vm.spec, false);
  for (const auto& d : req.params["disks"]) CHECK(d["fd"].get<int>() >= 0);
  CHECK(req.params["disks"][0]["backing"][0]["fd"].get<int>() >= 0);  // found in the overlay's header
  CHECK(req.params["disks"][0]["backing"][0]["format"] == "raw");
  auto r = priv::execute("launch_vmm", req.params, {0, 0}, take(req));
  pid_t pid = r.value["pid"].get<pid_t>();
  uid_t uid = r.value["uid"].get<uid_t>();
  CHECK(priv::is_vmm_uid(uid));
  CHECK(uid_of(pid) == static_cast<long>(uid));
  // No host path of the owner's reaches QEMU's command line.
  for (const auto& a : process::cmdline(pid)) CHECK(a.find(vm.t.path()) == std::string::npos);

  vmm::Handles h = vmm::adopt_isolated(vm.spec, pid, r.value["argv"].get<std::vector<std::string>>(), {});
  CHECK(h.launcher == "helper");
  CHECK(vmm::alive(h));
  CHECK(vmm::make_qemu_driver()->status(h) == vmm::RunState::running);
  CHECK_THAT(console_of(vm.spec), Catch::Contains("banger-mini-kernel: up"));
  vmm::Qmp qmp(h.control_socket, 2s);
  auto blocks = qmp.execute("query-block").dump();
  CHECK_THAT(blocks, Catch::Contains("/dev/fdset/"));

  // A second VM at the same time gets another uid.
  Vm other;
  other.spec.name = "isolated-mini-two";
  // Explicitly: the process umask may be 077 (the helper server tests set it).
  REQUIRE(::chmod(other.spec.kernel.c_str(), 0644) == 0);
  auto req2 = vmm::isolated_request(other.spec, false);
  auto r2 = priv::execute("launch_vmm", req2.params, {0, 0}, take(req2));
  CHECK(r2.value["uid"].get<uid_t>() != uid);
  CHECK_THAT(console_of(other.spec), Catch::Contains("banger-mini-kernel: up"));
  CHECK_THAT(fd_target(pid, 3), Catch::StartsWith("/memfd:kernel"));
  CHECK(fd_target(r2.value["pid"].get<pid_t>(), 3) == other.spec.kernel);

  for (const auto& launched : {r.value, r2.value}) {
    pid_t p = launched["pid"].get<pid_t>();
    priv::execute("signal_vmm", {{"pid", p}, {"signal", "KILL"}}, {0, 0});
    CHECK(test::eventually([&] { return !running(p); }));
    ::waitpid(p, nullptr, 0);  // our children: the in-process launch
  }
  CHECK_FALSE(vmm::alive(h));
}

TEST_CASE("signal_vmm: refuses every process that is not an isolated banger QEMU", "[priv][vmm][attack]") {
  pid_t root_sleep = spawn_sleep(0);
  pid_t range_sleep = spawn_sleep(priv::kVmmUidBase + priv::kVmmUidCount - 1);  // right uid, wrong program
  CHECK(error_code_of([&] { priv::execute("signal_vmm", {{"pid", root_sleep}, {"signal", "KILL"}}, {0, 0}); }) == "EPERM");
  CHECK(error_code_of([&] { priv::execute("signal_vmm", {{"pid", range_sleep}, {"signal", "KILL"}}, {0, 0}); }) == "EPERM");
  CHECK(error_code_of([&] { priv::execute("signal_vmm", {{"pid", 1}, {"signal", "KILL"}}, {0, 0}); }) == "EINVAL");
  CHECK(error_code_of([&] { priv::execute("signal_vmm", {{"pid", root_sleep}, {"signal", "HUP"}}, {0, 0}); }) == "EINVAL");
  CHECK(error_code_of([&] { priv::execute("signal_vmm", {{"pid", root_sleep}, {"signal", 9}}, {0, 0}); }) == "EINVAL");
  CHECK(running(root_sleep));
  CHECK(running(range_sleep));
  for (pid_t p : {root_sleep, range_sleep}) {
    ::kill(p, SIGKILL);
    ::waitpid(p, nullptr, 0);
  }
}

TEST_CASE("launch_vmm: each gate refuses its attack and starts nothing", "[priv][vmm][attack]") {
  Vm vm;
  vm.spec.name = "isolated-gates";
  auto fresh = [&] { return vmm::isolated_request(vm.spec, false); };

  SECTION("binaries: a symlink to QEMU, a group-writable copy, a shell, a relative name") {
    ::symlink("/usr/bin/qemu-system-x86_64", (vm.t / "qemu-system-x86_64").c_str());
    std::string copy_dir = vm.t / "bin";
    ::mkdir(copy_dir.c_str(), 0755);
    run_ok({"cp", "/usr/bin/qemu-system-x86_64", copy_dir + "/qemu-system-x86_64"});
    ::chmod((copy_dir + "/qemu-system-x86_64").c_str(), 0775);
    for (std::string bin : {vm.t / "qemu-system-x86_64", copy_dir + "/qemu-system-x86_64", std::string("/bin/sh"),
                            std::string("qemu-system-x86_64")}) {
      auto r = fresh();
      r.params["binary"] = bin;
      INFO(bin);
      CHECK(launch_error(r.params, take(r)) == "EPERM");
    }
  }
  SECTION("descriptors of the wrong kind or access") {
    auto with = [&](const std::function<void(json&, priv::Fds&)>& tamper) {
      auto r = fresh();
      priv::Fds fds = take(r);
      tamper(r.params, fds);
      return launch_error(r.params, std::move(fds));
    };
    auto slot = [](const json& p, const char* role) { return p[role].get<size_t>(); };
    // A directory, or a read-only descriptor, as the writable work disk.
    CHECK(with([&](json& p, priv::Fds& f) {
            f[p["disks"][1]["fd"].get<size_t>()].reset(::open(vm.t.path().c_str(), O_RDONLY | O_DIRECTORY));
          }) == "EINVAL");
    CHECK(with([&](json& p, priv::Fds& f) {
            f[p["disks"][1]["fd"].get<size_t>()].reset(::open(vm.spec.disks[1].path.c_str(), O_RDONLY));
          }) == "EINVAL");
    // A regular file, or a socket that does not listen, as QMP.
    CHECK(with([&](json& p, priv::Fds& f) { f[slot(p, "qmp")].reset(::open(vm.spec.kernel.c_str(), O_RDONLY)); }) ==
          "EINVAL");
    CHECK(with([&](json& p, priv::Fds& f) { f[slot(p, "agent")].reset(::socket(AF_UNIX, SOCK_STREAM, 0)); }) ==
          "EINVAL");
    // The forwarding port: a socket that does not listen, a datagram socket,
    // a regular file, or none at all.
    CHECK(with([&](json& p, priv::Fds& f) { f[slot(p, "forward")].reset(::socket(AF_UNIX, SOCK_STREAM, 0)); }) ==
          "EINVAL");
    CHECK(with([&](json& p, priv::Fds& f) { f[slot(p, "forward")].reset(::socket(AF_UNIX, SOCK_DGRAM, 0)); }) ==
          "EINVAL");
    CHECK(with([&](json& p, priv::Fds& f) { f[slot(p, "forward")].reset(::open(vm.spec.kernel.c_str(), O_RDONLY)); }) ==
          "EINVAL");
    CHECK(with([&](json& p, priv::Fds&) { p["forward"] = p["agent"]; }) == "EINVAL");
    CHECK(with([&](json& p, priv::Fds&) { p.erase("forward"); }) == "EINVAL");
    // /dev/null as a tap queue.
    CHECK(with([&](json& p, priv::Fds& f) {
            f.emplace_back(::open("/dev/null", O_RDWR));
            p["tap"] = f.size() - 1;
          }) == "EINVAL");
    // A descriptor named twice, one named by nobody, an index never passed.
    CHECK(with([&](json& p, priv::Fds&) { p["console"] = p["log"]; }) == "EINVAL");
    CHECK(with([&](json&, priv::Fds& f) { f.emplace_back(::open("/etc/hostname", O_RDONLY)); }) == "EINVAL");
    CHECK(with([&](json& p, priv::Fds& f) { p["kernel"] = f.size() + 3; }) == "EINVAL");
  }
  SECTION("typed fields") {
    auto with = [&](const char* key, json value) {
      auto r = fresh();
      r.params[key] = std::move(value);
      return launch_error(r.params, take(r));
    };
    CHECK(with("cmdline", "console=ttyS0\ninit=/bin/sh") == "EINVAL");
    CHECK(with("name", "../../etc") == "EINVAL");
    CHECK(with("vcpus", 0) == "EINVAL");
    CHECK(with("memory_mib", 1L << 30) == "EINVAL");
    CHECK(with("accel", "hvf") == "EINVAL");
    CHECK(with("mac", "ff:ff:ff:ff:ff:ff;x") == "EINVAL");
    CHECK(with("argv", json::array({"-monitor", "stdio"})) == "EINVAL");  // no free-form arguments at all
    auto r = fresh();
    r.params["disks"][0]["format"] = "vvfat";
    CHECK(launch_error(r.params, take(r)) == "EINVAL");
  }
  CHECK(no_isolated_qemu(vm.spec.name));
}
