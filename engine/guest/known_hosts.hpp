#pragma once
// banger's own known_hosts (OpenSSH format), trust on first use. The file
// lives in a 0700 directory, is 0600, is never read or written through a
// symlink, and is rewritten atomically, so a crash or a concurrent banger
// never leaves it half-written (a lock serialises writers). The user's
// ~/.ssh/known_hosts is never touched.
//
// Why not libssh2_knownhost_*: it can parse and check, but it writes the
// whole file in place (not atomically, following symlinks) and cannot
// remove entries by host name; the format is one "hosts keytype key" line
// per key, which is simpler to handle directly than to work around.
#include <string>
#include <vector>

namespace banger::ssh {

struct HostKey {
  std::string type;  // "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa", ...
  std::string blob;  // the raw public key blob
};

// "SHA256:<base64 without padding>", as ssh-keygen -l prints it.
std::string fingerprint(const HostKey& key);

// The known_hosts name of host:port: "host" for port 22, "[host]:port" otherwise.
std::string host_pattern(const std::string& host, int port);

enum class Verdict { pinned_now, matches };

// Trust on first use: when `hosts` (the names this key should be known by,
// e.g. the IP pattern and "<vm>.vm") have no entry of the key's type, pins
// the key under all of them and returns pinned_now; when an entry matches,
// returns matches; when an entry of that type differs, throws EHOSTKEY with
// a possible-MITM message naming `subject` and both fingerprints.
Verdict check_and_pin(const std::string& path, const std::vector<std::string>& hosts, const HostKey& key,
                      const std::string& subject);

// Removes every line naming any of `hosts` (a line naming several keeps the
// others). Returns how many hosts were dropped.
int forget(const std::string& path, const std::vector<std::string>& hosts);

}  // namespace banger::ssh
