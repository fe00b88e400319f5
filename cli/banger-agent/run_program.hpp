#pragma once
// Runs a guest program to completion (ssh-keygen, systemctl, sshd): a clean
// environment, its output collected for error messages, killed when it
// outlasts its deadline.
#include <chrono>
#include <string>
#include <vector>

namespace banger::agent {

struct ProgramResult {
  int status = -1;     // exit code, or 128 + signal
  std::string output;  // stdout and stderr together, trimmed
};

// Throws when the program cannot be started or does not finish in time.
ProgramResult run_program(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);
// Several at once (the guest may have more than one vCPU); results in order.
std::vector<ProgramResult> run_programs(const std::vector<std::vector<std::string>>& argvs,
                                        std::chrono::milliseconds timeout);

// Starts `path` with `argv` outside the agent's process tree (twice forked,
// a session of its own, stdio on /dev/null), for a daemon the agent
// restarts; its exit is not waited for.
void start_detached(const std::string& path, const std::vector<std::string>& argv);

// argv[0]'s path found on the agent's PATH, or "" when it is not installed.
std::string find_program(const std::string& name);

}  // namespace banger::agent
