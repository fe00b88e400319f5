#pragma once
// banger-init: PID 1 for root filesystems without a usable init (most
// container images). Installed as a link to banger-agent named
// banger-init and passed to banger's initramfs as banger.init=.

namespace banger::agent {

// Which PID 1 the agent was started under, so a poweroff request reaches it
// the way that init expects (environment variable BANGER_PID1).
inline constexpr const char* kPid1Env = "BANGER_PID1";

// Mounts the API filesystems, starts the agent, then execs systemd when the
// image has it; otherwise stays PID 1: reaps every orphan, restarts the agent
// if it dies, and powers off cleanly on SIGUSR2 / SIGTERM / SIGINT / SIGPWR.
int run_init();

}  // namespace banger::agent
