--- banger.forwards: host ports forwarded to a VM's ports. The table
-- `forwards` is written only here; a forward is part of its VM (kept across
-- stop and start, removed with the VM). While the VM runs, one forwarder
-- process of the owner's (`banger vm forwarder`, detached) listens on every
-- host port and joins each client to the guest (engine/net/port_forward.hpp).
-- It is recorded in the VM's host_objects before it is spawned, and found
-- by pid and command line, never pid alone, so a crash at any instant leaves
-- a record or a process the next command removes (docs/networking.md).
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local log = require("banger.log")
local proc = require("banger.native.proc")
local state = require("banger.state")
local sys = require("banger.native.sys")
local validate = require("banger.native.validate")
local vmm = require("banger.native.vmm")

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
  if #forwards > 0 and not row.ip then
    -- the forwarder's dialer for such a VM (engine/lua/portfwd.cpp,
    -- dialer_for) is the agent's channel, which this banger does not have yet
    errors.raise("ENOTSUP", "VM '" .. row.name .. "' has no network: forwarding to it needs the agent's channel, "
      .. "which this banger does not have yet (give the VM a network: config network.mode)", { exit = 1 })
  end
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

-- The forwarder process ---------------------------------------------------

local function vm_dir(row)
  return require("banger.vms").dir(row)
end

--- The forwarder's command line for `row`. The VM directory in it ties the
-- process to this banger home and VM, so the census can tell it apart.
function M.argv(row)
  return { sys.exe(), "vm", "forwarder", "--vm-dir", vm_dir(row), row.name }
end

--- The VM directory a command line serves, when it is a forwarder's.
function M.served_dir(argv)
  if #argv == 6 and argv[2] == "vm" and argv[3] == "forwarder" and argv[4] == "--vm-dir" then
    return argv[5]
  end
end

--- This user's forwarder processes: { {pid=, cmdline=, vm_dir=} }. Only
-- processes whose real uid is ours.
function M.processes()
  local me, self, found = sys.geteuid(), sys.getpid(), {}
  for _, name in ipairs(fs.list("/proc") or {}) do
    local pid = name:match("^%d+$") and tonumber(name)
    local argv = pid and pid ~= self and proc.cmdline(pid)
    local dir = argv and M.served_dir(argv)
    if dir then
      local status = fs.read("/proc/" .. pid .. "/status")
      if status and tonumber(status:match("\nUid:%s+(%d+)")) == me then
        found[#found + 1] = { pid = pid, cmdline = argv, vm_dir = dir, driver = "forwarder" }
      end
    end
  end
  return found
end

--- Is the VM's recorded forwarder running (pid and command line)?
function M.running(row)
  local rec = require("banger.host_objects").get(row).forwarder
  return rec ~= nil and rec.pid ~= nil and vmm.alive({ pid = rec.pid, cmdline = rec.cmdline or {} }) == true
end

--- Stops the VM's forwarder: the recorded one by pid and command line, then
-- any other process serving this VM's directory (one spawned by a banger
-- that died before recording its pid). Forgets the record once none runs.
function M.stop(row)
  local objects = require("banger.host_objects")
  local rec = objects.get(row).forwarder
  if rec and rec.pid and rec.cmdline then
    errors.check(vmm.kill({ driver = "forwarder", pid = rec.pid, cmdline = rec.cmdline }))
  end
  local dir = vm_dir(row)
  for _, p in ipairs(M.processes()) do
    if p.vm_dir == dir then
      errors.check(vmm.kill(p))
    end
  end
  if rec then
    objects.forget(row, "forwarder")
  end
end

--- Starts the forwarder of running VM `row` when it has forwards (stopping
-- a previous one first), and returns once every port is bound: a bind
-- failure (EADDRINUSE, ...) is raised here, for the command that asked.
function M.start(row)
  M.stop(row)
  if #M.list(row) == 0 then
    return false
  end
  local objects = require("banger.host_objects")
  local argv = M.argv(row)
  -- recorded before it exists: a banger killed right after the spawn
  -- leaves this, and the next command finds the process by its argv
  objects.record(row, "forwarder", { vm_dir = vm_dir(row) })
  local spec = { detach = true, stdin = "null", stdout = "pipe",
    stderr = { file = vm_dir(row) .. "/forwarder.log", append = true } }
  for i, a in ipairs(argv) do
    spec[i] = a
  end
  local child = proc.spawn(spec)
  local pid = child:pid()
  objects.record(row, "forwarder", { vm_dir = vm_dir(row), pid = pid, cmdline = argv })
  -- the child writes one line once its ports are bound (or why not) and
  -- then lets go of the pipe
  local line = child:read_all("stdout")
  if line:match("^ready\n") then
    -- the recorded command line must be what /proc shows, for liveness
    local seen = proc.cmdline(pid)
    if seen then
      objects.record(row, "forwarder", { vm_dir = vm_dir(row), pid = pid, cmdline = seen })
    end
    log.info("forward", "forwarder started", { vm = row.name, pid = pid })
    return true
  end
  pcall(child.wait, child, 5000)
  M.stop(row)
  local code, message = line:match("^error (%S+) ([^\n]*)")
  if code then
    errors.raise(code, message, { exit = 1 })
  end
  errors.raise("EIO", "the port forwarder of VM '" .. row.name .. "' exited before it was ready (see "
    .. vm_dir(row) .. "/forwarder.log)")
end

--- Brings the forwarder in line with the records: (re)started while the VM
-- runs and has forwards, else stopped.
function M.sync(row)
  local vms = require("banger.vms")
  if row.state == "running" and vms.alive(row) then
    return M.start(row)
  end
  M.stop(row)
  return false
end

-- Commands (each under the VM's lock) -------------------------------------

--- Forwards `specs` ("HOSTPORT:GUESTPORT[/udp]", ...) on `address`
-- (default 127.0.0.1) to VM `name`, and (re)starts its forwarder when it
-- runs. A port another VM has, or another program holds, fails and records
-- nothing. Returns the new forwards and whether they are live now.
function M.forward(name, specs, address)
  local vms = require("banger.vms")
  address = M.check_address(address or M.default_address)
  local list, why = M.parse_list(specs)
  if not list then
    errors.usage(why, "vm forward")
  end
  local lock <close> = vms.lock(name)
  local row = vms.require(name)
  M.add(row, list, address)
  local ok, live = pcall(M.sync, row)
  if not ok then
    for _, f in ipairs(list) do
      pcall(M.remove, row, f.proto, f.host_port)
    end
    -- the forwards that were there before go on
    local again, e = pcall(M.sync, row)
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
  local vms = require("banger.vms")
  local proto, port = M.parse_host(spec)
  if not proto then
    errors.usage(port, "vm forward")
  end
  local lock <close> = vms.lock(name)
  local row = vms.require(name)
  M.remove(row, proto, port)
  M.sync(row)
  return proto, port
end

--- What `vm forward NAME --list` shows: the VM's forwards, each with
-- `active` (its forwarder runs now).
function M.status(name)
  local vms = require("banger.vms")
  local row = vms.require(name)
  local live = M.running(row)
  local out = {}
  for i, f in ipairs(M.list(row)) do
    f.vm = row.name
    f.active = live
    out[i] = f
  end
  return out
end

--- The forwarder's own loop (`banger vm forwarder`): binds every forward
-- of VM `name`, reports "ready" (or "error CODE message") on stdout, then
-- forwards until the VM is no longer running or the process is signalled.
function M.serve(name, dir, opts)
  opts = opts or {}
  local vms = require("banger.vms")
  local pf = require("banger.native.portfwd")
  local row
  local opened, fwd = pcall(function()
    row = vms.require(name)
    if vms.dir(row) ~= dir then
      errors.raise("EINVAL", "--vm-dir " .. dir .. " is not VM '" .. name .. "''s directory")
    end
    return errors.check(pf.open({ rules = M.list(row), guest_ip = row.ip }))
  end)
  if not opened then
    -- whatever went wrong goes to the command waiting for us
    pf.report("error " .. (type(fwd) == "table" and fwd.code or "EFAIL") .. " "
      .. errors.message(fwd):gsub("\n", " "))
    error(fwd, 0)
  end
  pf.report("ready")
  log.info("forward", "forwarding", { vm = name, forwards = #M.list(row) })
  local check_every = opts.check_ms or 2000
  while true do
    errors.check(fwd:run_for(check_every))
    errors.check_interrupted()
    -- the VM stopped or was deleted without us being told (a crash): stop
    -- too; a database busy for longer than its timeout is asked again later
    local read, now = pcall(vms.get, name)
    errors.check_interrupted()
    if not read then
      log.warn("forward", "could not read the VM's row: " .. errors.message(now), { vm = name })
    elseif not now or now.id ~= row.id or now.state ~= "running" then
      log.info("forward", "VM no longer running; forwarder exits", { vm = name })
      break
    end
  end
  fwd:close()
end

return M
