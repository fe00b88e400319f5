#pragma once
// Seeding the guest kernel's random pool from the host. Under emulation a
// fresh guest waits seconds for its CRNG (sshd blocks in getrandom until
// then), so banger writes random bytes onto each new VM's work disk and its
// initramfs credits them at the first boot (docs/performance.md).
#include <cstddef>
#include <string>

namespace banger::agent {

// Reads the seed file at `path` (a regular file of 32 to 4096 bytes, not a
// symlink), overwrites it with zeros and removes it, so the bytes seed one
// boot only, then adds them to the kernel's pool with RNDADDENTROPY, credited
// in full. Returns the number of bytes credited; throws banger::Error.
std::size_t seed_rng_from(const std::string& path);

}  // namespace banger::agent
