--- banger.census: host objects that are banger's and this user's but that
-- no VM row accounts for (`banger doctor` lists them, `banger vm prune
-- --orphans` removes them). An object is counted only when banger's naming
-- *and* this user's ownership say so, never by its name alone:
--   hypervisor   a QEMU or firecracker process of this uid whose sockets
--                are in this user's runtime dir (QEMU's command line also
--                says -name banger-<vm>)
--   runtime_dir  $XDG_RUNTIME_DIR/banger/vms/<id> (sockets); an isolated
--                QEMU still listening there is told to quit through it
--   vm_dir       $XDG_STATE_HOME/banger/vms/<id> (overlay, work disk, logs)
--   tap          a tun/tap named bgtap*, owned by this uid, bearing this
--                home's mark (alias banger:<net.home_tag()>) and not
--                attached, or attached only to an orphan hypervisor of ours
--   nat          a rule in nftables table ip banger, or a DOCKER-USER/FORWARD
--                accept tagged banger:<tap>, for a tap that is gone or orphan
--   nft_table    table ip banger holding no rule at all
--   forwarder    a `banger vm forwarder` process of this uid serving a VM
--                directory of this home whose row does not record it
-- Other users' taps and processes, other homes' taps, other tables, and
-- banger objects of a VM that is being made right now are never counted.
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local log = require("banger.log")
local state = require("banger.state")
local validate = require("banger.native.validate")
local vmm = require("banger.native.vmm")

local M = {}

local function entries(dir)
  return fs.exists(dir) and (fs.list(dir) or {}) or {}
end

-- The taps a process has open: /proc/<pid>/fdinfo names a tun queue's
-- device ("iff:"). Readable for our own processes.
local function taps_held_by(pid)
  local held = {}
  for _, fd in ipairs(entries("/proc/" .. pid .. "/fd")) do
    if fs.readlink("/proc/" .. pid .. "/fd/" .. fd) == "/dev/net/tun" then
      local info = fs.read("/proc/" .. pid .. "/fdinfo/" .. fd) or ""
      local name = info:match("iff:%s*(%S+)")
      if name then
        held[name] = true
      end
    end
  end
  return held
end

-- What is on the host, looked at before the rows are read (see M.scan).
local function observe(runtime, vmroot)
  local net = require("banger.net")
  local objects = require("banger.host_objects")
  local seen = { processes = {}, runtime_dirs = entries(runtime), vm_dirs = entries(vmroot), problems = {} }
  for _, p in ipairs(objects.own_hypervisors()) do
    for _, a in ipairs(p.cmdline) do
      local at = a:find(runtime .. "/", 1, true)
      local id = at and a:sub(at + #runtime + 1):match("^(%w+)/")
      if id then
        p.id = id
        p.name = p.cmdline[1]:match("([^/]+)$") -- QEMU's -name below, when it has one
        break
      end
    end
    if p.id then
      for i, a in ipairs(p.cmdline) do
        if a == "-name" and p.cmdline[i + 1] then
          p.name = p.cmdline[i + 1]
        end
      end
      p.taps = taps_held_by(p.pid)
      seen.processes[#seen.processes + 1] = p
    end
  end
  seen.forwarders = {}
  for _, p in ipairs(require("banger.forwarder").processes()) do
    local id = p.vm_dir:sub(1, #vmroot + 1) == vmroot .. "/" and p.vm_dir:sub(#vmroot + 2):match("^(%w+)$")
    if id then
      p.id = id
      seen.forwarders[#seen.forwarders + 1] = p
    end
  end
  seen.taps = net.banger_taps()
  local ok, inv = pcall(require("banger.priv").call, "list_nat", {})
  if ok then
    seen.nat = inv
  else
    seen.problems[#seen.problems + 1] = "NAT rules not checked: " .. errors.message(inv)
  end
  return seen
end

local function id_of_tap(tap)
  return tap:sub(#validate.tap_prefix + 1)
end

--- The orphans, as a list of { kind=, name=, detail=, id=, ... } (id: the
-- VM id the object is named after, when a row of that id exists), and the
-- list of things that could not be checked. `skip_ids`: ids of rows another
-- command is working on, whose objects are left alone.
function M.scan(skip_ids)
  skip_ids = skip_ids or {}
  local layout = state.layout()
  local runtime, vmroot = layout.runtime .. "/vms", layout.state .. "/vms"
  -- Objects first, rows second: banger records an object in its row before
  -- making it and forgets it only once it is gone, so an object seen here
  -- and not recorded in the rows read afterwards is no command's work.
  local seen = observe(runtime, vmroot)
  local snaproot = layout.state .. "/snapshots"
  local snapshot_dirs = fs.exists(snaproot) and (fs.list(snaproot) or {}) or {}
  local objects = require("banger.host_objects")
  local rows, by_tap_id = {}, {}
  local ok_rows, list = pcall(function() return state.db():query("SELECT * FROM vms") end)
  for _, row in ipairs(ok_rows and list or {}) do
    row.objects = objects.get(row)
    rows[row.id] = row
    by_tap_id[row.id:sub(1, 15 - #validate.tap_prefix)] = row
  end
  if not ok_rows then
    seen.problems[#seen.problems + 1] = "the state database could not be read: " .. errors.message(list)
  end

  local orphans = {}
  local function add(o, id)
    if id and skip_ids[id] then
      return
    end
    o.id = id and rows[id] and id or nil
    orphans[#orphans + 1] = o
  end

  local orphan_pids = {}
  for _, p in ipairs(seen.processes) do
    local row = rows[p.id]
    if not (row and (row.objects.hypervisor or row.handle_pid == p.pid)) then
      orphan_pids[p.pid] = p
      add({ kind = "hypervisor", name = p.name, pid = p.pid, cmdline = p.cmdline,
        detail = p.driver .. " pid " .. p.pid .. " (" .. p.name .. ")" }, p.id)
    end
  end
  for _, p in ipairs(seen.forwarders) do
    local row = rows[p.id]
    if not (row and row.objects.forwarder) then
      add({ kind = "forwarder", name = "forwarder pid " .. p.pid, pid = p.pid, cmdline = p.cmdline,
        detail = "port forwarder pid " .. p.pid .. " (" .. (row and row.name or p.vm_dir) .. ")" }, p.id)
    end
  end
  for _, id in ipairs(seen.runtime_dirs) do
    local row = rows[id]
    if not (row and (row.objects.runtime_dir or row.objects.hypervisor or row.handle_pid)) then
      local path = runtime .. "/" .. id
      add({ kind = "runtime_dir", name = path, path = path,
        detail = path .. (fs.exists(path .. "/qmp.sock") and " (with a QMP socket)" or "") }, id)
    end
  end

  local orphan_taps = {}
  local me = require("banger.native.sys").geteuid()
  local home = require("banger.net").home_tag()
  for _, tap in ipairs(seen.taps) do
    local row = by_tap_id[id_of_tap(tap.name)]
    local held_by_orphan = false
    for _, p in pairs(orphan_pids) do
      held_by_orphan = held_by_orphan or p.taps[tap.name] == true
    end
    local ours = tap.owner == me and tap.home == home
    if ours and not (row and row.objects.tap == tap.name) and (not tap.attached or held_by_orphan) then
      orphan_taps[tap.name] = true
      add({ kind = "tap", name = tap.name, detail = tap.name .. (tap.attached and " (held by an orphan hypervisor)" or "") },
        row and row.id)
    end
  end
  if seen.nat then
    local exists = {}
    for _, tap in ipairs(seen.taps) do
      exists[tap.name] = true
    end
    for _, tag in ipairs(seen.nat.taps) do
      local row = by_tap_id[id_of_tap(tag)]
      if not (row and (row.objects.nat == tag or row.objects.egress == tag)) and (not exists[tag] or orphan_taps[tag]) then
        add({ kind = "nat", name = tag, detail = "NAT and accept rules tagged " .. tag }, row and row.id)
      end
    end
    if seen.nat.table and seen.nat.table_rules == 0 then
      add({ kind = "nft_table", name = "ip banger", detail = "nftables table ip banger, empty" })
    end
  end
  for _, id in ipairs(seen.vm_dirs) do
    if not rows[id] then
      local path = vmroot .. "/" .. id
      add({ kind = "vm_dir", name = path, path = path, detail = path }, nil)
    end
  end
  -- a snapshot's row is inserted before its directory is made
  local ok_snaps, snaps = pcall(function() return state.db():query("SELECT id FROM snapshots") end)
  if ok_snaps then
    local known = {}
    for _, r in ipairs(snaps) do
      known[r.id] = true
    end
    for _, id in ipairs(snapshot_dirs) do
      if not known[id] then
        local path = snaproot .. "/" .. id
        add({ kind = "snapshot_dir", name = path, path = path, detail = path .. " (snapshot files without a row)" }, nil)
      end
    end
  end
  return orphans, seen.problems
end

--- An orphan as `--json` shows it (record `orphan`, banger.records).
function M.describe(o)
  return { kind = o.kind, name = o.name, detail = o.detail, pid = o.pid, path = o.path }
end

-- How each kind goes; the order of M.order is the order of removal
-- (hypervisors before the sockets and taps they hold, directories last).
local removers = {
  forwarder = function(o)
    errors.check(vmm.kill({ driver = "forwarder", pid = o.pid, cmdline = o.cmdline }))
  end,
  hypervisor = function(o)
    errors.check(vmm.kill({ driver = "orphan", pid = o.pid, cmdline = o.cmdline }))
  end,
  runtime_dir = function(o)
    require("banger.host_objects").stop_hypervisors_in(o.path)
    errors.check(fs.remove_tree(o.path))
  end,
  nat = function(o)
    require("banger.net").remove_nat(o.name)
  end,
  -- remove_nat drops banger's table once it holds no rule; a tap name that
  -- tags no rule removes nothing else.
  nft_table = function()
    require("banger.net").remove_nat(validate.tap_prefix .. "0")
  end,
  tap = function(o)
    require("banger.net").delete_tap(o.name)
  end,
  vm_dir = function(o)
    errors.check(fs.remove_tree(o.path))
  end,
  snapshot_dir = function(o)
    errors.check(fs.remove_tree(o.path))
  end,
}
M.order = { "forwarder", "hypervisor", "runtime_dir", "nat", "nft_table", "tap", "vm_dir", "snapshot_dir" }

-- Holds the lock of every VM no other command is working on; returns the
-- locks and the ids of the busy ones.
local function lock_all()
  local locks, busy = {}, {}
  local ok, rows = pcall(function() return state.db():query("SELECT id, name FROM vms") end)
  local vms = require("banger.vms")
  if ok and #rows > 0 then
    fs.mkdir(state.layout().state .. "/locks", 448, true)
  end
  for _, row in ipairs(ok and rows or {}) do
    local l = vms.try_lock(row.name)
    if l then
      locks[#locks + 1] = l
    else
      busy[row.id] = true
    end
  end
  return locks, busy
end

--- Removes the orphans: returns the removed ones and the failures
-- ({ object, error }), and what could not be checked. Runs with every idle
-- VM's lock held, so no command can make or record an object of those VMs
-- meanwhile; the objects of busy VMs are left alone. A second pass catches
-- what the first freed (a tap held by an orphan hypervisor it killed).
function M.remove()
  local locks, busy = lock_all()
  local removed, failures, problems = {}, {}, {}
  local ok, err = pcall(function()
    for pass = 1, 2 do
      local orphans
      orphans, problems = M.scan(busy)
      local progress = false
      for _, kind in ipairs(M.order) do
        for _, o in ipairs(orphans) do
          local key = kind .. ":" .. o.name
          if o.kind == kind and (pass == 1 or not failures[key]) then
            local done, e = pcall(removers[kind], o)
            if done then
              removed[#removed + 1] = o
              failures[key] = nil
              progress = true
              log.info("census", "removed an orphan " .. kind, { object = o.name })
            else
              failures[key] = { object = o, error = errors.message(e) }
            end
          end
        end
      end
      if not progress then
        break
      end
    end
  end)
  for _, l in ipairs(locks) do
    l:close()
  end
  if not ok then
    error(err, 0)
  end
  local failed = {}
  for _, f in pairs(failures) do
    failed[#failed + 1] = f
  end
  table.sort(failed, function(a, b) return a.object.name < b.object.name end)
  return removed, failed, problems
end

return M
