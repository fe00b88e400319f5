#pragma once
// An agent endpoint given from Lua ({kind = "serial_socket"|"unix"|
// "vsock_uds"|"vsock", path, cid, port}, a VM's handles.agent): shared by
// banger.native.agent and the forwarder's agent dialer.
#include "engine/guest/agent_client.hpp"
#include "engine/lua/binding.hpp"

namespace banger::lua {

guest::Endpoint endpoint_from(lua_State* L, int idx);

}  // namespace banger::lua
