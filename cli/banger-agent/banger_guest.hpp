#pragma once
// Whether this agent runs inside a banger VM. Requests that change the
// machine itself (poweroff, reidentify) are honoured only there: an agent
// started on a host (tests, a mistake) must never power it off, step its
// clock or re-address its network.

namespace banger::agent {

// True when the kernel command line carries banger.name= (banger boots
// every guest with it; docs/agent-protocol.md).
bool in_banger_guest();

}  // namespace banger::agent
