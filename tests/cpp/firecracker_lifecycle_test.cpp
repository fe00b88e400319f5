// A launched VM through the firecracker driver: status, pause/resume,
// shutdown; every call reconnects through the Handles only (snapshots:
// firecracker_snapshot_test.cpp).
#include <catch2/catch.hpp>

#include <signal.h>

#include "engine/core/error.hpp"
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
