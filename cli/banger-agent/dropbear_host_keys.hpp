#pragma once
// New host keys for Dropbear, the other SSH server banger guests run
// (banger's test images; small distributions).
namespace banger::agent {

// When the image has dropbear: removes /etc/dropbear/dropbear_*_host_key,
// makes Ed25519 and ECDSA keys with dropbearkey when it is installed (else a
// dropbear started with -R makes its own on the next connection), and
// restarts every running dropbear listener, which keeps the keys it loaded
// at its start. Returns false when there is no dropbear. Throws when it cannot
// make sure the source's keys are gone from what serves connections.
bool regenerate_dropbear_host_keys();

}  // namespace banger::agent
