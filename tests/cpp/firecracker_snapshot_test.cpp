// Snapshots and restores through the firecracker driver, against the fake:
// firecracker::snapshot (pause, create, disk layers), launch with spec.restore
// (fresh process, load with overrides, drives switched to the fork's own
// files), and the refusals on both sides.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/core/error.hpp"
#include "engine/vmm/firecracker_api.hpp"
#include "firecracker_fixture.hpp"

using namespace banger;
using namespace banger::vmm;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A VM whose disks live in its own vm_dir, as banger lays them out
// (<vm dir>/root.img, <vm dir>/work.ext4).
struct Source {
  test::FcFixture fx;
  std::unique_ptr<Driver> d = make_firecracker_driver();
  std::string snap = fx.tmp / "snap";
  Source() {
    ::mkdir(snap.c_str(), 0700);
    test::write_file(fx.vmdir + "/root.img", std::string(8192, 'r'));
    test::write_file(fx.vmdir + "/work.ext4", std::string(4096, 'w'));
    fx.spec.disks = {{"rootfs", fx.vmdir + "/root.img", "raw", false, true}, {"work", fx.vmdir + "/work.ext4", "raw", false, false}};
  }
  firecracker::SnapshotFiles files() const {
    return {snap + "/state", snap + "/ram",
            {{"rootfs", fx.vmdir + "/root.img", snap + "/rootfs.img"}, {"work", fx.vmdir + "/work.ext4", snap + "/work.img"}}};
  }
  // A fork's spec: its own id, dirs, tap and copies of the snapshot's layers.
  VmSpec fork(const std::string& name) const {
    VmSpec s = fx.spec;
    s.id = "f0" + name;
    s.vm_dir = fx.tmp / ("vm-" + name);
    s.runtime_dir = fx.tmp / ("run-" + name);
    ::mkdir(s.vm_dir.c_str(), 0700);
    ::mkdir(s.runtime_dir.c_str(), 0700);
    std::filesystem::copy_file(snap + "/rootfs.img", s.vm_dir + "/root.img");
    std::filesystem::copy_file(snap + "/work.img", s.vm_dir + "/work.ext4");
    s.disks = {{"rootfs", s.vm_dir + "/root.img", "raw", false, true}, {"work", s.vm_dir + "/work.ext4", "raw", false, false}};
    s.nics = {{"eth0", "tap-" + name, "02:fc:00:00:00:02"}};
    s.restore = RestoreSpec{snap + "/state", "file"};
    s.memory_file = snap + "/ram";
    return s;
  }
  std::vector<std::string> calls_since(size_t n) const {
    auto all = fx.call_names();
    return {all.begin() + static_cast<long>(std::min(n, all.size())), all.end()};
  }
};

std::string error_of(const std::function<void()>& fn, std::string* code = nullptr) {
  try {
    fn();
  } catch (const Error& e) {
    if (code) *code = e.code();
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("snapshot of a running VM: paused, saved, disks frozen, left paused", "[firecracker]") {
  Source src;
  Handles h = src.d->launch(src.fx.spec, {});
  size_t before = src.fx.calls().size();
  firecracker::SnapshotStats st = firecracker::snapshot(h, src.files());

  CHECK(src.calls_since(before) ==
        std::vector<std::string>{"GET /vm/config", "GET /", "PATCH /vm", "PUT /snapshot/create"});
  auto calls = src.fx.calls();
  CHECK(calls[before + 2]["body"] == json{{"state", "Paused"}});
  CHECK(calls.back()["body"] ==
        json{{"snapshot_type", "Full"}, {"snapshot_path", src.snap + "/state"}, {"mem_file_path", src.snap + "/ram"}});
  CHECK(src.d->status(h) == RunState::paused);

  // The files the fake wrote: its state (the configuration, drives as
  // recorded: relative to the VM dir) and a guest-sized memory file.
  json state = json::parse(read_all(src.snap + "/state"));
  CHECK(state["fake_firecracker_snapshot"] == 1);
  CHECK(state["saved_by"] == src.fx.spec.id);
  CHECK(state["drives"][0]["path_on_host"] == "root.img");
  CHECK(state["drives"][1]["path_on_host"] == "work.ext4");
  std::string mem = read_all(src.snap + "/ram");
  CHECK(mem.size() == 256u << 20);
  CHECK(mem.rfind("FAKE-FIRECRACKER-MEMORY\n{\"booted_by\":\"0123abcd\"", 0) == 0);

  // Disk layers equal the disks at the pause.
  CHECK(read_all(src.snap + "/rootfs.img") == std::string(8192, 'r'));
  CHECK(read_all(src.snap + "/work.img") == std::string(4096, 'w'));
  CHECK((test::mode_of(src.snap + "/rootfs.img") & 0777) == 0600);

  CHECK(st.create_ms > 0);
  CHECK(st.disks_ms >= st.disks[0].ms);
  CHECK(st.state_bytes == read_all(src.snap + "/state").size());
  CHECK(st.ram_bytes > 0);
  CHECK(st.ram_bytes < (1u << 20));  // the fake's memory file is sparse
  CHECK(st.pause_ms_so_far > 0);
  REQUIRE(st.disks.size() == 2);
  CHECK(st.disks[0].id == "rootfs");
  CHECK(st.disks[0].layer == src.snap + "/rootfs.img");
  CHECK((st.disks[0].method == "reflink" || st.disks[0].method == "sparse_copy"));
  CHECK(st.disks[1].id == "work");

  src.d->resume(h);
  CHECK(src.d->status(h) == RunState::running);
  CHECK(src.d->shutdown(h, 5s));
}

TEST_CASE("snapshot of a paused VM does not pause it again", "[firecracker]") {
  Source src;
  Handles h = src.d->launch(src.fx.spec, {});
  src.d->pause(h);
  size_t before = src.fx.calls().size();
  firecracker::snapshot(h, src.files());
  CHECK(src.calls_since(before) == std::vector<std::string>{"GET /vm/config", "GET /", "PUT /snapshot/create"});
  CHECK(src.d->status(h) == RunState::paused);
  CHECK(src.d->shutdown(h, 5s));
}

TEST_CASE("snapshot refusals: nothing paused, nothing left", "[firecracker]") {
  Source src;
  Handles h = src.d->launch(src.fx.spec, {});
  std::string code;

  firecracker::SnapshotFiles no_ram = src.files();
  no_ram.ram.clear();
  CHECK_THAT(error_of([&] { firecracker::snapshot(h, no_ram); }, &code), Catch::Contains("needs a RAM file"));
  CHECK(code == "EINVAL");

  firecracker::SnapshotFiles wrong = src.files();
  wrong.disks[0].current = src.fx.tmp / "rootfs.ext4";
  CHECK_THAT(error_of([&] { firecracker::snapshot(h, wrong); }, &code),
             Catch::Contains("drive 'rootfs' uses " + src.fx.vmdir + "/root.img, not " + src.fx.tmp / "rootfs.ext4"));
  CHECK(code == "EINVAL");

  firecracker::SnapshotFiles missing = src.files();
  missing.disks.pop_back();
  CHECK_THAT(error_of([&] { firecracker::snapshot(h, missing); }, &code),
             Catch::Contains("writable drive 'work' (" + src.fx.vmdir + "/work.ext4) is not among the snapshot's disks"));

  firecracker::SnapshotFiles unknown = src.files();
  unknown.disks[1].id = "scratch";
  CHECK_THAT(error_of([&] { firecracker::snapshot(h, unknown); }), Catch::Contains("the VM has no drive 'scratch'"));

  for (const auto& c : src.fx.calls()) CHECK(c["path"] != "/vm");  // never paused
  CHECK(src.d->status(h) == RunState::running);
  CHECK_FALSE(std::filesystem::exists(src.snap + "/state"));

  // A layer that cannot be made (it exists): the layers made are removed
  // and the VM this call paused runs again.
  test::write_file(src.snap + "/work.img", "in the way");
  CHECK_THAT(error_of([&] { firecracker::snapshot(h, src.files()); }, &code), Catch::Contains(src.snap + "/work.img"));
  CHECK(code == "EEXIST");
  CHECK_FALSE(std::filesystem::exists(src.snap + "/rootfs.img"));
  CHECK(read_all(src.snap + "/work.img") == "in the way");
  CHECK(src.d->status(h) == RunState::running);

  // A stopped VM.
  CHECK(src.d->shutdown(h, 5s));
  CHECK(error_of([&] { firecracker::snapshot(h, src.files()); }, &code) != "(no error)");
  CHECK(code == "ESRCH");
}

TEST_CASE("restore: a fresh firecracker loads the snapshot, paused, with the fork's tap and sockets", "[firecracker]") {
  Source src;
  Handles sh = src.d->launch(src.fx.spec, {});
  firecracker::snapshot(sh, src.files());
  CHECK(src.d->shutdown(sh, 5s));
  // The source is gone entirely: the snapshot does not depend on its files.
  std::filesystem::remove_all(src.fx.vmdir);
  ::unlink(src.fx.record.c_str());

  VmSpec spec = src.fork("a");
  std::vector<std::string> stages;
  Handles h = src.d->launch(spec, [&](const std::string& s, const std::string&) { stages.push_back(s); });
  CHECK(stages == std::vector<std::string>{"launch", "configure", "restore"});
  CHECK(src.fx.call_names() ==
        std::vector<std::string>{"PUT /logger", "PUT /metrics", "PUT /snapshot/load", "GET /vm/config"});
  CHECK(src.fx.calls()[2]["body"] ==
        json{{"snapshot_path", src.snap + "/state"},
             {"mem_backend", {{"backend_type", "File"}, {"backend_path", src.snap + "/ram"}}},
             {"resume_vm", false},
             {"network_overrides", json::array({{{"iface_id", "eth0"}, {"host_dev_name", "tap-a"}}})},
             {"vsock_override", {{"uds_path", spec.runtime_dir + "/fc.vsock"}}}});
  CHECK(h.control_socket == spec.runtime_dir + "/fc.sock");
  CHECK(h.agent.path == spec.runtime_dir + "/fc.vsock");
  CHECK(src.d->status(h) == RunState::paused);

  // Its devices: the snapshot's drives, now the fork's own files; the new tap and vsock socket.
  json cfg = firecracker::Api(h.control_socket).get("/vm/config");
  CHECK(cfg["drives"][0]["path_on_host"] == "root.img");
  CHECK(firecracker::block_files(h) ==
        std::map<std::string, std::string>{{"rootfs", spec.vm_dir + "/root.img"}, {"work", spec.vm_dir + "/work.ext4"}});
  CHECK(cfg["network-interfaces"][0]["host_dev_name"] == "tap-a");
  CHECK(cfg["vsock"]["uds_path"] == spec.runtime_dir + "/fc.vsock");
  CHECK(S_ISSOCK(test::mode_of(spec.runtime_dir + "/fc.vsock")));
  CHECK(cfg["machine-config"]["mem_size_mib"] == 256);

  src.d->resume(h);
  CHECK(src.d->status(h) == RunState::running);
  // A restored VM snapshots like any other; its memory still names the guest's first boot.
  firecracker::SnapshotFiles again{spec.vm_dir + "/state2", spec.vm_dir + "/ram2",
                                   {{"rootfs", spec.vm_dir + "/root.img", spec.vm_dir + "/l1"},
                                    {"work", spec.vm_dir + "/work.ext4", spec.vm_dir + "/l2"}}};
  firecracker::snapshot(h, again);
  CHECK(read_all(spec.vm_dir + "/ram2").rfind("FAKE-FIRECRACKER-MEMORY\n{\"booted_by\":\"0123abcd\",\"mem_size_mib\":256,\"saved_by\":\"f0a\"}", 0) == 0);
  CHECK(src.d->shutdown(h, 5s));
  CHECK(src.fx.no_leftover());
}

TEST_CASE("two forks of one snapshot run side by side, each on its own disk", "[firecracker]") {
  Source src;
  Handles sh = src.d->launch(src.fx.spec, {});
  firecracker::snapshot(sh, src.files());
  src.d->resume(sh);  // the source runs on

  Handles a = src.d->launch(src.fork("a"), {});
  Handles b = src.d->launch(src.fork("b"), {});
  for (const Handles* h : {&a, &b}) src.d->resume(*h);
  CHECK(src.d->status(sh) == RunState::running);
  CHECK(src.d->status(a) == RunState::running);
  CHECK(src.d->status(b) == RunState::running);
  auto fa = firecracker::block_files(a), fb = firecracker::block_files(b), fs = firecracker::block_files(sh);
  CHECK(fa["rootfs"] == src.fx.tmp / "vm-a/root.img");
  CHECK(fb["rootfs"] == src.fx.tmp / "vm-b/root.img");
  CHECK(fs["rootfs"] == src.fx.vmdir + "/root.img");
  for (const Handles* h : {&sh, &a, &b}) CHECK(src.d->shutdown(*h, 5s));
  CHECK(src.fx.no_leftover());
}

TEST_CASE("restore of a snapshot whose drives were recorded at absolute paths switches them", "[firecracker]") {
  // A VM whose disks are outside its vm_dir (or launched before drive
  // paths were relative): the snapshot names the source's files.
  test::FcFixture fx;
  auto d = make_firecracker_driver();
  fx.spec.disks[1].read_only = false;
  Handles sh = d->launch(fx.spec, {});
  std::string snap = fx.tmp / "snap";
  ::mkdir(snap.c_str(), 0700);
  firecracker::snapshot(sh, {snap + "/state", snap + "/ram",
                             {{"rootfs", fx.tmp / "rootfs.ext4", snap + "/rootfs.img"}, {"work", fx.tmp / "work.ext4", snap + "/work.img"}}});
  CHECK(d->shutdown(sh, 5s));

  VmSpec spec = fx.spec;
  spec.id = "f0fork";
  spec.vm_dir = fx.tmp / "vm-fork";
  spec.runtime_dir = fx.tmp / "run-fork";
  ::mkdir(spec.vm_dir.c_str(), 0700);
  ::mkdir(spec.runtime_dir.c_str(), 0700);
  std::filesystem::copy_file(snap + "/rootfs.img", spec.vm_dir + "/root.img");
  std::filesystem::copy_file(snap + "/work.img", spec.vm_dir + "/work.ext4");
  spec.disks[0].path = spec.vm_dir + "/root.img";
  spec.disks[1].path = spec.vm_dir + "/work.ext4";
  spec.restore = RestoreSpec{snap + "/state", "file"};
  spec.memory_file = snap + "/ram";
  ::unlink(fx.record.c_str());

  std::vector<std::string> stages;
  Handles h = d->launch(spec, [&](const std::string& s, const std::string&) { stages.push_back(s); });
  CHECK(fx.call_names() == std::vector<std::string>{"PUT /logger", "PUT /metrics", "PUT /snapshot/load", "GET /vm/config",
                                                   "PATCH /drives/rootfs", "PATCH /drives/work"});
  CHECK(fx.calls()[4]["body"] == json{{"drive_id", "rootfs"}, {"path_on_host", "root.img"}});
  CHECK(fx.calls()[4]["status"] == 204);
  CHECK(stages == std::vector<std::string>{"launch", "configure", "restore", "drive", "drive"});
  CHECK(d->status(h) == RunState::paused);
  CHECK(firecracker::block_files(h)["rootfs"] == spec.vm_dir + "/root.img");
  CHECK(d->shutdown(h, 5s));

  // Once the recorded files are gone, Firecracker cannot load it: its error, no process left.
  ::unlink((fx.tmp / "rootfs.ext4").c_str());
  std::string code;
  CHECK_THAT(error_of([&] { d->launch(spec, {}); }, &code),
             Catch::Contains("firecracker: PUT /snapshot/load: Load snapshot error: Failed to restore from snapshot: Failed to "
                             "build microVM from snapshot: Failed to restore devices: Error restoring MMIO devices: Block: "
                             "Virtio backend error: Error manipulating the backing file: No such file or directory (os error 2) " +
                             fx.tmp / "rootfs.ext4"));
  CHECK(code == "EHYPERVISOR");
  CHECK(fx.no_leftover());
  CHECK_FALSE(std::filesystem::exists(spec.runtime_dir + "/fc.sock"));
}

TEST_CASE("restore refusals end the new process and say why", "[firecracker]") {
  Source src;
  Handles sh = src.d->launch(src.fx.spec, {});
  firecracker::snapshot(sh, src.files());
  CHECK(src.d->shutdown(sh, 5s));
  std::string code;
  const std::string load = "firecracker: PUT /snapshot/load: Load snapshot error: Failed to restore from snapshot: ";

  SECTION("missing state file") {
    VmSpec s = src.fork("a");
    s.restore.state = src.snap + "/nope";
    CHECK_THAT(error_of([&] { src.d->launch(s, {}); }, &code),
               Catch::StartsWith(load + "Failed to get snapshot state from file: Failed to open snapshot file: No such file or "
                                        "directory (os error 2)"));
    CHECK(code == "EHYPERVISOR");
  }
  SECTION("missing memory file") {
    VmSpec s = src.fork("a");
    s.memory_file = src.snap + "/nope";
    CHECK_THAT(error_of([&] { src.d->launch(s, {}); }),
               Catch::StartsWith(load + "Failed to load guest memory: Error creating guest memory from file: Failed to load "
                                        "guest memory: No such file or directory (os error 2)"));
  }
  SECTION("memory file smaller than the guest") {
    VmSpec s = src.fork("a");
    ::truncate((src.snap + "/ram").c_str(), 1 << 20);
    CHECK_THAT(error_of([&] { src.d->launch(s, {}); }),
               Catch::StartsWith(load + "Failed to load guest memory: Error creating guest memory from file: Failed to restore "
                                        "guest memory: Total sum of memory regions exceeds largest possible file offset"));
  }
  SECTION("the state file given as the memory file") {
    VmSpec s = src.fork("a");
    s.memory_file = src.snap + "/state";
    CHECK_THAT(error_of([&] { src.d->launch(s, {}); }), Catch::Contains("Failed to load guest memory"));
  }
  SECTION("missing disk in the fork's dir") {
    VmSpec s = src.fork("a");
    ::unlink((s.vm_dir + "/work.ext4").c_str());
    CHECK_THAT(error_of([&] { src.d->launch(s, {}); }),
               Catch::StartsWith(load + "Failed to build microVM from snapshot: Failed to restore devices: Error restoring "
                                        "MMIO devices: Block: Virtio backend error: Error manipulating the backing file: No "
                                        "such file or directory (os error 2) work.ext4"));
  }
  SECTION("an interface the snapshot does not have") {
    VmSpec s = src.fork("a");
    s.nics[0].id = "eth1";
    CHECK_THAT(error_of([&] { src.d->launch(s, {}); }),
               Catch::StartsWith(load + "Failed to get snapshot state from file: Unknown Network Device."));
  }
  SECTION("a drive the snapshot does not have") {
    VmSpec s = src.fork("a");
    test::write_file(s.vm_dir + "/extra.img", "x");
    s.disks.push_back({"extra", s.vm_dir + "/extra.img"});
    CHECK_THAT(error_of([&] { src.d->launch(s, {}); }, &code), Catch::Contains("drive 'extra' is not in the snapshot"));
    CHECK(code == "EINVAL");
  }
  SECTION("a snapshot file that is not one") {
    VmSpec s = src.fork("a");
    test::write_file(src.snap + "/state", "not a snapshot");
    CHECK_THAT(error_of([&] { src.d->launch(s, {}); }),
               Catch::StartsWith(load + "Failed to get snapshot state from file: Failed to load snapshot state from file"));
  }
  SECTION("RAM in the state stream (QEMU's way)") {
    VmSpec s = src.fork("a");
    s.restore.ram = "stream";
    CHECK_THAT(error_of([&] { src.d->launch(s, {}); }, &code), Catch::Contains("restore.ram must be 'file'"));
    CHECK(code == "EINVAL");
  }
  CHECK(src.fx.no_leftover());
  CHECK_FALSE(std::filesystem::exists(src.fx.tmp / "run-a/fc.sock"));
  CHECK_FALSE(std::filesystem::exists(src.fx.tmp / "run-a/fc.vsock"));
}

TEST_CASE("firecracker cannot hot-plug a disk", "[firecracker]") {
  test::FcFixture fx;
  auto d = make_firecracker_driver();
  Handles h = d->launch(fx.spec, {});
  std::string code;
  CHECK_THAT(error_of([&] { firecracker::hotplug_disk(h, "ws"); }, &code),
             Catch::Contains("firecracker: cannot hot-plug disk 'ws'"));
  CHECK(code == "ENOTSUP");
  CHECK(d->status(h) == RunState::running);
  CHECK(d->shutdown(h, 5s));
}
