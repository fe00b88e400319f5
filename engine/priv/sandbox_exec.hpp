#pragma once
// Starting a process as an unprivileged identity, from root: the one place
// the helper creates processes it does not wait for (hypervisors). fork,
// then only raw syscalls in the child: new session, umask 077, cwd /, the
// given descriptors as 3, 4, ... and everything else closed, supplementary
// groups, gid and uid set (real, effective and saved), no_new_privs, and an
// execveat of the already-checked O_PATH descriptor, so the file that runs
// is the file that was validated.
#include <sys/types.h>

#include <string>
#include <vector>

namespace banger::priv {

struct SandboxExec {
  int exe_fd = -1;                 // O_PATH descriptor from validate::open_root_executable
  std::vector<std::string> argv;
  std::vector<int> fds;            // become 3, 4, ... in the child
  int output_fd = -1;              // stdout and stderr (stdin is /dev/null)
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;       // supplementary groups (may be empty)
};

// Returns the child's pid once the exec has succeeded; throws with the
// child's errno when it could not drop privileges or exec. The child is not
// waited for: the caller reaps it (reap_children) or leaves it to init.
pid_t sandbox_exec(const SandboxExec& spec);

// Reaps the helper's exited sandboxed children without blocking.
void reap_children();

}  // namespace banger::priv
