--- banger.host_objects: every object a VM can own on the host, how it is
-- recorded before it is made, and the one explicit list that removes them.
-- Every process that reconciles runs the same code: nothing here depends on
-- which modules a command happened to load.
--
-- The record is the row's host_objects column, a JSON object written under
-- the VM's lock. Each entry is written *before* its object is made and
-- removed only once the object is gone, so a banger killed at any instant
-- leaves a record the next command can finish (removal is idempotent):
--   runtime_dir  the VM's 0700 socket directory (made at start)
--   tap          the tap's name (made at start, before the hypervisor)
--   nat          the tap whose NAT and Docker accept rules were asked for
--   egress       the tap whose egress allow-list rules and set were asked
--                for (banger.egress; removed by remove_nat with its NAT)
--   hypervisor   { launcher = "banger" | "helper", runtime_dir = path },
--                (its guest RAM file, <vm dir>/ram, goes with it)
--                written before the launch; its pid and command line follow
--                in handles.json and the handle_* columns once known
--   forwarder    { vm_dir =, pid =, cmdline = }: the VM's port forwarder
--                (banger.forwards), written before it is spawned; its pid
--                and command line follow once known
-- The VM's directory (overlay, work disk, logs, handles.json) is recorded by
-- the row itself, which is inserted before the directory is made. Host-key
-- pins are named after the row (name.vm, ip). The <vm>.vm responder keeps
-- nothing per VM: it answers from the rows, so a row gone is a name gone.
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local json = require("banger.native.json")
local log = require("banger.log")
local proc = require("banger.native.proc")
local sys = require("banger.native.sys")
local vmm = require("banger.native.vmm")

local M = {}

--- The VM's record: kind -> identity.
function M.get(row)
  local ok, objects = pcall(json.decode, row.host_objects or "{}")
  return ok and type(objects) == "table" and objects or {}
end

local function store(row, objects)
  require("banger.vms").update(row, { host_objects = json.encode(objects) })
end

--- Records that `kind` is about to be made; call before making it.
function M.record(row, kind, value)
  local objects = M.get(row)
  objects[kind] = value
  store(row, objects)
end

--- Forgets `kind`; call once it is gone.
function M.forget(row, kind)
  local objects = M.get(row)
  if objects[kind] ~= nil then
    objects[kind] = nil
    store(row, objects)
  end
end

-- Hypervisor processes -----------------------------------------------------

local function basename(path)
  return path:match("([^/]+)$") or path
end

--- Is argv[0] a hypervisor banger starts (QEMU, firecracker, or the
-- configured binaries)?
function M.hypervisor_binary(argv0)
  local base = basename(argv0)
  if base:match("^qemu%-system%-") or base == "firecracker" then
    return true
  end
  local ok, cfg = pcall(function() return require("banger.config").get().driver end)
  return ok and (base == basename(cfg.qemu_bin) or base == basename(cfg.firecracker_bin))
end

--- This user's hypervisor processes: { {pid=, cmdline=, driver=} }. Only
-- processes whose real uid is ours: anyone can put our paths in an argv.
function M.own_hypervisors()
  local me, found = sys.geteuid(), {}
  for _, name in ipairs(fs.list("/proc") or {}) do
    local pid = name:match("^%d+$") and tonumber(name)
    local argv = pid and proc.cmdline(pid)
    if argv and argv[1] and M.hypervisor_binary(argv[1]) then
      local status = fs.read("/proc/" .. pid .. "/status")
      if status and tonumber(status:match("\nUid:%s+(%d+)")) == me then
        found[#found + 1] = { pid = pid, cmdline = argv,
          driver = basename(argv[1]):match("^qemu") and "qemu" or "firecracker" }
      end
    end
  end
  return found
end

--- Does any argument name a path inside `dir`?
function M.mentions(argv, dir)
  local prefix = dir .. "/"
  for _, a in ipairs(argv) do
    if a:find(prefix, 1, true) then
      return true
    end
  end
  return false
end

--- Stops every hypervisor that belongs to runtime directory `dir`: ours by
-- pid + command line (its sockets are in `dir`), and one the root helper
-- started, which we cannot signal, through QMP on the socket only it holds.
function M.stop_hypervisors_in(dir)
  for _, p in ipairs(M.own_hypervisors()) do
    if M.mentions(p.cmdline, dir) then
      errors.check(vmm.kill(p))
    end
  end
  if fs.exists(dir .. "/qmp.sock") then
    errors.check(vmm.qmp_quit(dir .. "/qmp.sock", 5000))
  end
  for _, p in ipairs(M.own_hypervisors()) do
    if M.mentions(p.cmdline, dir) then
      errors.raise("EBUSY", "hypervisor pid " .. p.pid .. " still runs")
    end
  end
end

-- Releasing a VM's objects -------------------------------------------------

-- The runtime directories a VM may have: the recorded one, and the one
-- today's layout gives (a VM recorded by an older banger, or a runtime
-- directory that moved with XDG_RUNTIME_DIR).
local function runtime_dirs(row, objects)
  local vms = require("banger.vms")
  local dirs, seen = {}, {}
  for _, d in ipairs({ objects.runtime_dir or false, objects.hypervisor and objects.hypervisor.runtime_dir or false,
    vms.runtime_dir(row) }) do
    -- only ever a directory named after this VM: the record is data, not a path to trust blindly
    if d and not seen[d] and d:sub(-(#row.id + 5)) == "/vms/" .. row.id then
      seen[d] = true
      dirs[#dirs + 1] = d
    end
  end
  return dirs
end

--- Releases what a VM holds while it runs, in this order: its port
-- forwarder, the hypervisor
-- (by its handles, then anything still using its runtime directory), its
-- NAT rules, its tap, its runtime directory. Each object's record goes only
-- once the object is gone; a failure is logged and leaves that record (and
-- the runtime directory, while a hypervisor may still use it) for the next
-- command. Returns true when nothing is left, else false and the problems.
function M.release(row, h)
  local vms = require("banger.vms")
  local net = require("banger.net")
  local objects = M.get(row)
  local problems = {}
  local function step(kind, fn)
    local ok, e = pcall(fn)
    if not ok then
      problems[#problems + 1] = kind .. ": " .. errors.message(e)
      log.warn("teardown", "could not remove the VM's " .. kind .. ": " .. errors.message(e), { vm = row.name })
    end
    return ok
  end
  local dirs = runtime_dirs(row, objects)

  -- the port forwarder (recorded or not: found by its command line)
  step("forwarder", function() require("banger.forwarder").stop(row) end)
  local hypervisor_gone = step("hypervisor", function()
    if h then
      vms.kill_hypervisor(h)
    end
    for _, dir in ipairs(dirs) do
      M.stop_hypervisors_in(dir)
    end
  end)
  if hypervisor_gone then
    vms.clear_handles(row)
    M.forget(row, "hypervisor")
    -- the guest RAM of a cold-started QEMU VM: only meaningful while it runs
    fs.remove(vms.dir(row) .. "/ram")
  end
  if objects.nat and step("nat", function() net.remove_nat(objects.nat) end) then
    M.forget(row, "nat")
  end
  -- remove_nat also removes the tap's egress rules and set (engine/net/egress.hpp)
  if objects.egress and step("egress", function() net.remove_nat(objects.egress) end) then
    M.forget(row, "egress")
  end
  if objects.tap and step("tap", function() net.delete_tap(objects.tap) end) then
    M.forget(row, "tap")
  end
  if hypervisor_gone and step("runtime_dir", function()
    for _, dir in ipairs(dirs) do
      fs.remove_tree(dir)
    end
  end) then
    M.forget(row, "runtime_dir")
  end
  return #problems == 0, problems
end

--- Removes the files a deleted VM leaves, once its runtime objects are gone
-- (M.release): host-key pins, then its directory (disks, overlays, logs).
function M.remove_files(row)
  -- Snapshots of this VM are not its files: they live on (their layers
  -- are self-contained) until deleted; banger.vms.destroy drops what this
  -- VM needed of them.
  require("banger.ssh").forget(row)
  errors.check(fs.remove_tree(require("banger.vms").dir(row)))
end

return M
