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

TEST_CASE("firecracker snapshot bodies", "[firecracker]") {
  test::FcFixture fx;
  auto l = firecracker::layout_for(fx.spec);
  CHECK(firecracker::snapshot_create_call("/s/state", "/s/mem").body ==
        json{{"snapshot_type", "Full"}, {"snapshot_path", "/s/state"}, {"mem_file_path", "/s/mem"}});
  auto load = firecracker::snapshot_load_call(fx.spec, l, "/s/state", "/s/mem", {});
  CHECK(load.path == "/snapshot/load");
  CHECK(load.body == json{{"snapshot_path", "/s/state"},
                          {"mem_backend", {{"backend_type", "File"}, {"backend_path", "/s/mem"}}},
                          {"resume_vm", true}});
  firecracker::RestoreOptions all{false, true, true};
  CHECK(firecracker::snapshot_load_call(fx.spec, l, "/s/state", "/s/mem", all).body ==
        json{{"snapshot_path", "/s/state"},
             {"mem_backend", {{"backend_type", "File"}, {"backend_path", "/s/mem"}}},
             {"resume_vm", false},
             {"network_overrides", json::array({{{"iface_id", "eth0"}, {"host_dev_name", "tap-test0"}}})},
             {"vsock_override", {{"uds_path", fx.runtime + "/fc.vsock"}}}});
  CHECK_THROWS_AS(firecracker::snapshot_create_call("relative", "/s/mem"), Error);
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
}
