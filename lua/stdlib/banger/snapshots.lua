--- banger.snapshots: snapshots of running VMs, what depends on them, and
-- keeping them true after a crash. docs/snapshots.md explains the design.
--
-- A snapshot is a directory <state>/snapshots/<id> holding the device state
-- (`state`), the guest RAM (`ram`, sparse) and one frozen layer per disk,
-- plus a row in `snapshots`. Taking one (M.take) pauses the VM, saves it,
-- switches its disks onto new overlays above the frozen layers and resumes
-- it. Restores (banger.vm.create_from) map the RAM privately and put their
-- own overlays above the layers, so the layers and the RAM file never change
-- once the snapshot is ready.
--
-- Crash safety: the row (state 'creating') and the disk plan are written
-- before anything is made. The source VM's lock is held from the pause to
-- the resume, so reconcile knows a 'creating' snapshot whose source is not
-- locked was abandoned, and undoes it (M.reconcile).
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local json = require("banger.native.json")
local log = require("banger.log")
local state = require("banger.state")
local sys = require("banger.native.sys")
local validate = require("banger.native.validate")
local vmm = require("banger.native.vmm")
local vms = require("banger.vms")

local M = {}

function M.root()
  return state.layout().state .. "/snapshots"
end

function M.dir(row_or_id)
  local id = type(row_or_id) == "table" and row_or_id.id or row_or_id
  return M.root() .. "/" .. id
end

--- Snapshot names follow VM names (a DNS label): they appear in paths of
-- logs and in generated VM names.
function M.check_name(name)
  if type(name) ~= "string" or not validate.vm_name(name) then
    errors.raise("EINVAL", "invalid snapshot name '" .. tostring(name)
      .. "': use letters, digits and '-', starting with a letter (at most 63)", { exit = 2 })
  end
end

function M.get(name)
  return state.db():query("SELECT * FROM snapshots WHERE name = ?", name)[1]
end

function M.get_id(id)
  return state.db():query("SELECT * FROM snapshots WHERE id = ?", id)[1]
end

function M.require(name)
  M.check_name(name)
  local row = M.get(name)
  if not row or row.state ~= "ready" then
    errors.raise("ENOENT", "no snapshot named '" .. tostring(name) .. "' (see 'banger snapshot list')", { exit = 1 })
  end
  return row
end

function M.list()
  return state.db():query("SELECT * FROM snapshots WHERE state = 'ready' ORDER BY created_at, name")
end

function M.restore_info(row)
  local ok, r = pcall(json.decode, row.restore or "{}")
  return ok and type(r) == "table" and r or {}
end

local function update(row, fields)
  local sets, args = {}, {}
  for k, v in pairs(fields) do
    sets[#sets + 1] = k .. " = ?"
    args[#args + 1] = v
  end
  args[#args + 1] = row.id
  state.db():exec("UPDATE snapshots SET " .. table.concat(sets, ", ") .. " WHERE id = ?", table.unpack(args))
  for k, v in pairs(fields) do
    row[k] = v ~= json.null and v or nil
  end
end
M.update = update

-- Users ------------------------------------------------------------------

--- Records that `kind` ('vm' or 'snapshot') `id` needs snapshot `snap_id`.
function M.add_user(snap_id, kind, id)
  state.db():exec("INSERT OR IGNORE INTO snapshot_users (snapshot_id, user_kind, user_id) VALUES (?, ?, ?)",
    snap_id, kind, id)
end

--- Forgets everything `kind` `id` needed (a VM or snapshot being removed).
function M.drop_user(kind, id)
  state.db():exec("DELETE FROM snapshot_users WHERE user_kind = ? AND user_id = ?", kind, id)
end

--- The snapshots a VM needs (restored from, or continuing above).
function M.used_by_vm(vm_id)
  return state.db():query("SELECT snapshot_id FROM snapshot_users WHERE user_kind = 'vm' AND user_id = ?", vm_id)
end

--- Who needs a snapshot: { vms = {names}, snapshots = {names} }.
function M.users(row)
  local db = state.db()
  local out = { vms = {}, snapshots = {} }
  for _, r in ipairs(db:query([[SELECT v.name FROM snapshot_users u JOIN vms v ON v.id = u.user_id
                                 WHERE u.snapshot_id = ? AND u.user_kind = 'vm' ORDER BY v.name]], row.id)) do
    out.vms[#out.vms + 1] = r.name
  end
  for _, r in ipairs(db:query([[SELECT s.name FROM snapshot_users u JOIN snapshots s ON s.id = u.user_id
                                 WHERE u.snapshot_id = ? AND u.user_kind = 'snapshot' ORDER BY s.name]], row.id)) do
    out.snapshots[#out.snapshots + 1] = r.name
  end
  return out
end

-- What a snapshot must match to be restored --------------------------------

--- This banger build: a snapshot holds the running guest agent and the
-- device state of this build's QEMU arguments, so only the same build
-- restores it (a rebuild of the same version may differ).
function M.build_id()
  local b = sys.build()
  return b.version .. " (commit " .. b.commit .. ", built " .. b.built_at .. ")"
end

local function kernel_identity(name)
  local k = require("banger.kernels").require(name)
  return { name = name, sha256 = k.sha256 }
end

local function image_identity(name)
  local image = require("banger.images").require(name)
  local st = errors.check(fs.stat(image.rootfs_path))
  return { name = name, size = st.size, mtime = st.mtime, ino = st.ino }
end

--- Raises, saying what changed, unless `row` can be restored here: same
-- banger version, the kernel and image it was taken with still present and
-- unchanged, its files present.
function M.check_restorable(row)
  local r = M.restore_info(row)
  local function refuse(why)
    errors.raise("ESTALE", "snapshot '" .. row.name .. "' cannot be restored: " .. why
      .. " (take a new one; 'banger snapshot delete " .. row.name .. "' removes this one)", { exit = 1 })
  end
  local version = M.build_id()
  if r.banger_version ~= version then
    refuse("it was taken by banger " .. tostring(r.banger_version) .. ", this is " .. version)
  end
  local ok, k = pcall(kernel_identity, row.kernel)
  if not ok then
    refuse("its kernel '" .. row.kernel .. "' is gone")
  end
  if not r.kernel or k.sha256 ~= r.kernel.sha256 then
    refuse("kernel '" .. row.kernel .. "' changed since")
  end
  local ok_i, i = pcall(image_identity, row.image)
  if not ok_i then
    refuse("its image '" .. row.image .. "' is gone")
  end
  if not r.image or i.size ~= r.image.size or i.mtime ~= r.image.mtime or i.ino ~= r.image.ino then
    refuse("image '" .. row.image .. "' changed since")
  end
  for _, f in ipairs({ "state", r.ram == "file" and "ram" or nil }) do
    if not fs.exists(M.dir(row) .. "/" .. f) then
      refuse("its " .. f .. " file is missing")
    end
  end
  for _, d in ipairs(r.disks or {}) do
    if not fs.exists(d.layer) then
      refuse("its " .. d.id .. " layer is missing")
    end
  end
  return r
end

-- Taking a snapshot --------------------------------------------------------

-- The argument after `flag` in a hypervisor's argv.
local function arg_after(argv, flag)
  for i, a in ipairs(argv or {}) do
    if a == flag then
      return argv[i + 1]
    end
  end
end

-- The disks of a VM, as the snapshot sees them: the file the hypervisor
-- writes now, where its frozen layer goes, and (QEMU) the overlay it
-- continues on and that overlay's final name.
local function disk_plan(vm, dir)
  local vdir = vms.dir(vm)
  local plan = {}
  if vm.driver == "qemu" then
    local work_qcow = vdir .. "/work.qcow2"
    local work = fs.exists(work_qcow) and work_qcow or vdir .. "/work.ext4"
    plan[1] = { id = "rootfs", current = vdir .. "/root.qcow2", format = "qcow2", layer = dir .. "/rootfs.qcow2",
      next = vdir .. "/root.next.qcow2", final = vdir .. "/root.qcow2" }
    plan[2] = { id = "work", current = work, format = work == work_qcow and "qcow2" or "raw",
      layer = dir .. "/work." .. (work == work_qcow and "qcow2" or "ext4"), next = vdir .. "/work.next.qcow2",
      final = work_qcow }
  else
    plan[1] = { id = "rootfs", current = vdir .. "/root.img", format = "raw", layer = dir .. "/rootfs.img" }
    plan[2] = { id = "work", current = vdir .. "/work.ext4", format = "raw", layer = dir .. "/work.ext4" }
  end
  return plan
end

-- After the hypervisor writes to the new overlays: give them their final
-- names (the old files live on as the snapshot's layers), then note that
-- nothing is left to finish.
local function settle_disks(row, plan)
  for _, d in ipairs(plan) do
    if d.next and fs.exists(d.next) then
      errors.check(fs.rename(d.next, d.final))
      if d.current ~= d.final then
        fs.remove(d.current)
      end
    end
  end
  local info = M.restore_info(row)
  info.settled = true
  update(row, { restore = json.encode(info) })
end

local function size_of(dir)
  local total = 0
  for _, name in ipairs(fs.list(dir) or {}) do
    local st = fs.stat(dir .. "/" .. name)
    total = total + (st and st.blocks_bytes or 0)
  end
  return total
end
M.size_of = size_of

--- Snapshots running VM `vm_name`. opts: name, kind ('user'|'fork'|'warm'),
-- warm_key, stop (leave the VM stopped instead of resuming it), stage.
-- Returns the snapshot row and timings { pause_ms, save_ms }.
function M.take(vm_name, opts)
  opts = opts or {}
  local stage = opts.stage or function() end
  local lock <close> = vms.lock(vm_name)
  local vm = vms.require(vm_name)
  local h = vms.load_handles(vm)
  if vm.state ~= "running" or not vms.alive(vm, h) then
    errors.raise("ESRCH", "VM '" .. vm_name .. "' is not running: only a running VM can be snapshotted", { exit = 1 })
  end
  if h.hotplugged then
    errors.raise("ENOTSUP", "VM '" .. vm_name .. "' has a hot-plugged disk (the workspace of a warm 'vm run'), which a "
      .. "restore could not recreate; restart it ('banger vm restart " .. vm_name .. "') and snapshot it then", { exit = 1 })
  end
  local name = opts.name or (vm.name .. "-" .. os.date("!%Y%m%d-%H%M%S"))
  M.check_name(name)
  if M.get(name) then
    errors.raise("EEXIST", "a snapshot named '" .. name .. "' already exists", { exit = 1 })
  end
  local id = vms.random_hex(6)
  local dir = M.dir(id)
  local plan = disk_plan(vm, dir)
  local info = {
    banger_version = M.build_id(),
    kernel = kernel_identity(vm.kernel),
    image = image_identity(vm.image),
    cmdline = h.cmdline,
    -- a restore runs the same machine: same accelerator and kernel arguments
    accel = arg_after(h.cmdline, "-accel"),
    kernel_cmdline = arg_after(h.cmdline, "-append"),
    disks = plan,
    blocks_before = vm.driver == "qemu" and errors.check(vmm.block_files(h)) or nil,
  }
  -- The record first: whatever happens next, reconcile finds it.
  state.db():exec([[INSERT INTO snapshots (id, name, kind, state, source_vm, source_name, driver, image, kernel, vcpus,
                      memory_mib, disk_mib, work_disk_mib, nat, allow_hosts, restore, warm_key, created_at)
                    VALUES (?, ?, ?, 'creating', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)]],
    id, name, opts.kind or "user", vm.id, vm.name, vm.driver, vm.image, vm.kernel, vm.vcpus, vm.memory_mib,
    vm.disk_mib, vm.work_disk_mib, vm.nat, vm.allow_hosts or "[]", json.encode(info), opts.warm_key or json.null,
    vms.now())
  local row = M.get_id(id)
  local t0, paused = sys.monotonic_ms(), false
  local ok, err = pcall(function()
    fs.mkdir(M.root(), 448, true)
    errors.check(fs.mkdir(dir, 448))
    stage("snapshot", vm.name)
    for _, d in ipairs(plan) do
      if d.next then
        fs.remove(d.next) -- a stale one of an undone snapshot
      end
    end
    paused = true
    local stats = errors.check(vmm.snapshot(h, { state = dir .. "/state", ram = dir .. "/ram", disks = plan }))
    info.ram = stats.ram
    info.save = stats
    stage("snapshot saved", nil)
    -- Ready before the VM runs on: from here the files are complete, and
    -- a crash leaves a usable snapshot and a paused VM to resume.
    state.transaction(function(db)
      db:exec("UPDATE snapshots SET state = 'ready', restore = ?, size_bytes = ? WHERE id = ?", json.encode(info),
        size_of(dir), id)
      if vm.driver == "qemu" then
        -- the VM's disks continue above this snapshot's layers, and the
        -- layers above those of the snapshots the VM already needed
        for _, u in ipairs(M.used_by_vm(vm.id)) do
          M.add_user(u.snapshot_id, "snapshot", id)
        end
        M.add_user(id, "vm", vm.id)
      end
    end)
  end)
  if not ok then
    log.warn("snapshot", "snapshot failed, undoing it: " .. errors.message(err), { vm = vm.name })
    M.undo(row, vm, h)
    error(err, 0)
  end
  local save_ms = sys.monotonic_ms() - t0
  stage(opts.stop and "stop" or "resume source", nil)
  if opts.stop then
    vms.kill_hypervisor(h)
    settle_disks(M.get_id(id), plan)
    vms.teardown(vm, h)
    vms.set_state(vm, "stopped")
  else
    errors.check(vmm.resume(h))
    settle_disks(M.get_id(id), plan)
  end
  local pause_ms = sys.monotonic_ms() - t0
  row = M.get_id(id)
  log.info("snapshot", "taken", { vm = vm.name, snapshot = name, pause_ms = pause_ms, save_ms = save_ms,
    ram = info.ram, bytes = row.size_bytes })
  return row, { pause_ms = pause_ms, save_ms = save_ms, paused = paused }
end

--- Undoes a snapshot that did not become ready, and brings its source VM
-- back: running when its disks were not switched yet, else stopped (it was
-- paused since the switch, so nothing was written to the new overlays, and
-- its disks are as they were at the pause).
function M.undo(row, vm, h)
  local info = M.restore_info(row)
  if vm and h and vms.alive(vm, h) then
    local switched = false
    if vm.driver == "qemu" and info.blocks_before then
      local now = vmm.block_files(h)
      for id, file in pairs(now or {}) do
        if info.blocks_before[id] and info.blocks_before[id] ~= file then
          switched = true
        end
      end
    end
    if switched then
      log.warn("snapshot", "the VM's disks were switched by an unfinished snapshot; stopping it", { vm = vm.name })
      vms.kill_hypervisor(h)
      vms.teardown(vm, h)
      vms.set_state(vm, "stopped")
    elseif vmm.status(h) == "paused" then
      errors.check(vmm.resume(h))
    end
  end
  for _, d in ipairs(info.disks or {}) do
    if d.next then
      fs.remove(d.next)
    end
  end
  M.remove(row)
end

--- Removes a snapshot's files and row (no checks: see M.delete).
function M.remove(row)
  errors.check(fs.remove_tree(M.dir(row)))
  state.transaction(function(db)
    db:exec("DELETE FROM snapshot_users WHERE snapshot_id = ? OR (user_kind = 'snapshot' AND user_id = ?)", row.id,
      row.id)
    db:exec("DELETE FROM snapshots WHERE id = ?", row.id)
  end)
end

--- Deletes a snapshot nothing needs; raises naming the VMs and snapshots
-- that still do.
function M.delete(name)
  local row = M.require(name)
  local u = M.users(row)
  if #u.vms > 0 or #u.snapshots > 0 then
    local who = {}
    if #u.vms > 0 then
      who[#who + 1] = "VM(s) " .. table.concat(u.vms, ", ")
    end
    if #u.snapshots > 0 then
      who[#who + 1] = "snapshot(s) " .. table.concat(u.snapshots, ", ")
    end
    errors.raise("EBUSY", "snapshot '" .. name .. "' is still used by " .. table.concat(who, " and ")
      .. ": their disks are built on its files; delete those first", { exit = 1 })
  end
  local needed = state.db():query("SELECT snapshot_id FROM snapshot_users WHERE user_kind = 'snapshot' AND user_id = ?",
    row.id)
  M.remove(row)
  M.drop_unused_forks(needed)
  return row
end

--- Deletes every snapshot nothing needs (of `kinds`, default all), repeating
-- while a deletion frees another. Returns the deleted rows.
function M.prune(kinds)
  local deleted = {}
  repeat
    local progress = false
    for _, row in ipairs(M.list()) do
      if not kinds or kinds[row.kind] then
        local u = M.users(row)
        if #u.vms == 0 and #u.snapshots == 0 then
          M.remove(row)
          deleted[#deleted + 1] = row
          progress = true
        end
      end
    end
  until not progress
  return deleted
end

--- Deletes the fork snapshots among `needed` ({ {snapshot_id}, ... }: what
-- a removed VM or snapshot needed) that nothing needs any more.
function M.drop_unused_forks(needed)
  for _, n in ipairs(needed) do
    local row = M.get_id(n.snapshot_id)
    if row and row.kind == "fork" and row.state == "ready" then
      local u = M.users(row)
      if #u.vms == 0 and #u.snapshots == 0 then
        M.remove(row)
      end
    end
  end
end

--- Forgets a deleted VM's needs, and deletes the fork snapshots that were
-- only kept for it (its own `vm fork` snapshot once no fork is left).
function M.vm_removed(vm_id)
  local needed = M.used_by_vm(vm_id)
  M.drop_user("vm", vm_id)
  M.drop_unused_forks(needed)
end

--- Undoes abandoned snapshots (state 'creating', the source VM's lock free)
-- and finishes the disk renames of a snapshot whose taker died after it was
-- ready. Never raises.
function M.reconcile()
  local ok_rows, rows = pcall(function()
    return state.db():query("SELECT * FROM snapshots WHERE state = 'creating' "
      .. "OR json_extract(restore, '$.settled') IS NOT 1")
  end)
  if not ok_rows then
    return
  end
  for _, row in ipairs(rows) do
    local ok, e = pcall(function()
      local vm = state.db():query("SELECT * FROM vms WHERE id = ?", row.source_vm)[1]
      local lock <close> = vm and vms.try_lock(vm.name) or nil
      if vm and not lock then
        return -- the snapshot is being taken right now
      end
      local h = vm and vms.load_handles(vm)
      if row.state == "creating" then
        log.warn("reconcile", "undoing a snapshot that did not finish", { snapshot = row.name })
        M.undo(row, vm, h)
        return
      end
      local plan = M.restore_info(row).disks or {}
      local pending = false
      for _, d in ipairs(plan) do
        pending = pending or (d.next ~= nil and fs.exists(d.next))
      end
      if pending and vm then
        if h and vms.alive(vm, h) and vmm.status(h) == "paused" then
          errors.check(vmm.resume(h))
        end
        log.warn("reconcile", "finishing a snapshot's disk switch", { snapshot = row.name, vm = vm.name })
      end
      settle_disks(row, plan)
    end)
    if not ok then
      log.error("reconcile", errors.message(e), { snapshot = row.name })
    end
  end
end

--- A snapshot as scripts and --json see it.
function M.describe(row)
  local u = M.users(row)
  local r = M.restore_info(row)
  return {
    id = row.id,
    name = row.name,
    kind = row.kind,
    source_vm = row.source_name,
    driver = row.driver,
    image = row.image,
    kernel = row.kernel,
    vcpus = row.vcpus,
    memory_mib = row.memory_mib,
    disk_mib = row.disk_mib,
    work_disk_mib = row.work_disk_mib,
    ram = r.ram,
    size_bytes = row.size_bytes,
    banger_version = r.banger_version,
    created_at = row.created_at,
    last_used_at = row.last_used_at,
    used_by_vms = u.vms,
    used_by_snapshots = u.snapshots,
    dir = M.dir(row),
  }
end

return M
