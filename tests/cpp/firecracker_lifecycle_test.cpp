// A launched VM through the firecracker driver: status, pause/resume,
// shutdown, snapshots; every call reconnects through the Handles only.
#include <catch2/catch.hpp>

#include <signal.h>

#include "engine/core/error.hpp"
#include "engine/vmm/firecracker_api.hpp"
#include "firecracker_fixture.hpp"

using namespace banger;
using namespace banger::vmm;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

json last_call(const test::FcFixture& fx, const std::string& path) {
  json found;
  for (const auto& c : fx.calls()) {
    if (c["path"] == path) found = c;
  }
  return found;
}

}  // namespace

TEST_CASE("status follows the VM: running, paused, stopped", "[firecracker]") {
  test::FcFixture fx;
  auto d = make_firecracker_driver();
  Handles h = d->launch(fx.spec, {});
  CHECK(d->status(h) == RunState::running);
  d->pause(h);
  CHECK(last_call(fx, "/vm")["body"] == json{{"state", "Paused"}});
  CHECK(d->status(h) == RunState::paused);
  d->pause(h);  // pausing twice is fine, as in Firecracker
  d->resume(h);
  CHECK(last_call(fx, "/vm")["body"] == json{{"state", "Resumed"}});
  CHECK(d->status(h) == RunState::running);

  ::kill(h.pid, SIGKILL);
  CHECK(test::eventually([&] { return d->status(h) == RunState::stopped; }));
  CHECK_THROWS_WITH(d->pause(h), Catch::Contains("is not running"));
  try {
    d->resume(h);
    FAIL("resume of a stopped VM");
  } catch (const Error& e) {
    CHECK(e.code() == "ESRCH");
  }
  CHECK(fx.no_leftover());  // status() reaped the zombie of our own child
}

TEST_CASE("a fresh driver reconnects through recorded handles", "[firecracker]") {
  test::FcFixture fx;
  Handles h = make_firecracker_driver()->launch(fx.spec, {});
  auto other = make_firecracker_driver();  // as a later banger process would
  CHECK(other->status(h) == RunState::running);
  CHECK(other->shutdown(h, 5s));
  Handles wrong = h;
  wrong.driver = "qemu";
  CHECK_THROWS_WITH(other->status(wrong), Catch::Contains("driver 'qemu'"));
}

TEST_CASE("shutdown sends Ctrl-Alt-Del and the guest stops by itself", "[firecracker]") {
  test::FcFixture fx;
  auto d = make_firecracker_driver();
  Handles h = d->launch(fx.spec, {});
  CHECK(d->shutdown(h, 5s));
  CHECK(last_call(fx, "/actions")["body"] == json{{"action_type", "SendCtrlAltDel"}});
  CHECK_FALSE(alive(h));
  CHECK(d->status(h) == RunState::stopped);
  CHECK(fx.no_leftover());
  CHECK(d->shutdown(h, 1s));  // already stopped: nothing to do
}

TEST_CASE("shutdown of a paused VM resumes it first", "[firecracker]") {
  test::FcFixture fx;
  auto d = make_firecracker_driver();
  Handles h = d->launch(fx.spec, {});
  d->pause(h);
  CHECK(d->shutdown(h, 5s));
  auto names = fx.call_names();
  std::vector<std::string> tail(names.end() - 3, names.end());
  CHECK(tail == std::vector<std::string>{"GET /", "PATCH /vm", "PUT /actions"});
  CHECK(last_call(fx, "/vm")["body"] == json{{"state", "Resumed"}});
  CHECK(fx.no_leftover());
}

TEST_CASE("shutdown kills a guest that ignores Ctrl-Alt-Del once the grace period is over", "[firecracker]") {
  test::FcFixture fx;
  test::EnvVar deaf("FAKE_FC_IGNORE_CTRL_ALT_DEL", "1");
  auto d = make_firecracker_driver();
  Handles h = d->launch(fx.spec, {});
  CHECK_FALSE(d->shutdown(h, 200ms));
  CHECK(last_call(fx, "/actions")["body"] == json{{"action_type", "SendCtrlAltDel"}});
  CHECK_FALSE(alive(h));
  CHECK(fx.no_leftover());
}

TEST_CASE("shutdown never signals a process that is not the recorded hypervisor", "[firecracker][security]") {
  test::FcFixture fx;
  // A recycled pid: same number, another program.
  process::SpawnOptions so;
  so.argv = {"sleep", "30"};
  process::Child other = process::spawn(so);
  Handles h;
  h.driver = "firecracker";
  h.pid = other.pid();
  h.cmdline = {fx.spec.binary, "--api-sock", fx.api_socket(), "--id", fx.spec.id};
  h.control_socket = fx.api_socket();
  auto d = make_firecracker_driver();
  CHECK(d->shutdown(h, 100ms));
  CHECK(d->status(h) == RunState::stopped);
  CHECK_FALSE(other.try_wait().has_value());  // still running
  other.kill(SIGKILL);
  other.wait();
}

TEST_CASE("snapshot create needs a paused VM and writes both files", "[firecracker]") {
  test::FcFixture fx;
  auto d = make_firecracker_driver();
  Handles h = d->launch(fx.spec, {});
  std::string state = fx.tmp / "vm.snap", mem = fx.tmp / "vm.mem";
  try {
    firecracker::snapshot_create(h, state, mem);
    FAIL("snapshot of a running VM");
  } catch (const Error& e) {
    CHECK(e.code() == "EINVAL");
    CHECK_THAT(e.what(), Catch::Contains("needs a paused VM (state: Running)"));
  }
  CHECK(last_call(fx, "/snapshot/create").is_null());

  d->pause(h);
  firecracker::snapshot_create(h, state, mem);
  CHECK(last_call(fx, "/snapshot/create") ==
        json{{"method", "PUT"}, {"path", "/snapshot/create"}, {"status", 204},
             {"body", {{"snapshot_type", "Full"}, {"snapshot_path", state}, {"mem_file_path", mem}}}});
  struct stat st {};
  REQUIRE(::stat(mem.c_str(), &st) == 0);
  CHECK(st.st_size == 256LL << 20);
  CHECK(::stat(state.c_str(), &st) == 0);
  CHECK(d->shutdown(h, 5s));
}

TEST_CASE("snapshot load restores into a fresh firecracker", "[firecracker]") {
  test::FcFixture fx;
  auto d = make_firecracker_driver();
  std::string state = fx.tmp / "vm.snap", mem = fx.tmp / "vm.mem";
  {
    Handles h = d->launch(fx.spec, {});
    d->pause(h);
    firecracker::snapshot_create(h, state, mem);
    CHECK(d->shutdown(h, 5s));
  }
  ::unlink(fx.record.c_str());

  bool resume = GENERATE(true, false);
  firecracker::RestoreOptions opts;
  opts.resume = resume;
  std::vector<std::string> stages;
  Handles h = firecracker::snapshot_load(fx.spec, state, mem, opts,
                                         [&](const std::string& s, const std::string&) { stages.push_back(s); });
  CHECK(stages == std::vector<std::string>{"launch", "configure", "restore"});
  CHECK(d->status(h) == (resume ? RunState::running : RunState::paused));
  auto calls = fx.calls();
  REQUIRE(calls.size() >= 3);
  CHECK(calls[0]["path"] == "/logger");
  CHECK(calls[1]["path"] == "/metrics");
  CHECK(calls[2] == json{{"method", "PUT"}, {"path", "/snapshot/load"}, {"status", 204},
                         {"body", {{"snapshot_path", state},
                                   {"mem_backend", {{"backend_type", "File"}, {"backend_path", mem}}},
                                   {"resume_vm", resume}}}});
  // The restored VM has the snapshot's devices, its vsock socket included.
  json config = firecracker::Api(h.control_socket).get("/vm/config");
  CHECK(config["drives"].size() == 2);
  CHECK(config["vsock"]["uds_path"] == fx.vsock_socket());
  CHECK(S_ISSOCK(test::mode_of(fx.vsock_socket())));
  CHECK(d->shutdown(h, 5s));
  CHECK(fx.no_leftover());
}

TEST_CASE("a failed snapshot load kills the new process and says why", "[firecracker]") {
  test::FcFixture fx;
  test::write_file(fx.tmp / "bogus.snap", "not a snapshot");
  test::write_file(fx.tmp / "bogus.mem", "");
  try {
    firecracker::snapshot_load(fx.spec, fx.tmp / "bogus.snap", fx.tmp / "bogus.mem");
    FAIL("loaded a bogus snapshot");
  } catch (const Error& e) {
    CHECK(e.code() == "EHYPERVISOR");
    CHECK_THAT(e.what(), Catch::StartsWith("firecracker: PUT /snapshot/load: Load snapshot error: Failed to restore from snapshot"));
  }
  CHECK(fx.no_leftover());
}
