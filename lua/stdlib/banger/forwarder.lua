--- banger.forwarder: a running VM's port forwarder, one detached process
-- of the owner's (`banger vm forwarder`) that listens on every host port of
-- the VM's forwards (banger.forwards) and joins each client to the guest
-- (engine/net/port_forward.hpp). It is recorded in the VM's host_objects
-- before it is spawned, and found by pid and command line, never pid alone,
-- so a crash at any instant leaves a record or a process the next command
-- removes (docs/networking.md).
local errors = require("banger.errors")
local forwards = require("banger.forwards")
local fs = require("banger.native.fs")
local log = require("banger.log")
local proc = require("banger.native.proc")
local sys = require("banger.native.sys")
local vmm = require("banger.native.vmm")

local M = {}


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
  if #forwards.list(row) == 0 then
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
    -- a VM without network is reached through its agent's forwarding port
    local agent = not row.ip and (vms.load_handles(row) or {}).agent or nil
    return errors.check(pf.open({ rules = forwards.list(row), guest_ip = row.ip, agent = agent }))
  end)
  if not opened then
    -- whatever went wrong goes to the command waiting for us
    pf.report("error " .. (type(fwd) == "table" and fwd.code or "EFAIL") .. " "
      .. errors.message(fwd):gsub("\n", " "))
    error(fwd, 0)
  end
  pf.report("ready")
  log.info("forward", "forwarding", { vm = name, forwards = #forwards.list(row) })
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
