--- banger.forwards: host ports forwarded to a VM's ports. The table
-- `forwards` is written only here; a forward is part of its VM (kept across
-- stop and start, removed with the VM). While the VM runs, its forwarder
-- process (banger.forwarder) serves them (docs/networking.md).
local errors = require("banger.errors")
local log = require("banger.log")
local state = require("banger.state")
local validate = require("banger.native.validate")

local M = {}

M.default_address = "127.0.0.1"
-- Ports below this need privilege to bind; the forwarder never has it.
M.min_host_port = 1024

local function port_number(text, what, spec)
  local n = text:match("^%d+$") and math.tointeger(tonumber(text))
  if not n or n < 1 or n > 65535 then
    return nil, what .. " '" .. text .. "' in '" .. spec .. "' is not a port (1-65535)"
  end
  return n
end

--- Parses "HOSTPORT:GUESTPORT[/tcp|/udp]" into { proto, host_port,
-- guest_port }; nil and the reason when it is not one. Host ports below
-- 1024 are refused: binding them needs privilege the forwarder never has.
---@param spec string
---@return { proto: "tcp"|"udp", host_port: integer, guest_port: integer }|nil
---@return string|nil why
function M.parse(spec)
  if type(spec) ~= "string" then
    return nil, "expected 'HOSTPORT:GUESTPORT[/udp]', got " .. type(spec)
  end
  local host, guest, proto = spec:match("^([^:/]*):([^:/]*)/?(%a*)$")
  if not host then
    return nil, "'" .. spec .. "' is not HOSTPORT:GUESTPORT[/udp]"
  end
  if spec:find("/", 1, true) and proto ~= "tcp" and proto ~= "udp" then
    return nil, "'" .. spec .. "': the protocol must be tcp or udp"
  end
  local hp, why = port_number(host, "host port", spec)
  if not hp then
    return nil, why
  end
  local gp
  gp, why = port_number(guest, "guest port", spec)
  if not gp then
    return nil, why
  end
  if hp < M.min_host_port then
    return nil, "host port " .. hp .. " is below " .. M.min_host_port
      .. ": binding it needs root, and the forwarder runs as you (forward a port from 1024 up)"
  end
  return { proto = proto == "" and "tcp" or proto, host_port = hp, guest_port = gp }
end

--- Parses "HOSTPORT[/tcp|/udp]" (what --remove takes): proto, port; nil and why.
function M.parse_host(spec)
  local port, proto = tostring(spec):match("^(%d+)/?(%a*)$")
  local n = port and math.tointeger(tonumber(port))
  if not n or n < 1 or n > 65535 or (tostring(spec):find("/", 1, true) and proto ~= "tcp" and proto ~= "udp") then
    return nil, "'" .. tostring(spec) .. "' is not HOSTPORT[/udp] (a port 1-65535)"
  end
  return proto == "" and "tcp" or proto, n
end

--- Parses a list of specs, refusing one host port given twice for the same
-- protocol: the forwards, or nil and every reason ("; "-joined).
function M.parse_list(specs)
  local out, problems, seen = {}, {}, {}
  for _, spec in ipairs(specs) do
    local f, why = M.parse(spec)
    if not f then
      problems[#problems + 1] = why
    elseif seen[f.proto .. f.host_port] then
      problems[#problems + 1] = "host port " .. f.host_port .. "/" .. f.proto .. " is given twice"
    else
      seen[f.proto .. f.host_port] = true
      out[#out + 1] = f
    end
  end
  if #problems > 0 then
    return nil, table.concat(problems, "; ")
  end
  return out
end

--- Checks a host address to listen on: an IPv4 address. Returns the
-- address and whether the port is reachable from other machines.
function M.check_address(address)
  if type(address) ~= "string" or not validate.ipv4(address) then
    errors.usage("--address: '" .. tostring(address) .. "' is not an IPv4 address")
  end
  return address, address:match("^127%.") == nil
end

-- Records ------------------------------------------------------------------

--- The forwards of VM `row`: { {proto=, host_address=, host_port=, guest_port=}, ... }
-- by protocol then host port.
---@param row table
---@return { proto: "tcp"|"udp", host_address: string, host_port: integer, guest_port: integer }[]
function M.list(row)
  return state.db():query([[SELECT proto, host_address, host_port, guest_port FROM forwards
    WHERE vm_id = ? ORDER BY proto, host_port, host_address]], row.id)
end

-- Who already has proto/port on an address that overlaps `address`
-- (0.0.0.0 covers every address): the VM's name and the address, or nil.
local function holder(db, proto, address, port)
  return db:query([[SELECT v.name AS name, f.host_address AS host_address FROM forwards f
    LEFT JOIN vms v ON v.id = f.vm_id
    WHERE f.proto = ? AND f.host_port = ? AND (f.host_address = ? OR f.host_address = '0.0.0.0' OR ? = '0.0.0.0')]],
    proto, port, address, address)[1]
end

--- Inserts forwards of `row` inside transaction `db` (vm create does it in
-- the row's own). Raises EADDRINUSE naming the VM that already has a port.
function M.insert(db, row, forwards, address)
  address = address or M.default_address
  for _, f in ipairs(forwards) do
    local addr = f.host_address or address
    local h = holder(db, f.proto, addr, f.host_port)
    if h then
      errors.raise("EADDRINUSE", string.format("host port %s:%d/%s is already forwarded to VM '%s'%s",
        addr, f.host_port, f.proto, tostring(h.name), h.host_address ~= addr and (" (on " .. h.host_address .. ")") or ""),
        { exit = 1 })
    end
    db:exec("INSERT INTO forwards (vm_id, proto, host_address, host_port, guest_port, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      row.id, f.proto, addr, f.host_port, f.guest_port, os.date("!%Y-%m-%dT%H:%M:%SZ"))
  end
end

--- Adds forwards to an existing VM (its lock held by the caller).
function M.add(row, forwards, address)
  state.transaction(function(db)
    M.insert(db, row, forwards, address)
  end)
end

--- Removes the forward of host `port`/`proto` from `row`; ENOENT when it has none.
function M.remove(row, proto, port)
  local db = state.db()
  local had = db:query("SELECT 1 FROM forwards WHERE vm_id = ? AND proto = ? AND host_port = ?", row.id, proto, port)[1]
  if not had then
    errors.raise("ENOENT", "VM '" .. row.name .. "' has no forward of host port " .. port .. "/" .. proto
      .. " (see 'banger vm forward " .. row.name .. " --list')", { exit = 1 })
  end
  db:exec("DELETE FROM forwards WHERE vm_id = ? AND proto = ? AND host_port = ?", row.id, proto, port)
end

--- Forgets every forward of a VM that is being removed.
function M.remove_all(vm_id)
  state.db():exec("DELETE FROM forwards WHERE vm_id = ?", vm_id)
end

-- Commands (each under the VM's lock) -------------------------------------

--- Forwards `specs` ("HOSTPORT:GUESTPORT[/udp]", ...) on `address`
-- (default 127.0.0.1) to VM `name`, and (re)starts its forwarder when it
-- runs. A port another VM has, or another program holds, fails and records
-- nothing. Returns the new forwards and whether they are live now.
function M.forward(name, specs, address)
  local forwarder = require("banger.forwarder")
  local vms = require("banger.vms")
  address = M.check_address(address or M.default_address)
  local list, why = M.parse_list(specs)
  if not list then
    errors.usage(why, "vm forward")
  end
  local lock <close> = vms.lock(name)
  local row = vms.require(name)
  M.add(row, list, address)
  local ok, live = pcall(forwarder.sync, row)
  if not ok then
    for _, f in ipairs(list) do
      pcall(M.remove, row, f.proto, f.host_port)
    end
    -- the forwards that were there before go on
    local again, e = pcall(forwarder.sync, row)
    if not again then
      log.warn("forward", "could not restart the forwarder: " .. errors.message(e), { vm = name })
    end
    error(live, 0)
  end
  return list, live
end

--- Removes the forward of host port `spec` ("HOSTPORT[/udp]") from VM
-- `name`; the forwarder goes on with the rest (or stops with none left).
function M.unforward(name, spec)
  local forwarder = require("banger.forwarder")
  local vms = require("banger.vms")
  local proto, port = M.parse_host(spec)
  if not proto then
    errors.usage(port, "vm forward")
  end
  local lock <close> = vms.lock(name)
  local row = vms.require(name)
  M.remove(row, proto, port)
  forwarder.sync(row)
  return proto, port
end

--- What `vm forward NAME --list` shows: the VM's forwards, each with
-- `active` (its forwarder runs now).
function M.status(name)
  local forwarder = require("banger.forwarder")
  local vms = require("banger.vms")
  local row = vms.require(name)
  local live = forwarder.running(row)
  local out = {}
  for i, f in ipairs(M.list(row)) do
    f.vm = row.name
    f.active = live
    out[i] = f
  end
  return out
end

return M
