// fake-firecracker on its own: it must hold the driver to Firecracker's
// rules, so its state machine and body checks are tested directly.
#include <catch2/catch.hpp>

#include <signal.h>

#include <tuple>

#include "engine/core/error.hpp"
#include "engine/vmm/firecracker_api.hpp"
#include "engine/vmm/http_unix.hpp"
#include "firecracker_fixture.hpp"

using namespace banger;
using namespace banger::vmm;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const char* kPostBoot = "The requested operation is not supported after starting the microVM.";
const char* kPreBoot = "The requested operation is not supported before starting the microVM.";

// A fake-firecracker spawned by the test, killed at the end.
struct Fake {
  test::FcFixture& fx;
  process::Child child;
  firecracker::Api api;
  explicit Fake(test::FcFixture& f, std::vector<std::string> extra = {})
      : fx(f), api(f.api_socket()) {
    process::SpawnOptions so;
    so.argv = {f.spec.binary, "--api-sock", f.api_socket(), "--id", "fake-test"};
    so.argv.insert(so.argv.end(), extra.begin(), extra.end());
    so.out = process::Stdio::file(f.tmp / "fake.out");
    so.err = process::Stdio::file(f.tmp / "fake.out");
    child = process::spawn(so);
    REQUIRE(test::eventually([&] { return http::can_connect(f.api_socket()); }));
  }
  ~Fake() {
    child.kill(SIGKILL);
    child.wait();
  }
  // The fault message of a request that must fail ("" if it succeeded).
  std::string fault(const std::string& method, const std::string& path, const json& body) {
    try {
      if (method == "PUT") api.put(path, body);
      if (method == "PATCH") api.patch(path, body);
      if (method == "GET") api.get(path);
    } catch (const Error& e) {
      std::string prefix = "firecracker: " + method + " " + path + ": ";
      std::string msg = e.what();
      return msg.rfind(prefix, 0) == 0 ? msg.substr(prefix.size()) : msg;
    }
    return "";
  }
  void configure() {
    std::string t = fx.tmp.path();
    api.put("/boot-source", {{"kernel_image_path", t + "/vmlinux"}});
    api.put("/drives/rootfs", {{"drive_id", "rootfs"}, {"path_on_host", t + "/rootfs.ext4"}, {"is_root_device", true}, {"is_read_only", false}});
  }
  void start() { api.put("/actions", {{"action_type", "InstanceStart"}}); }
};

}  // namespace

TEST_CASE("fake: GET / answers the instance info", "[firecracker]") {
  test::FcFixture fx;
  Fake f(fx);
  json info = f.api.get("/");
  CHECK(info == json{{"id", "fake-test"}, {"state", "Not started"}, {"vmm_version", "1.16.1"}, {"app_name", "Firecracker"}});
  CHECK(f.api.get("/version") == json{{"firecracker_version", "1.16.1"}});
  CHECK(f.api.get("/machine-config")["vcpu_count"] == 1);
  f.configure();
  f.start();
  CHECK(f.api.get("/")["state"] == "Running");
  json cfg = f.api.get("/vm/config");
  CHECK(cfg["drives"][0]["drive_id"] == "rootfs");
  CHECK(cfg["boot-source"]["kernel_image_path"] == fx.tmp / "vmlinux");
}

TEST_CASE("fake: answers with Firecracker's status codes", "[firecracker]") {
  test::FcFixture fx;
  Fake f(fx);
  auto raw = [&](const std::string& method, const std::string& path, const std::string& body) {
    return http::request(fx.api_socket(), {method, path, body, 2s});
  };
  CHECK(raw("GET", "/", "").status == 200);
  CHECK(raw("PUT", "/machine-config", R"({"vcpu_count":2,"mem_size_mib":512})").status == 204);
  auto bad = raw("PUT", "/machine-config", R"({"vcpu_count":0,"mem_size_mib":512})");
  CHECK(bad.status == 400);
  CHECK(json::parse(bad.body).contains("fault_message"));
  // Firecracker answers unknown paths with 400 (not 404) and this message.
  auto unknown = raw("GET", "/no/such", "");
  CHECK(unknown.status == 400);
  CHECK(json::parse(unknown.body)["fault_message"] == "Invalid request method and/or path: GET no.");
  CHECK(json::parse(raw("PUT", "/machine-config", "").body)["fault_message"] == "Empty PUT request.");
  CHECK(json::parse(raw("PATCH", "/vm", "").body)["fault_message"] == "Empty PATCH request.");
  CHECK(raw("PUT", "/machine-config", "{not json").status == 400);
}

TEST_CASE("fake: configuration after InstanceStart is refused like Firecracker", "[firecracker]") {
  test::FcFixture fx;
  Fake f(fx);
  f.configure();
  f.start();
  std::string t = fx.tmp.path();
  CHECK(f.fault("PUT", "/actions", {{"action_type", "InstanceStart"}}) == kPostBoot);
  CHECK(f.fault("PUT", "/boot-source", {{"kernel_image_path", t + "/vmlinux"}}) == kPostBoot);
  CHECK(f.fault("PUT", "/machine-config", {{"vcpu_count", 2}, {"mem_size_mib", 64}}) == kPostBoot);
  CHECK(f.fault("PUT", "/drives/work",
                {{"drive_id", "work"}, {"path_on_host", t + "/work.ext4"}, {"is_root_device", false}, {"is_read_only", true}}) == kPostBoot);
  CHECK(f.fault("PUT", "/network-interfaces/eth0", {{"iface_id", "eth0"}, {"host_dev_name", "tap0"}}) == kPostBoot);
  CHECK(f.fault("PUT", "/vsock", {{"guest_cid", 3}, {"uds_path", fx.vsock_socket()}}) == kPostBoot);
  CHECK(f.fault("PUT", "/logger", {{"log_path", t + "/log"}}) == kPostBoot);
  CHECK(f.fault("PUT", "/metrics", {{"metrics_path", t + "/metrics"}}) == kPostBoot);
  CHECK(f.fault("PUT", "/snapshot/load", {{"snapshot_path", "/s"}, {"mem_file_path", "/m"}}) == kPostBoot);
}

TEST_CASE("fake: InstanceStart needs a kernel and a root drive", "[firecracker]") {
  test::FcFixture fx;
  Fake f(fx);
  json start{{"action_type", "InstanceStart"}};
  CHECK(f.fault("PUT", "/actions", start) == "Start microvm error: Cannot start microvm without kernel configuration.");
  f.api.put("/boot-source", {{"kernel_image_path", fx.tmp / "vmlinux"}});
  CHECK_THAT(f.fault("PUT", "/actions", start), Catch::Contains("requires a root block device"));
  CHECK(f.api.get("/")["state"] == "Not started");
  f.api.put("/drives/rootfs", {{"drive_id", "rootfs"}, {"path_on_host", fx.tmp / "rootfs.ext4"}, {"is_root_device", true}, {"is_read_only", false}});
  CHECK(f.fault("PUT", "/actions", start) == "");
}

TEST_CASE("fake: runtime operations only after start, snapshots only when paused", "[firecracker]") {
  test::FcFixture fx;
  Fake f(fx);
  json snap{{"snapshot_type", "Full"}, {"snapshot_path", fx.tmp / "s"}, {"mem_file_path", fx.tmp / "m"}};
  CHECK(f.fault("PATCH", "/vm", {{"state", "Paused"}}) == kPreBoot);
  CHECK(f.fault("PUT", "/actions", {{"action_type", "SendCtrlAltDel"}}) == kPreBoot);
  CHECK(f.fault("PUT", "/actions", {{"action_type", "FlushMetrics"}}) == kPreBoot);
  CHECK(f.fault("PUT", "/snapshot/create", snap) == kPreBoot);
  f.configure();
  f.start();
  CHECK(f.fault("PUT", "/snapshot/create", snap) ==
        "Create snapshot error: Cannot save the microVM state: Operation not allowed: save/restore unavailable while running");
  CHECK(f.fault("PATCH", "/vm", {{"state", "Stopped"}}) ==
        "An error occurred when deserializing the json body of a request: unknown variant `Stopped`, expected one of `Paused`, `Resumed`.");
  CHECK(f.fault("PATCH", "/vm", {{"state", "Paused"}}) == "");
  CHECK(f.api.get("/")["state"] == "Paused");
  CHECK(f.fault("PUT", "/snapshot/create", snap) == "");
  CHECK(f.fault("PUT", "/snapshot/bogus", snap) == "Invalid request method and/or path: PUT /snapshot/bogus.");
}

TEST_CASE("fake: snapshot load only on a fresh process", "[firecracker]") {
  test::FcFixture fx;
  Fake f(fx);
  json load{{"snapshot_path", fx.tmp / "s"}, {"mem_backend", {{"backend_type", "File"}, {"backend_path", fx.tmp / "m"}}}};
  f.api.put("/logger", {{"log_path", fx.tmp / "vmlinux"}});  // logger and metrics are allowed before a load
  f.api.put("/machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 128}});
  CHECK(f.fault("PUT", "/snapshot/load", load) ==
        "Load snapshot error: Loading a microVM snapshot not allowed after configuring boot-specific resources.");
  json both = load;
  both["mem_file_path"] = "/m";
  CHECK(f.fault("PUT", "/snapshot/load", both) ==
        "An error occurred when deserializing the json body of a request: too many fields: either `mem_backend` or "
        "`mem_file_path` exclusively is required.");
  CHECK(f.fault("PUT", "/snapshot/load", {{"snapshot_path", "/s"}}) ==
        "An error occurred when deserializing the json body of a request: missing field: either `mem_backend` or "
        "`mem_file_path` is required.");
}

TEST_CASE("fake: request bodies are validated like Firecracker's", "[firecracker]") {
  test::FcFixture fx;
  Fake f(fx);
  const std::string de = "An error occurred when deserializing the json body of a request: ";
  std::string t = fx.tmp.path();
  json drive{{"drive_id", "rootfs"}, {"path_on_host", t + "/rootfs.ext4"}, {"is_root_device", true}, {"is_read_only", false}};

  CHECK(f.fault("PUT", "/machine-config", {{"mem_size_mib", 128}}) == de + "missing field `vcpu_count`.");
  CHECK(f.fault("PUT", "/machine-config", {{"vcpu_count", "2"}, {"mem_size_mib", 128}}) ==
        de + "invalid type: string \"2\", expected u8.");
  CHECK(f.fault("PUT", "/machine-config", {{"vcpu_count", 300}, {"mem_size_mib", 128}}) ==
        de + "invalid value: integer `300`, expected u8.");
  CHECK_THAT(f.fault("PUT", "/machine-config", {{"vcpu_count", 2}, {"mem_size_mib", 128}, {"vcpus", 2}}),
             Catch::StartsWith(de + "unknown field `vcpus`"));
  const std::string vcpu_msg =
      "Machine config error: The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even number if SMT is enabled.";
  CHECK(f.fault("PUT", "/machine-config", {{"vcpu_count", 0}, {"mem_size_mib", 128}}) == vcpu_msg);
  CHECK(f.fault("PUT", "/machine-config", {{"vcpu_count", 33}, {"mem_size_mib", 128}}) == vcpu_msg);
  CHECK(f.fault("PUT", "/machine-config", {{"vcpu_count", 3}, {"mem_size_mib", 128}, {"smt", true}}) == vcpu_msg);
  CHECK(f.fault("PUT", "/machine-config", {{"vcpu_count", 3}, {"mem_size_mib", 128}}) == "");  // odd is fine without SMT
  CHECK(f.fault("PUT", "/machine-config", {{"vcpu_count", 2}, {"mem_size_mib", 0}}) ==
        "Machine config error: The memory size (MiB) is either 0, or not a multiple of the configured page size.");

  CHECK(f.fault("PUT", "/boot-source", {{"kernel_image_path", t + "/nope"}}) ==
        "Boot source error: The kernel file cannot be opened: No such file or directory (os error 2)");
  CHECK(f.fault("PUT", "/boot-source", {{"boot_args", "x"}}) == de + "missing field `kernel_image_path`.");

  CHECK(f.fault("PUT", "/drives/other", drive) == "The id from the path does not match the id from the body!");
  CHECK(f.fault("PUT", "/drives/root-fs", drive) == "API Resource IDs can only contain alphanumeric characters and underscores.");
  CHECK(f.fault("PUT", "/drives/rootfs", {{"drive_id", "rootfs"}, {"path_on_host", t + "/rootfs.ext4"}}) ==
        de + "missing field `is_root_device`.");
  CHECK(f.fault("PUT", "/drives/rootfs", drive) == "");
  json second = drive;
  second["drive_id"] = "work";
  second["path_on_host"] = t + "/work.ext4";
  CHECK(f.fault("PUT", "/drives/work", second) == "Drive config error: A root block device already exists!");
  CHECK(f.fault("PUT", "/drives/rootfs", drive) == "");  // updating the root drive itself is fine
  second["is_root_device"] = false;
  second["path_on_host"] = t + "/missing.ext4";
  CHECK_THAT(f.fault("PUT", "/drives/work", second), Catch::Contains("No such file or directory (os error 2)"));

  CHECK(f.fault("PUT", "/network-interfaces/eth0", {{"iface_id", "eth1"}, {"host_dev_name", "tap0"}}) ==
        "The id from the path [eth0] does not match the id from the body [eth1]!");
  CHECK(f.fault("PUT", "/network-interfaces/eth0", {{"iface_id", "eth0"}, {"host_dev_name", "tap0"}, {"guest_mac", "zz"}}) ==
        de + "invalid value: string \"zz\", expected a MAC address.");

  CHECK_THAT(f.fault("PUT", "/vsock", {{"guest_cid", 2}, {"uds_path", fx.vsock_socket()}}), Catch::Contains("guest_cid must be >= 3"));
  CHECK(f.fault("PUT", "/vsock", {{"guest_cid", 3}}) == de + "missing field `uds_path`.");
  test::write_file(fx.tmp / "occupied", "");
  CHECK_THAT(f.fault("PUT", "/vsock", {{"guest_cid", 3}, {"uds_path", t + "/occupied"}}),
             Catch::EndsWith("Error binding to the host-side Unix socket: Address already in use (os error 98)"));

  CHECK(f.fault("PUT", "/metrics", {{"metrics_path", t + "/missing"}}) ==
        "Metrics error: Cannot initialize the metrics system due to bad user input: No such file or directory (os error 2)");
  CHECK(f.fault("PUT", "/metrics", {{"metrics_path", t + "/work.ext4"}}) == "");
  CHECK(f.fault("PUT", "/metrics", {{"metrics_path", t + "/work.ext4"}}) ==
        "Metrics error: Cannot initialize the metrics system due to bad user input: Reinitialization of metrics not allowed.");
  CHECK(f.fault("PUT", "/logger", {{"log_path", t + "/vmlinux"}, {"level", "debug"}}) == "");
  CHECK_THAT(f.fault("PUT", "/logger", {{"log_path", t + "/vmlinux"}}), Catch::Contains("only once"));
  CHECK(f.fault("PUT", "/actions", {{"action_type", "Reboot"}}) ==
        de + "unknown variant `Reboot`, expected one of `FlushMetrics`, `InstanceStart`, `SendCtrlAltDel`.");
}

TEST_CASE("fake: Ctrl-Alt-Del ends the process like a guest reset", "[firecracker]") {
  test::FcFixture fx;
  Fake f(fx);
  f.configure();
  f.start();
  f.api.patch("/vm", {{"state", "Paused"}});
  f.api.put("/actions", {{"action_type", "SendCtrlAltDel"}});
  // A paused guest cannot react; it resets once resumed.
  CHECK_FALSE(f.child.wait(200ms).has_value());
  f.api.patch("/vm", {{"state", "Resumed"}});
  auto st = f.child.wait(5s);
  REQUIRE(st.has_value());
  CHECK(st->exited);
  CHECK(st->code == 0);
}

TEST_CASE("fake: its command line is Firecracker's", "[firecracker]") {
  test::FcFixture fx;
  auto run = [&](std::vector<std::string> args) {
    process::SpawnOptions so;
    so.argv = {fx.spec.binary};
    so.argv.insert(so.argv.end(), args.begin(), args.end());
    return process::run(so, {}, 5s);
  };
  auto v = run({"--version"});
  CHECK(v.status.code == 0);
  CHECK_THAT(v.out, Catch::StartsWith("Firecracker v1.16.1"));
  auto unknown = run({"--frobnicate"});
  CHECK(unknown.status.code == 153);
  CHECK_THAT(unknown.err, Catch::Contains("--frobnicate"));
  auto bad_id = run({"--api-sock", fx.api_socket(), "--id", "no_underscores"});
  CHECK(bad_id.status.code != 0);
  CHECK_THAT(bad_id.err, Catch::Contains("Invalid instance ID"));
  test::write_file(fx.api_socket(), "");
  auto in_use = run({"--api-sock", fx.api_socket()});
  CHECK(in_use.status.code == 1);
  CHECK_THAT(in_use.err, Catch::Contains("FailedToBindSocket"));
  // Flags it does not model are accepted and ignored.
  ::unlink(fx.api_socket().c_str());
  Fake f(fx, {"--no-seccomp", "--level", "Debug", "--boot-timer"});
  CHECK(f.api.get("/")["state"] == "Not started");
}

TEST_CASE("fake: the API socket's mode comes from the process umask", "[firecracker][security]") {
  // The control for "the API socket is private from birth": like Firecracker,
  // the fake never chmods its socket, so only the umask the driver sets keeps
  // it private. Spawned here with umask 0, it is open to everyone.
  test::FcFixture fx;
  process::Child c = [&] {
    test::Umask open_to_all(0);
    process::SpawnOptions so;
    so.argv = {fx.spec.binary, "--api-sock", fx.api_socket()};
    so.umask = 0;
    so.out = process::Stdio::null();
    return process::spawn(so);
  }();
  REQUIRE(test::eventually([&] { return http::can_connect(fx.api_socket()); }));
  CHECK((test::mode_of(fx.api_socket()) & 0777) == 0777);
  c.kill(SIGKILL);
  c.wait();
}

TEST_CASE("fake: PATCH /drives switches a started VM's drive, with Firecracker's errors", "[firecracker]") {
  test::FcFixture fx;
  Fake f(fx);
  std::string t = fx.tmp.path();
  json patch{{"drive_id", "rootfs"}, {"path_on_host", t + "/work.ext4"}};
  CHECK(f.fault("PATCH", "/drives/rootfs", patch) == kPreBoot);
  f.configure();
  f.start();
  const std::string prefix = "Drive config error: Unable to patch the block device: ";
  const std::string suffix = " Please verify the request arguments.";
  CHECK(f.fault("PATCH", "/drives/other", patch) == "The id from the path does not match the id from the body!");
  CHECK(f.fault("PATCH", "/drives/work", {{"drive_id", "work"}, {"path_on_host", t + "/work.ext4"}}) ==
        prefix + "Failed perform action on device: Device not found" + suffix);
  CHECK(f.fault("PATCH", "/drives/rootfs", {{"drive_id", "rootfs"}, {"path_on_host", t + "/nope"}}) ==
        prefix + "Block: Virtio backend error: Error manipulating the backing file: No such file or directory (os error 2) " + t +
            "/nope" + suffix);
  CHECK(f.fault("PATCH", "/drives/rootfs", {{"drive_id", "rootfs"}}) == prefix + "Block: Running method expected different backend." + suffix);
  CHECK_THAT(f.fault("PATCH", "/drives/rootfs", {{"drive_id", "rootfs"}, {"is_read_only", true}}),
             Catch::StartsWith("An error occurred when deserializing the json body of a request: unknown field `is_read_only`"));
  CHECK(f.api.get("/vm/config")["drives"][0]["path_on_host"] == t + "/rootfs.ext4");
  f.api.patch("/vm", {{"state", "Paused"}});  // allowed while paused too
  CHECK(f.fault("PATCH", "/drives/rootfs", patch) == "");
  CHECK(f.api.get("/vm/config")["drives"][0]["path_on_host"] == t + "/work.ext4");
}

TEST_CASE("fake: a loaded snapshot is paused, runs once resumed, and is past configuration", "[firecracker]") {
  test::FcFixture fx;
  std::string snap = fx.tmp / "s", mem = fx.tmp / "m";
  {
    Fake f(fx);
    f.configure();
    f.api.put("/vsock", {{"guest_cid", 3}, {"uds_path", fx.vsock_socket()}});
    f.start();
    f.api.patch("/vm", {{"state", "Paused"}});
    f.api.put("/snapshot/create", {{"snapshot_path", snap}, {"mem_file_path", mem}});
    CHECK(f.api.get("/")["state"] == "Paused");
  }
  ::unlink(fx.vsock_socket().c_str());
  ::unlink(fx.api_socket().c_str());
  json load{{"snapshot_path", snap}, {"mem_backend", {{"backend_type", "File"}, {"backend_path", mem}}},
            {"vsock_override", {{"uds_path", fx.runtime + "/other.vsock"}}}};
  Fake f(fx);
  f.api.put("/metrics", {{"metrics_path", fx.tmp / "vmlinux"}});
  CHECK(f.fault("PUT", "/snapshot/load", load) == "");
  CHECK(f.api.get("/")["state"] == "Paused");
  CHECK(f.api.get("/vm/config")["vsock"]["uds_path"] == fx.runtime + "/other.vsock");
  CHECK(f.api.get("/vm/config")["boot-source"]["kernel_image_path"] == "");
  CHECK(f.fault("PUT", "/snapshot/load", load) == kPostBoot);
  CHECK(f.fault("PUT", "/actions", {{"action_type", "InstanceStart"}}) == kPostBoot);
  CHECK(f.fault("PUT", "/boot-source", {{"kernel_image_path", fx.tmp / "vmlinux"}}) == kPostBoot);
  CHECK(f.fault("PATCH", "/vm", {{"state", "Resumed"}}) == "");
  CHECK(f.api.get("/")["state"] == "Running");
}

TEST_CASE("fake: overrides naming devices the snapshot lacks are refused and end the process", "[firecracker]") {
  test::FcFixture fx;
  std::string snap = fx.tmp / "s", mem = fx.tmp / "m";
  {
    Fake f(fx);
    f.configure();  // no vsock, no NIC
    f.start();
    f.api.patch("/vm", {{"state", "Paused"}});
    f.api.put("/snapshot/create", {{"snapshot_path", snap}, {"mem_file_path", mem}});
  }
  json load{{"snapshot_path", snap}, {"mem_backend", {{"backend_type", "File"}, {"backend_path", mem}}}};
  const std::string prefix = "Load snapshot error: Failed to restore from snapshot: Failed to get snapshot state from file: ";
  for (const auto& [field, value, message] :
       {std::tuple{"network_overrides", json::array({{{"iface_id", "eth0"}, {"host_dev_name", "tap0"}}}), "Unknown Network Device."},
        std::tuple{"vsock_override", json{{"uds_path", fx.vsock_socket()}}, "Unknown Vsock Device."}}) {
    ::unlink(fx.api_socket().c_str());
    Fake f(fx);
    json l = load;
    l[field] = value;
    CHECK(f.fault("PUT", "/snapshot/load", l) == prefix + message);
    // Firecracker ends a process whose load failed.
    CHECK(test::eventually([&] { return f.child.try_wait().has_value(); }));
  }
}
