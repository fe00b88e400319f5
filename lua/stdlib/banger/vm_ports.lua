--- banger.vm_ports: which ports a running VM listens on (`vm ports`) and
-- where the host reaches each. The guest's sockets come from the agent's
-- `listeners` request (protocol 1.2): TCP sockets in LISTEN and bound,
-- unconnected UDP sockets, each with the process holding it when the agent
-- can see one. An agent older than 1.2 is refused with ENOTSUP.
local guest = require("banger.guest")

local M = {}

--- Which of the guest's addresses a socket bound to `address` accepts on:
-- "any" (a wildcard: all of them), "loopback" (only the guest's own
-- programs reach it) or "address" (that one address).
---@param address string
---@return "any"|"loopback"|"address"
function M.scope(address)
  if address == "0.0.0.0" or address == "::" then
    return "any"
  end
  if address == "::1" or address:match("^127%.") or address:match("^::ffff:127%.") then
    return "loopback"
  end
  return "address"
end

-- Whether listener `l` (of `scope`) takes connections on the VM's bridge
-- address: a wildcard, that address, or its v4-mapped form.
local function takes_bridge(row, l, scope)
  return row.ip ~= nil and (scope == "any" or l.address == row.ip or l.address == "::ffff:" .. row.ip)
end

--- Where the host reaches listener `l` of VM `row`: "NAME.vm:PORT" and
-- "host" when the VM has an address on the bridge (row.ip) and the socket
-- takes connections on it; nil and "guest-only" for a loopback socket; nil
-- and "unreachable" otherwise (no bridge address, or bound to another
-- of the guest's addresses).
---@param row table a VM row
---@param l { address: string, port: integer }
---@return string?, "host"|"guest-only"|"unreachable"
function M.reach(row, l)
  local scope = M.scope(l.address)
  if scope == "loopback" then
    return nil, "guest-only"
  end
  if takes_bridge(row, l, scope) then
    return row.name .. ".vm:" .. l.port, "host"
  end
  return nil, "unreachable"
end

--- The host ports of `forwards` (banger.forwards.list rows) that reach
-- listener `l`: "ADDRESS:PORT" strings. A forward of the same protocol and
-- guest port reaches it when the forwarder's connection can: to a VM on
-- the bridge it goes to the VM's address (so not to a loopback socket),
-- through the agent's channel to the guest's 127.0.0.1 (so not to a socket
-- bound to another address).
---@param row table a VM row
---@param l { proto: string, address: string, port: integer }
---@param forwards { proto: string, host_address: string, host_port: integer, guest_port: integer }[]
---@return string[]
function M.forwarded(row, l, forwards)
  local scope = M.scope(l.address)
  local reached
  if row.ip then
    reached = takes_bridge(row, l, scope)
  else
    reached = scope == "any" or (scope == "loopback" and l.address ~= "::1")
  end
  local out = {}
  for _, f in ipairs(reached and forwards or {}) do
    if f.proto == l.proto and f.guest_port == l.port then
      out[#out + 1] = f.host_address .. ":" .. f.host_port
    end
  end
  return out
end

local function order(a, b)
  if a.proto ~= b.proto then
    return a.proto < b.proto
  end
  if a.port ~= b.port then
    return a.port < b.port
  end
  return a.address < b.address
end

--- The listeners of a running VM, sorted by protocol, port and address:
-- `{ name, ip, truncated, listeners = { { proto, family, address, port,
-- inode, pid, comm, url, reach, forwarded }, ... } }`. Raises ESRCH for a VM that
-- is not running and ENOTSUP for an agent without the request.
---@param row table a VM row
---@param timeout_ms integer? for the agent (default 10000)
function M.list(row, timeout_ms)
  local forwards = require("banger.forwards").list(row)
  local c <close> = guest.connect(row, { timeout_ms = timeout_ms })
  local listeners, truncated = c:listeners()
  for _, l in ipairs(listeners) do
    l.url, l.reach = M.reach(row, l)
    l.forwarded = M.forwarded(row, l, forwards)
  end
  table.sort(listeners, order)
  return { name = row.name, ip = row.ip, truncated = truncated, listeners = listeners }
end

return M
