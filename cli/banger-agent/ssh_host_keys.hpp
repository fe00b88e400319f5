#pragma once
// New SSH host keys for a restored VM: a fork must not present its
// source's keys (banger pins each VM's key on first use; docs/ssh.md).
#include <string>

namespace banger::agent {

// When the image has an OpenSSH server: replaces /etc/ssh/ssh_host_* with
// new Ed25519 and ECDSA keys (ssh-keygen; other old keys are removed), and
// restarts a running sshd so it serves the new keys before this returns
// (systemd: `systemctl try-restart`; otherwise the daemon in /run/sshd.pid
// is stopped and started again, as banger-init started it). Returns
// "regenerated", or "none" when there is no sshd. Dropbear's keys likewise
// (dropbear_host_keys.hpp). Throws naming what failed.
std::string regenerate_ssh_host_keys();

}  // namespace banger::agent
