// Launching a VM through the firecracker driver, against fake-firecracker:
// what it sends, what happens when firecracker refuses or dies, and that a
// failed launch leaves no process behind.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <cstring>
#include <stop_token>
#include <thread>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "firecracker_fixture.hpp"

using namespace banger;
using namespace banger::vmm;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

Error launch_error(test::FcFixture& fx, const FirecrackerOptions& opts = {}) {
  auto d = make_firecracker_driver(opts);
  try {
    d->launch(fx.spec, {});
  } catch (const Error& e) {
    return e;
  }
  FAIL("launch succeeded");
  return Error("", "");
}

// A socket file nobody listens on, as a crashed firecracker leaves behind.
void make_dead_socket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  ::close(fd);
}

}  // namespace

TEST_CASE("launch configures firecracker through every endpoint with exact bodies", "[firecracker]") {
  test::FcFixture fx;
  auto d = make_firecracker_driver();
  std::vector<std::string> stages;
  Handles h = d->launch(fx.spec, [&](const std::string& s, const std::string&) { stages.push_back(s); });

  CHECK(stages == std::vector<std::string>{"launch", "configure", "start"});
  CHECK(h.driver == "firecracker");
  CHECK(h.cmdline == std::vector<std::string>{fx.spec.binary, "--api-sock", fx.api_socket(), "--id", "0123abcd"});
  CHECK(process::cmdline(h.pid) == h.cmdline);
  CHECK(h.control_socket == fx.api_socket());
  CHECK(h.agent.kind == AgentTransport::Kind::vsock_uds);
  CHECK(h.agent.path == fx.vsock_socket());
  CHECK(h.agent.cid == 3);
  CHECK(h.agent.port == 52);
  CHECK(alive(h));
  CHECK(d->status(h) == RunState::running);

  auto calls = fx.calls();
  std::vector<json> want = {
      {{"method", "PUT"}, {"path", "/logger"}, {"status", 204},
       {"body", {{"log_path", fx.vmdir + "/firecracker.log"}, {"level", "Info"}, {"show_level", true}}}},
      {{"method", "PUT"}, {"path", "/metrics"}, {"status", 204}, {"body", {{"metrics_path", fx.vmdir + "/firecracker.metrics"}}}},
      {{"method", "PUT"}, {"path", "/machine-config"}, {"status", 204}, {"body", {{"vcpu_count", 2}, {"mem_size_mib", 256}}}},
      {{"method", "PUT"}, {"path", "/boot-source"}, {"status", 204},
       {"body", {{"kernel_image_path", fx.tmp / "vmlinux"}, {"boot_args", "console=ttyS0 reboot=k panic=-1"}}}},
      {{"method", "PUT"}, {"path", "/drives/rootfs"}, {"status", 204},
       {"body", {{"drive_id", "rootfs"}, {"path_on_host", fx.tmp / "rootfs.ext4"}, {"is_root_device", true}, {"is_read_only", false}}}},
      {{"method", "PUT"}, {"path", "/drives/work"}, {"status", 204},
       {"body", {{"drive_id", "work"}, {"path_on_host", fx.tmp / "work.ext4"}, {"is_root_device", false}, {"is_read_only", true}}}},
      {{"method", "PUT"}, {"path", "/network-interfaces/eth0"}, {"status", 204},
       {"body", {{"iface_id", "eth0"}, {"host_dev_name", "tap-test0"}, {"guest_mac", "02:fc:00:00:00:01"}}}},
      {{"method", "PUT"}, {"path", "/vsock"}, {"status", 204}, {"body", {{"guest_cid", 3}, {"uds_path", fx.vsock_socket()}}}},
      {{"method", "PUT"}, {"path", "/actions"}, {"status", 204}, {"body", {{"action_type", "InstanceStart"}}}},
      {{"method", "GET"}, {"path", "/"}, {"status", 200}, {"body", nullptr}},  // the status() call above
  };
  REQUIRE(calls.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) CHECK(calls[i] == want[i]);

  // The files Firecracker expects exist, private, and its output is captured.
  CHECK((test::mode_of(fx.vmdir + "/firecracker.log") & 0777) == 0600);
  CHECK((test::mode_of(fx.vmdir + "/firecracker.metrics") & 0777) == 0600);
  CHECK(test::eventually([&] {
    std::ifstream f(fx.vmdir + "/console.log");
    return std::string(std::istreambuf_iterator<char>(f), {}).find("guest started") != std::string::npos;
  }));
  CHECK(d->shutdown(h, 5s));
}

TEST_CASE("a 400 from firecracker surfaces its fault_message and kills the process", "[firecracker]") {
  test::FcFixture fx;
  SECTION("a real validation failure: a missing disk") {
    fx.spec.disks[1].path = fx.tmp / "missing.ext4";
    Error e = launch_error(fx);
    CHECK(e.code() == "EHYPERVISOR");
    CHECK_THAT(e.what(), Catch::StartsWith("firecracker: PUT /drives/work: Drive config error:"));
    CHECK_THAT(e.what(), Catch::Contains("No such file or directory (os error 2)"));
  }
  SECTION("an injected failure") {
    test::EnvVar fail("FAKE_FC_FAIL", "/boot-source");
    test::EnvVar msg("FAKE_FC_FAIL_MESSAGE", "Boot source error: The kernel file cannot be opened: injected");
    Error e = launch_error(fx);
    CHECK(e.code() == "EHYPERVISOR");
    CHECK(std::string(e.what()) == "firecracker: PUT /boot-source: Boot source error: The kernel file cannot be opened: injected");
  }
  CHECK(fx.no_leftover());
  CHECK(test::mode_of(fx.api_socket()) == 0);  // the driver removed what the dead process left
  CHECK(test::mode_of(fx.vsock_socket()) == 0);
  auto names = fx.call_names();
  CHECK(std::find(names.begin(), names.end(), "PUT /actions") == names.end());
}

TEST_CASE("firecracker dying mid-configuration gives a clear error and leaves no process", "[firecracker]") {
  test::FcFixture fx;
  test::EnvVar die("FAKE_FC_DIE_ON", "/network-interfaces/eth0");
  Error e = launch_error(fx);
  CHECK(e.code() == "EHYPERVISOR");
  CHECK_THAT(e.what(), Catch::StartsWith("firecracker killed by signal 9 during PUT /network-interfaces/eth0"));
  CHECK_THAT(e.what(), Catch::Contains("console.log"));  // its output is quoted
  CHECK_THAT(e.what(), Catch::Contains("fake-firecracker v1.16.1: instance 0123abcd"));
  CHECK(fx.no_leftover());
  auto calls = fx.calls();
  REQUIRE_FALSE(calls.empty());
  CHECK(calls.back()["path"] == "/network-interfaces/eth0");
  CHECK(calls.back()["status"].is_null());
}

TEST_CASE("a firecracker that exits before its API socket is reported with its output", "[firecracker]") {
  test::FcFixture fx;
  test::EnvVar exit_now("FAKE_FC_EXIT_AT_START", "3");
  Error e = launch_error(fx);
  CHECK(e.code() == "EHYPERVISOR");
  CHECK_THAT(e.what(), Catch::StartsWith("firecracker exited with code 3 before its API socket was ready"));
  CHECK_THAT(e.what(), Catch::Contains("exiting at start as asked"));
  CHECK(fx.no_leftover());
}

TEST_CASE("an API socket that never appears times out and the process is killed", "[firecracker]") {
  test::FcFixture fx;
  test::EnvVar slow("FAKE_FC_START_DELAY_MS", "30000");
  FirecrackerOptions opts;
  opts.api_ready_timeout = 300ms;
  Error e = launch_error(fx, opts);
  CHECK(e.code() == "ETIMEDOUT");
  CHECK_THAT(e.what(), Catch::Contains("not ready after 300 ms"));
  CHECK(fx.no_leftover());
}

TEST_CASE("Ctrl-C during launch stops it and kills the process", "[firecracker]") {
  test::FcFixture fx;
  test::EnvVar slow("FAKE_FC_START_DELAY_MS", "30000");
  test::CancelReset reset;
  // Ctrl-C once the firecracker process exists (the launch is waiting for
  // its API socket). A jthread joins even when an assertion ends the case.
  std::atomic<bool> spawned{false};
  std::jthread interrupt([&](std::stop_token stop) {
    while (!stop.stop_requested() && !cancel::requested()) {
      if (!test::processes_with_arg(fx.tmp.path()).empty()) {
        spawned = true;
        cancel::request();
        return;
      }
      std::this_thread::sleep_for(5ms);
    }
  });
  Error e = launch_error(fx);
  interrupt.request_stop();
  interrupt.join();
  CHECK(spawned);
  CHECK(e.code() == "ECANCELED");
  CHECK(fx.no_leftover());
}

TEST_CASE("a binary that cannot be spawned fails cleanly", "[firecracker]") {
  test::FcFixture fx;
  fx.spec.binary = fx.tmp / "no-such-firecracker";
  Error e = launch_error(fx);
  CHECK(e.code() == "ENOTOOL");
  CHECK(std::string(e.what()).find("no-such-firecracker is not an executable file") != std::string::npos);
  CHECK(fx.no_leftover());
}

TEST_CASE("the API socket is private from birth", "[firecracker][security]") {
  test::FcFixture fx;
  // Even with a permissive umask in banger itself, the driver's 077 applies.
  test::Umask permissive(0);
  std::atomic<bool> started{false};
  std::atomic<int> seen{0}, loose{0};
  // Stopped and joined when the scope ends, also by a failed REQUIRE.
  std::jthread watcher([&](std::stop_token stop) {
    const std::string path = fx.api_socket();
    started = true;
    while (!stop.stop_requested()) {
      struct stat st {};
      if (::lstat(path.c_str(), &st) == 0) {
        ++seen;
        if (st.st_mode & 077) ++loose;
      }
    }
  });
  while (!started) std::this_thread::yield();  // watching before the process exists
  Handles h = make_firecracker_driver()->launch(fx.spec, {});
  // Right after it appeared (launch returns as soon as it is configured).
  struct stat st {};
  REQUIRE(::lstat(fx.api_socket().c_str(), &st) == 0);
  CHECK(test::eventually([&] { return seen > 0; }));  // a busy machine may not have run it yet
  watcher.request_stop();
  watcher.join();
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 077) == 0);
  CHECK(st.st_uid == ::geteuid());
  CHECK(loose == 0);
  CHECK((test::mode_of(fx.vsock_socket()) & 077) == 0);
  CHECK(S_ISSOCK(test::mode_of(fx.vsock_socket())));
  make_firecracker_driver()->shutdown(h, 5s);
}

TEST_CASE("stale sockets are replaced, live ones and non-sockets refused", "[firecracker][security]") {
  test::FcFixture fx;
  auto d = make_firecracker_driver();
  SECTION("a dead socket from a crashed firecracker") {
    make_dead_socket(fx.api_socket());
    make_dead_socket(fx.vsock_socket());
    Handles h = d->launch(fx.spec, {});
    CHECK(d->status(h) == RunState::running);
    SECTION("and a second launch while it runs") {
      Error e = launch_error(fx);
      CHECK(e.code() == "EBUSY");
      CHECK(d->status(h) == RunState::running);  // untouched
    }
    d->shutdown(h, 5s);
  }
  SECTION("a regular file where the socket goes") {
    test::write_file(fx.api_socket(), "precious");
    Error e = launch_error(fx);
    CHECK(e.code() == "EEXIST");
    std::ifstream f(fx.api_socket());
    CHECK(std::string(std::istreambuf_iterator<char>(f), {}) == "precious");
  }
  CHECK(fx.no_leftover());
}

TEST_CASE("the runtime dir must be private to us", "[firecracker][security]") {
  test::FcFixture fx;
  SECTION("group/other bits") {
    ::chmod(fx.runtime.c_str(), 0755);
    CHECK(launch_error(fx).code() == "EUNSAFE");
  }
  SECTION("a symlink to a private dir") {
    std::string link = fx.tmp / "run-link";
    REQUIRE(::symlink(fx.runtime.c_str(), link.c_str()) == 0);
    fx.spec.runtime_dir = link;
    CHECK(launch_error(fx).code() == "EUNSAFE");
  }
  SECTION("owned by somebody else") {
    REQUIRE(::chown(fx.runtime.c_str(), test::kNobody, test::kNobody) == 0);
    CHECK(launch_error(fx).code() == "EUNSAFE");
  }
  CHECK(fx.no_leftover());
  CHECK(fx.calls().empty());  // nothing was spawned
}

TEST_CASE("the log and metrics files are never written through a symlink", "[firecracker][security]") {
  test::FcFixture fx;
  std::string target = fx.tmp / "victim";
  test::write_file(target, "keep");
  REQUIRE(::symlink(target.c_str(), (fx.vmdir + "/firecracker.metrics").c_str()) == 0);
  Error e = launch_error(fx);
  CHECK(e.code() == "ELOOP");
  std::ifstream f(target);
  CHECK(std::string(std::istreambuf_iterator<char>(f), {}) == "keep");
  CHECK(fx.no_leftover());
}
