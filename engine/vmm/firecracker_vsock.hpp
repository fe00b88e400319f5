#pragma once
// Host side of Firecracker's vsock: a host-initiated connection to a guest
// port goes through the vsock Unix socket (uds_path): connect, write
// "CONNECT <port>\n", read "OK <host port>\n"; after that the socket is a
// plain byte stream to the guest. When nothing listens on the guest port,
// Firecracker closes the connection instead of answering.
#include <chrono>
#include <cstdint>
#include <string>

namespace banger::vmm::firecracker {

// Returns the connected socket (CLOEXEC; the caller closes it). Throws
// ECONNREFUSED when the vsock socket does not accept, ECONNRESET when the
// guest port has no listener, ETIMEDOUT, ECANCELED on Ctrl-C, EPROTO for an
// answer that is not "OK <n>".
int vsock_connect(const std::string& uds_path, std::uint32_t port,
                  std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace banger::vmm::firecracker
