// The firecracker driver's request bodies and spec checks, without a process.
#include <catch2/catch.hpp>

#include "engine/core/error.hpp"
#include "engine/vmm/firecracker_config.hpp"
#include "firecracker_fixture.hpp"

using namespace banger;
using namespace banger::vmm;
using nlohmann::json;

namespace {

std::string einval_message(const VmSpec& spec) {
  try {
    firecracker::validate(spec);
  } catch (const Error& e) {
    CHECK(e.code() == "EINVAL");
    return e.what();
  }
  return "(accepted)";
}

}  // namespace

TEST_CASE("firecracker layout puts sockets in the runtime dir and files in the VM dir", "[firecracker]") {
  test::FcFixture fx;
  auto l = firecracker::layout_for(fx.spec);
  CHECK(l.api_socket == fx.runtime + "/fc.sock");
  CHECK(l.vsock_socket == fx.runtime + "/fc.vsock");
  CHECK(l.log == fx.vmdir + "/firecracker.log");
  CHECK(l.metrics == fx.vmdir + "/firecracker.metrics");
  CHECK(l.console == fx.vmdir + "/console.log");
  fx.spec.agent.kind = AgentTransport::Kind::none;
  CHECK(firecracker::layout_for(fx.spec).vsock_socket.empty());
}

TEST_CASE("firecracker boot calls carry exactly the expected bodies", "[firecracker]") {
  test::FcFixture fx;
  auto l = firecracker::layout_for(fx.spec);
  auto calls = firecracker::boot_calls(fx.spec, l);
  std::vector<firecracker::Call> want = {
      {"PUT", "/machine-config", json{{"vcpu_count", 2}, {"mem_size_mib", 256}}},
      {"PUT", "/boot-source", json{{"kernel_image_path", fx.tmp / "vmlinux"}, {"boot_args", "console=ttyS0 reboot=k panic=-1"}}},
      {"PUT", "/drives/rootfs",
       json{{"drive_id", "rootfs"}, {"path_on_host", fx.tmp / "rootfs.ext4"}, {"is_root_device", true}, {"is_read_only", false}}},
      {"PUT", "/drives/work",
       json{{"drive_id", "work"}, {"path_on_host", fx.tmp / "work.ext4"}, {"is_root_device", false}, {"is_read_only", true}}},
      {"PUT", "/network-interfaces/eth0",
       json{{"iface_id", "eth0"}, {"host_dev_name", "tap-test0"}, {"guest_mac", "02:fc:00:00:00:01"}}},
      {"PUT", "/vsock", json{{"guest_cid", 3}, {"uds_path", fx.runtime + "/fc.vsock"}}},
  };
  REQUIRE(calls.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO(want[i].path);
    CHECK(calls[i].method == want[i].method);
    CHECK(calls[i].path == want[i].path);
    CHECK(calls[i].body == want[i].body);
  }
  CHECK(firecracker::logger_call(l).body == json{{"log_path", fx.vmdir + "/firecracker.log"}, {"level", "Info"}, {"show_level", true}});
  CHECK(firecracker::metrics_call(l).body == json{{"metrics_path", fx.vmdir + "/firecracker.metrics"}});
  CHECK(firecracker::instance_start_call().body == json{{"action_type", "InstanceStart"}});

  // Optional parts are left out rather than sent empty.
  fx.spec.initrd = fx.tmp / "initrd";
  fx.spec.cmdline.clear();
  fx.spec.nics[0].mac.clear();
  calls = firecracker::boot_calls(fx.spec, l);
  CHECK(calls[1].body == json{{"kernel_image_path", fx.tmp / "vmlinux"}, {"initrd_path", fx.tmp / "initrd"}});
  CHECK(calls[4].body == json{{"iface_id", "eth0"}, {"host_dev_name", "tap-test0"}});
}

TEST_CASE("firecracker drives inside the VM dir are given relative to it", "[firecracker]") {
  test::FcFixture fx;
  // Firecracker runs with vm_dir as its working directory: a snapshot then
  // records "root.img", which a restore in another vm_dir finds there.
  CHECK(firecracker::drive_path(fx.spec, {"rootfs", fx.vmdir + "/root.img"}) == "root.img");
  CHECK(firecracker::drive_path(fx.spec, {"rootfs", fx.tmp / "rootfs.ext4"}) == fx.tmp / "rootfs.ext4");
  CHECK(firecracker::drive_path(fx.spec, {"rootfs", fx.vmdir + "/sub/root.img"}) == fx.vmdir + "/sub/root.img");
  CHECK(firecracker::drive_path(fx.spec, {"rootfs", fx.vmdir + "x/root.img"}) == fx.vmdir + "x/root.img");
  fx.spec.vm_dir += "/";
  CHECK(firecracker::drive_path(fx.spec, {"rootfs", fx.vmdir + "/root.img"}) == "root.img");
  fx.spec.disks[0].path = fx.vmdir + "/root.img";
  auto calls = firecracker::boot_calls(fx.spec, firecracker::layout_for(fx.spec));
  CHECK(calls[2].body["path_on_host"] == "root.img");
  CHECK(calls[3].body["path_on_host"] == fx.tmp / "work.ext4");
  CHECK(firecracker::resolve_drive_path("root.img", fx.vmdir + "/") == fx.vmdir + "/root.img");
  CHECK(firecracker::resolve_drive_path("/a/b.img", fx.vmdir) == "/a/b.img");
}

TEST_CASE("firecracker snapshot bodies", "[firecracker]") {
  test::FcFixture fx;
  fx.spec.restore = RestoreSpec{"/s/state", "file"};
  fx.spec.memory_file = "/s/mem";
  auto l = firecracker::layout_for(fx.spec);
  CHECK(firecracker::snapshot_create_call("/s/state", "/s/mem").body ==
        json{{"snapshot_type", "Full"}, {"snapshot_path", "/s/state"}, {"mem_file_path", "/s/mem"}});
  CHECK_THROWS_AS(firecracker::snapshot_create_call("relative", "/s/mem"), Error);
  auto load = firecracker::snapshot_load_call(fx.spec, l);
  CHECK(load.method == "PUT");
  CHECK(load.path == "/snapshot/load");
  CHECK(load.body == json{{"snapshot_path", "/s/state"},
                          {"mem_backend", {{"backend_type", "File"}, {"backend_path", "/s/mem"}}},
                          {"resume_vm", false},
                          {"network_overrides", json::array({{{"iface_id", "eth0"}, {"host_dev_name", "tap-test0"}}})},
                          {"vsock_override", {{"uds_path", fx.runtime + "/fc.vsock"}}}});
  // Without NICs or vsock, no overrides (Firecracker refuses one naming a device the snapshot lacks).
  fx.spec.nics.clear();
  fx.spec.agent.kind = AgentTransport::Kind::none;
  CHECK(firecracker::snapshot_load_call(fx.spec, firecracker::layout_for(fx.spec)).body ==
        json{{"snapshot_path", "/s/state"},
             {"mem_backend", {{"backend_type", "File"}, {"backend_path", "/s/mem"}}},
             {"resume_vm", false}});
  CHECK(firecracker::patch_drive_call("rootfs", "root.img").body == json{{"drive_id", "rootfs"}, {"path_on_host", "root.img"}});
  CHECK(firecracker::patch_drive_call("rootfs", "root.img").method == "PATCH");
  CHECK(firecracker::patch_drive_call("rootfs", "root.img").path == "/drives/rootfs");
}

TEST_CASE("after a load, each drive is switched to the restored VM's own file", "[firecracker]") {
  test::FcFixture fx;
  fx.spec.disks = {{"rootfs", fx.vmdir + "/root.img", "raw", false, true}, {"work", fx.tmp / "work.ext4", "raw", true, false}};
  auto drive = [](const std::string& id, const std::string& path, bool ro) {
    return json{{"drive_id", id}, {"path_on_host", path}, {"is_read_only", ro}, {"is_root_device", id == "rootfs"}};
  };
  // Recorded relative to the working directory, which is the new vm_dir: already there.
  json drives = json::array({drive("rootfs", "root.img", false), drive("work", fx.tmp / "work.ext4", true)});
  CHECK(firecracker::drive_switch_calls(fx.spec, drives).empty());
  // Recorded at another VM's absolute path: switched, to the relative name.
  drives[0]["path_on_host"] = "/elsewhere/vm/root.img";
  auto calls = firecracker::drive_switch_calls(fx.spec, drives);
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].path == "/drives/rootfs");
  CHECK(calls[0].body == json{{"drive_id", "rootfs"}, {"path_on_host", "root.img"}});

  auto refused = [&](const json& d) {
    try {
      firecracker::drive_switch_calls(fx.spec, d);
    } catch (const Error& e) {
      CHECK(e.code() == "EINVAL");
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  CHECK_THAT(refused(json::array({drives[0]})), Catch::Contains("drive 'work' is not in the snapshot"));
  json extra = drives;
  extra.push_back(drive("scratch", "/src/scratch.img", false));
  CHECK_THAT(refused(extra), Catch::Contains("snapshot has drive 'scratch' (/src/scratch.img)"));
  json ro = drives;
  ro[1]["is_read_only"] = false;
  CHECK_THAT(refused(ro), Catch::Contains("drive 'work' is read-write in the snapshot"));
  CHECK_THAT(refused(json::object()), Catch::Contains("no drive list"));
}

TEST_CASE("firecracker spec checks reject bad values before anything is spawned", "[firecracker]") {
  test::FcFixture fx;
  CHECK(einval_message(fx.spec) == "(accepted)");
  for (int v : {1, 2, 4, 32}) {
    VmSpec s = fx.spec;
    s.vcpus = v;
    CHECK(einval_message(s) == "(accepted)");
  }
  for (int v : {0, 3, 5, 31, 33, 34, -2}) {
    VmSpec s = fx.spec;
    s.vcpus = v;
    CHECK_THAT(einval_message(s), Catch::Contains("vcpus must be 1 or an even number up to 32"));
  }
  auto with = [&](auto change) {
    VmSpec s = fx.spec;
    change(s);
    return einval_message(s);
  };
  CHECK_THAT(with([](VmSpec& s) { s.memory_mib = 0; }), Catch::Contains("memory"));
  CHECK_THAT(with([](VmSpec& s) { s.id = "bad_id"; }), Catch::Contains("VM id"));
  CHECK_THAT(with([](VmSpec& s) { s.id = std::string(65, 'a'); }), Catch::Contains("VM id"));
  CHECK_THAT(with([](VmSpec& s) { s.kernel = "vmlinux"; }), Catch::Contains("kernel must be an absolute path"));
  CHECK_THAT(with([](VmSpec& s) { s.runtime_dir = "run"; }), Catch::Contains("runtime_dir"));
  CHECK_THAT(with([](VmSpec& s) { s.disks[0].id = "root-fs"; }), Catch::Contains("drive id 'root-fs'"));
  CHECK_THAT(with([](VmSpec& s) { s.disks[1].id = "rootfs"; }), Catch::Contains("used twice"));
  CHECK_THAT(with([](VmSpec& s) { s.disks[1].root = true; }), Catch::Contains("more than one root drive"));
  CHECK_THAT(with([](VmSpec& s) { s.disks[0].format = "qcow2"; }), Catch::Contains("raw only"));
  CHECK_THAT(with([](VmSpec& s) { s.nics[0].mac = "02:fc:00:00:00"; }), Catch::Contains("MAC address"));
  CHECK_THAT(with([](VmSpec& s) { s.nics[0].id = "eth-0"; }), Catch::Contains("network interface id"));
  CHECK_THAT(with([](VmSpec& s) { s.nics[0].tap = std::string(16, 't'); }), Catch::Contains("tap name"));
  CHECK_THAT(with([](VmSpec& s) { s.agent.cid = 2; }), Catch::Contains("CID must be >= 3"));
  CHECK_THAT(with([](VmSpec& s) { s.agent.kind = AgentTransport::Kind::serial_socket; }), Catch::Contains("vsock_uds"));
  CHECK_THAT(with([&](VmSpec& s) { s.agent.path = fx.tmp / "elsewhere.vsock"; }), Catch::Contains("directly inside runtime_dir"));
  CHECK_THAT(with([](VmSpec& s) { s.runtime_dir = "/" + std::string(120, 'r'); }), Catch::Contains("too long"));
  CHECK_THAT(with([](VmSpec& s) { s.memory_file = "/x/ram"; }), Catch::Contains("memory_file is for restores only"));
}

TEST_CASE("firecracker restore specs: state and RAM files, no boot fields needed", "[firecracker]") {
  test::FcFixture fx;
  VmSpec r = fx.spec;
  r.restore = RestoreSpec{fx.tmp / "snap/state", "file"};
  r.memory_file = fx.tmp / "snap/ram";
  r.kernel.clear();  // vCPUs, memory and kernel come from the snapshot
  r.vcpus = 0;
  r.memory_mib = 0;
  CHECK(einval_message(r) == "(accepted)");
  auto with = [&](auto change) {
    VmSpec s = r;
    change(s);
    return einval_message(s);
  };
  CHECK_THAT(with([](VmSpec& s) { s.restore.state = "state"; }), Catch::Contains("restore.state must be an absolute path"));
  CHECK_THAT(with([](VmSpec& s) { s.restore.ram = "stream"; }), Catch::Contains("restore.ram must be 'file'"));
  CHECK_THAT(with([](VmSpec& s) { s.memory_file.clear(); }), Catch::Contains("a restore needs memory_file"));
  CHECK_THAT(with([](VmSpec& s) { s.memory_file = "ram"; }), Catch::Contains("memory_file must be an absolute path"));
  CHECK_THAT(with([](VmSpec& s) { s.memory_shared = false; }), Catch::Equals("(accepted)"));  // always private
  // Disks and NICs are still checked: they are what the restored VM uses.
  CHECK_THAT(with([](VmSpec& s) { s.disks[0].path = "root.img"; }), Catch::Contains("drive rootfs must be an absolute path"));
  CHECK_THAT(with([](VmSpec& s) { s.nics[0].tap.clear(); }), Catch::Contains("tap name"));
  CHECK_THAT(with([](VmSpec& s) { s.id = "bad_id"; }), Catch::Contains("VM id"));
}
