#pragma once
// The guest's listening sockets for the `listeners` request
// (docs/agent-protocol.md): /proc/net/{tcp,tcp6,udp,udp6} parsed by
// engine/guest/listeners.cpp, each socket's process found in /proc/*/fd.
#include <string>

#include "engine/guest/listeners.hpp"

namespace banger::agent {

// Reads `proc` (normally "/proc") within the bounds of
// engine/guest/listeners.hpp, looking at no more than `max_fds` entries of
// /proc/*/fd to find owners. A missing file (a kernel without IPv6) is no
// listeners of that kind; a socket whose owner is not visible has no pid.
guest::ListenersResult list_listeners(const std::string& proc = "/proc", size_t max_fds = guest::kMaxFdsScanned);

}  // namespace banger::agent
