--- banger.vm: VM lifecycle operations the recipes compose. Each takes the
-- VM's lock for its whole duration. Hooks change one step of one call
-- without copying a recipe: they are passed to that call
-- (banger.vm.create(settings, { hooks = { after_boot = fn } })) and merged
-- over the defaults; nothing is installed in the module, so no call, module
-- or recipe changes what another one does (docs/scripting.md, "Hooks").
local errors = require("banger.errors")
local vms = require("banger.vms")
local vmm = require("banger.native.vmm")
local log = require("banger.log")
local config = require("banger.config")
local images = require("banger.images")
local kernels = require("banger.kernels")
local state = require("banger.state")
local units = require("banger.units")
local fs = require("banger.native.fs")
local validate = require("banger.native.validate")
local net = require("banger.net")
local host_objects = require("banger.host_objects")

local M = {}

local defaults = {}

--- A fresh table of the default hooks, e.g. for a hook that does its own
-- step and then the default one. Changing it changes nothing else.
function M.default_hooks()
  local out = {}
  for k, f in pairs(defaults) do
    out[k] = f
  end
  return out
end

--- The hooks of one call: `given` (a table of hook name -> function, or
-- nil) over the defaults. An unknown name or a value that is not a
-- function is a bad argument, not silently ignored.
function M.hooks_for(given)
  if given == nil then
    return M.default_hooks()
  end
  if type(given) ~= "table" then
    errors.raise("EINVAL", "hooks: expected a table of functions, got " .. type(given))
  end
  local out = M.default_hooks()
  for k, f in pairs(given) do
    if defaults[k] == nil then
      local names = {}
      for n in pairs(defaults) do
        names[#names + 1] = n
      end
      table.sort(names)
      errors.raise("EINVAL", "hooks: unknown hook '" .. tostring(k) .. "' (the hooks are "
        .. table.concat(names, ", ") .. ")")
    end
    if type(f) ~= "function" then
      errors.raise("EINVAL", "hooks." .. k .. ": expected a function, got " .. type(f))
    end
    out[k] = f
  end
  return out
end

-- The second argument of create: the stage callback, or a
-- table { on_stage = fn, hooks = {...} }.
local function call_options(call)
  if call == nil or type(call) == "function" then
    return call or function() end, M.hooks_for(nil)
  end
  if type(call) ~= "table" then
    errors.raise("EINVAL", "expected a stage function or { on_stage = fn, hooks = {...} }, got " .. type(call))
  end
  return call.on_stage or function() end, M.hooks_for(call.hooks)
end

M.default_grace_ms = 15000

-- Releases a stopped VM's host objects; what could not be removed stays
-- recorded and the next command's reconcile retries it, so the user is told
-- rather than the stop failing.
local function release(row, h)
  local done, problems = vms.teardown(row, h)
  if not done then
    require("banger.ui").warn("VM '" .. row.name .. "' stopped, but not all it held could be removed ("
      .. table.concat(problems, "; ") .. "); the next banger command tries again")
  end
end

--- Stops a running VM: a clean guest shutdown first, a kill after `grace_ms`.
-- Returns "stopped" (clean), "killed" (grace ran out) or "not running".
-- opts.hooks: before_stop(row, h).
function M.stop_locked(row, grace_ms, opts)
  local hooks = M.hooks_for(opts and opts.hooks)
  local h = vms.load_handles(row)
  local result = "not running"
  if h and vmm.alive(h) then
    hooks.before_stop(row, h)
    vms.set_state(row, "stopping")
    -- The agent powers the guest off cleanly whatever its init is; the
    -- driver's ACPI/Ctrl-Alt-Del and then a kill are the fallbacks.
    require("banger.guest").poweroff(h)
    local clean = errors.check(vmm.shutdown(h, grace_ms or M.default_grace_ms))
    if not clean then
      vms.kill_hypervisor(h)
    end
    result = clean and "stopped" or "killed"
  end
  release(row, h)
  vms.set_state(row, "stopped")
  log.info("vm", "stopped", { vm = row.name, how = result })
  return result
end

function M.stop(name, grace_ms, opts)
  local lock <close> = vms.lock(name)
  return M.stop_locked(vms.require(name), grace_ms, opts)
end

function M.kill(name)
  local lock <close> = vms.lock(name)
  local row = vms.require(name)
  local h = vms.load_handles(row)
  local was_alive = h and vmm.alive(h)
  release(row, h)
  vms.set_state(row, "stopped")
  return was_alive and "killed" or "not running"
end

--- Deletes a VM. A running VM needs `force` (it is killed first).
function M.delete(name, force)
  local lock <close> = vms.lock(name)
  local row = vms.require(name)
  if vms.alive(row) and not force then
    errors.raise("EBUSY", "VM '" .. name .. "' is running; stop it first or use --force", { exit = 1 })
  end
  vms.destroy(row)
  return row
end

local random_hex = vms.random_hex

--- A random RFC 4122 version 4 UUID: the VM generation id a QEMU VM gets at
-- every start and restore (-device vmgenid; the agent learns it too).
function M.new_generation()
  local h = random_hex(16)
  local variant = string.format("%x", 8 + tonumber(h:sub(17, 17), 16) % 4)
  return h:sub(1, 8) .. "-" .. h:sub(9, 12) .. "-4" .. h:sub(14, 16) .. "-" .. variant .. h:sub(18, 20) .. "-"
    .. h:sub(21, 32)
end

local mib = require("banger.vm_settings").mib

--- Which driver and acceleration to use: config and flags first, else
-- firecracker when its binary and usable KVM exist, else qemu (KVM when
-- usable, TCG otherwise, with a loud warning: TCG is tens of times slower).
function M.pick_driver(requested, accel)
  local caps = vmm.detect()
  local cfg = config.get().driver
  requested = requested or cfg.name
  accel = accel or cfg.accel
  if requested == "auto" then
    requested = (caps.kvm_usable and vmm.find_executable(cfg.firecracker_bin)) and "firecracker" or "qemu"
  end
  if requested == "qemu" and accel == "auto" then
    accel = caps.kvm_usable and "kvm" or "tcg"
  end
  if requested == "qemu" and accel == "tcg" and not M.tcg_warned then
    M.tcg_warned = true
    require("banger.ui").warn("no usable KVM on this host" .. (caps.kvm_pvm and " (only kvm_pvm, which cannot run stock kernels)" or "")
      .. ": running QEMU with TCG software emulation, expect slow boots")
  end
  local bin = requested == "qemu" and cfg.qemu_bin or cfg.firecracker_bin
  return requested, accel, vmm.find_executable(bin) or bin
end

--- The kernel command line: banger's init in the initramfs reads root=,
-- ip= (Debian kernels have no IP autoconfiguration) and banger.* keys.
function M.kernel_cmdline(row, extra)
  local parts = { "console=ttyS0", "reboot=k", "panic=-1", "root=/dev/vda", "rw", "rootfstype=ext4",
    "banger.name=" .. row.name }
  if row.driver == "firecracker" then
    -- skip probing for devices a microVM does not have (FIRECRACKER.md)
    parts[#parts + 1] = "i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd"
  end
  for _, e in ipairs(net.kernel_args(row)) do
    parts[#parts + 1] = e
  end
  for _, e in ipairs(extra or {}) do
    parts[#parts + 1] = e
  end
  return table.concat(parts, " ")
end

-- The default hooks (docs/scripting.md lists them with their arguments).

-- Waits until the guest agent answers (raises after timeout_ms).
defaults.wait_ready = function(row, h, timeout_ms)
  return require("banger.guest").wait_ready(row, h, timeout_ms)
end

-- The guest address of a new VM (called inside the create transaction), or
-- nil for a VM without network.
defaults.allocate_ip = function(db)
  if net.enabled() then
    return net.allocate_ip(db)
  end
end

-- Firecracker needs a raw root disk of its own: a reflink where the
-- filesystem can, else a sparse copy, extended to the VM's disk size (the
-- guest grows its filesystem into it at boot).
defaults.clone_rootfs = function(src, dst, bytes)
  errors.check(vmm.clone_disk(src, dst, bytes))
end

-- A fresh ext4 work disk, provisioned (SSH key, identity, the config's
-- file_sync and the call's settings.file_sync) before the VM first boots.
defaults.create_work_disk = function(path, bytes, settings)
  local ext4 = require("banger").ext4
  local img <close> = ext4.create(path, bytes)
  require("banger.provision").work_disk(img, { extra_file_sync = settings.file_sync })
  img:close()
end

-- A cold start of a VM made earlier, before it boots: the work disk
-- ({ path, format }) gets banger's SSH key, the git identity and the
-- config's file_sync again (banger.provision.refresh_disk).
defaults.refresh_work_disk = function(row, disk)
  require("banger.provision").refresh_disk(row, disk)
end

local function nothing() end
-- The VM's disks exist and it has not booted: add to them (vm run copies
-- the repository onto the work disk here).
defaults.provision_disks = nothing
-- The launch spec is complete: add a disk or kernel argument to it.
defaults.before_launch = nothing
-- The guest answers and the VM is marked running.
defaults.after_boot = nothing
-- A running VM is about to be shut down.
defaults.before_stop = nothing

--- Has the root helper start QEMU as a uid of its own (driver.isolate):
-- every file it needs is opened here and handed over as a descriptor, so
-- the hypervisor can reach nothing else of the owner's (docs/privileges.md).
function M.launch_isolated(row, spec, stage)
  if row.driver ~= "qemu" then
    errors.raise("ENOTSUP", "driver.isolate needs the qemu driver: firecracker opens its disks by path, "
      .. "which only its jailer (not supported here) can confine")
  end
  local params, fds = errors.check(vmm.isolated_request(spec, spec.accel == "kvm" and "kvm" or "tcg"))
  stage("launch", "qemu -M " .. (spec.accel == "kvm" and "microvm (kvm)" or "pc (tcg)") .. ", isolated by the root helper")
  local ok, launched = pcall(require("banger.priv").call, "launch_vmm", params, fds)
  for _, fd in ipairs(fds) do
    fd:close()
  end
  if not ok then
    error(launched, 0)
  end
  -- Recorded before waiting for QMP: if this process dies now, reconcile
  -- still knows which pid to have the helper kill (its owner cannot).
  vms.save_handles(row, errors.check(vmm.isolated_handles(spec, launched.pid, launched.argv)))
  local adopted, h = pcall(function()
    return errors.check(vmm.adopt_isolated(spec, launched.pid, launched.argv, function(name, detail)
      stage(name, detail)
    end))
  end)
  if not adopted then
    pcall(require("banger.priv").call, "signal_vmm", { pid = launched.pid, signal = "KILL" })
    error(h, 0)
  end
  log.info("vm", "isolated hypervisor", { vm = row.name, pid = launched.pid, uid = launched.uid })
  return h
end

--- Starts a created or stopped VM (lock held by the caller). On failure the
-- half-started hypervisor and host resources are released and the row says
-- 'error' with the reason. opts.hooks: refresh_work_disk, before_launch,
-- wait_ready, after_boot.
function M.start_locked(row, opts, stage)
  opts = opts or {}
  stage = stage or function() end
  local hooks = M.hooks_for(opts.hooks)
  local kernel = kernels.require(row.kernel)
  local image = images.require(row.image)
  local dir = vms.dir(row)
  -- A VM restored from a snapshot, or one that was snapshotted, works
  -- on a qcow2 overlay above the snapshot's frozen work layer.
  local work = fs.exists(dir .. "/work.qcow2") and { id = "work", path = dir .. "/work.qcow2", format = "qcow2" }
    or { id = "work", path = dir .. "/work.ext4", format = "raw" }
  -- Only a cold start of a VM made earlier: create has just provisioned the
  -- disk, and a restored VM's RAM holds its filesystem mounted (writing
  -- the image under it would corrupt it). A failure leaves the VM as it
  -- was: nothing has been started yet.
  if not opts.restore and opts.during ~= "creating" then
    stage("provision", nil)
    local ok, err = pcall(hooks.refresh_work_disk, row, { path = work.path, format = work.format })
    if not ok then
      if errors.is(err) and err.code == "ECANCELED" then
        error(err, 0)
      end
      errors.raise(errors.is(err) and err.code or "EPROVISION", "VM '" .. row.name
        .. "' not started: writing its work disk (SSH key, git identity, file_sync) failed: " .. errors.message(err))
    end
  end
  -- The VM stays in its transitional state ('creating' for a create,
  -- 'starting' otherwise) until the agent answers: a crash before that is
  -- recognised by reconcile and undone.
  vms.set_state(row, opts.during or "starting", { last_error = require("banger.native.json").null })
  local ok, err = pcall(function()
    stage("kernel args", nil)
    local runtime = vms.runtime_dir(row)
    host_objects.record(row, "runtime_dir", runtime)
    fs.mkdir(state.layout().runtime .. "/vms", 448, true)
    errors.check(fs.mkdir_private(runtime))
    local qemu = row.driver == "qemu"
    local spec = {
      id = row.id,
      name = row.name,
      vcpus = row.vcpus,
      memory_mib = row.memory_mib,
      kernel = kernel.vmlinux,
      initrd = kernel.initrd,
      cmdline = M.kernel_cmdline(row, image.init and { "banger.init=" .. image.init, table.unpack(opts.kernel_args or {}) }
        or opts.kernel_args),
      vm_dir = dir,
      runtime_dir = runtime,
      console_log = dir .. "/console.log",
      accel = opts.accel,
      binary = opts.binary,
      disks = {
        { id = "rootfs", path = dir .. "/root." .. (row.driver == "qemu" and "qcow2" or "img"),
          format = row.driver == "qemu" and "qcow2" or "raw", root = true },
        work,
      },
      nics = {},
      -- The CID only has to be unique among VMs sharing a vhost-vsock
      -- device; deriving it from the id keeps it stable across restarts.
      agent = { kind = row.driver == "qemu" and "serial_socket" or "vsock_uds", port = 52,
        cid = 3 + tonumber(row.id:sub(1, 6), 16) },
    }
    local workspace_disk = dir .. "/workspace.ext4"
    local ws = not opts.restore and fs.exists(workspace_disk) and require("banger.workspace").recorded(row)
    if ws then
      -- the workspace of a warm `vm run`, hot-plugged then: attached at boot now
      spec.disks[#spec.disks + 1] = { id = "ws", path = workspace_disk, format = "raw",
        serial = require("banger.workspace").disk_serial }
    end
    if qemu then
      spec.generation = M.new_generation()
      if opts.restore then
        -- mapped privately: the snapshot's RAM never changes, and every
        -- restore of it shares the pages it has not written to
        spec.memory_file, spec.memory_shared = opts.restore.ram_file, false
        spec.cmdline = opts.restore.kernel_cmdline or spec.cmdline
      else
        -- shared, so a snapshot saves only the device state (docs/snapshots.md)
        spec.memory_file, spec.memory_shared = dir .. "/ram", true
        fs.remove(spec.memory_file)
      end
    end
    if opts.restore then
      spec.restore = { state = opts.restore.state, ram = opts.restore.ram }
      spec.memory_file = spec.memory_file or opts.restore.ram_file
    end
    stage("network", row.ip)
    local tap_fd <close> = net.attach(row, spec)
    hooks.before_launch(row, spec)
    local isolate = config.get().driver.isolate
    -- Before the launch: a banger killed before the handles are saved
    -- leaves this, and the next command finds the hypervisor by it.
    host_objects.record(row, "hypervisor", { launcher = isolate and "helper" or "banger", runtime_dir = runtime })
    local h
    if isolate then
      h = M.launch_isolated(row, spec, stage)
    else
      h = errors.check(vmm.launch(row.driver, spec, function(name, detail)
        stage(name, detail)
      end))
    end
    vms.save_handles(row, h)
    if opts.restore then
      -- loaded and paused: attach what the caller adds, run, become a new machine
      if opts.restore.before_resume then
        opts.restore.before_resume(row, h)
      end
      stage("resume", nil)
      errors.check(vmm.resume(h))
      stage("re-identify", nil)
      require("banger.guest").reidentify(row, h, spec.generation, opts.ready_timeout_ms or 60000)
    elseif opts.wait ~= false then
      stage("wait for agent", nil)
      hooks.wait_ready(row, h, opts.ready_timeout_ms or 120000)
      if ws then
        require("banger.workspace").mount_disk(row, ws.guest)
      end
    end
    vms.set_state(row, "running", { started_at = vms.now() })
    if row.ip then
      require("banger.dns").ensure_running()
    end
    -- the VM's forwarded host ports: a port that cannot be bound fails the start
    if #require("banger.forwards").list(row) > 0 then
      stage("forward ports", nil)
      require("banger.forwarder").start(row)
    end
    -- Container images (booted by banger-init) get an SSH server where the
    -- VM can reach their distribution's mirrors.
    if image.init and (row.nat == 1 or row.nat == true) and opts.wait ~= false and not opts.restore then
      stage("ssh server", nil)
      require("banger.guest_sshd").ensure(row)
    end
    hooks.after_boot(row, h)
  end)
  if not ok then
    vms.teardown(row)
    vms.set_state(row, "error", { last_error = errors.message(err) })
    error(err, 0)
  end
  return row
end

--- Starts stopped VM `name`. opts: driver, accel, wait, hooks (as
-- start_locked).
function M.start(name, opts, stage)
  local lock <close> = vms.lock(name)
  local row = vms.require(name)
  if vms.alive(row) then
    errors.raise("EBUSY", "VM '" .. name .. "' is already running")
  end
  local driver, accel, binary = M.pick_driver(opts and opts.driver or row.driver, opts and opts.accel)
  opts = opts or {}
  opts.accel, opts.binary = accel, binary
  return M.start_locked(row, opts, stage)
end

-- Inserts a new VM's row (banger.vms.insert) with the address from
-- hooks.allocate_ip. `also(db, row)` runs in the same transaction.
local function insert_row(name, f, hooks, also)
  return vms.insert(name, f, { allocate_ip = hooks.allocate_ip, also = also })
end

--- The kernel a VM of `image` boots (`name`, else the image's, else the
-- config's), set up first when it is the default one and missing.
function M.kernel_for(image, name)
  local kernel_name = name or image.kernel or config.get().vm.kernel
  if kernel_name == kernels.default_name and not pcall(kernels.require, kernel_name) then
    kernels.ensure_default(require("banger.ui").info)
  end
  kernels.require(kernel_name)
  return kernel_name
end

--- Creates and boots a VM. opts (the settings): name, image, kernel, vcpus,
-- memory, disk, work_disk, nat, driver, accel, publish (host ports,
-- "HOSTPORT:GUESTPORT[/udp]"), allow_hosts (egress allow-list; non-empty
-- implies nat; default config network.allow), file_sync (entries added to
-- the config's, for this VM), start, wait, kernel_args, owner (recorded in
-- the row's insert, before any file exists: banger.sandbox). `call` is the stage
-- callback, or { on_stage = fn, hooks = {...} } (every hook of
-- docs/scripting.md applies). A failure or Ctrl-C at any stage removes
-- everything the half-made VM had.
function M.create(opts, call)
  require("banger.vm_settings").check(opts)
  if opts.owner ~= nil and type(opts.owner) ~= "string" then
    errors.raise("EINVAL", "owner: expected a string, got " .. type(opts.owner))
  end
  local stage, hooks = call_options(call)
  local publish = require("banger.vm_settings").publish(opts)
  local allow_hosts = require("banger.vm_settings").allow_hosts(opts)
  if opts.file_sync ~= nil then
    config.check("file_sync", opts.file_sync, "banger.vm.create")
  end
  local cfg = config.get()
  local name = opts.name or ("vm-" .. random_hex(3))
  errors.check(validate.vm_name(name))
  local image = images.pick(opts.image or cfg.vm.image)
  local kernel_name = M.kernel_for(image, opts.kernel)
  local driver, accel, binary = M.pick_driver(opts.driver, opts.accel)
  -- The root disk holds the whole image file; a smaller one would cut its
  -- filesystem off.
  local disk_bytes = mib(opts.disk or cfg.vm.disk, "--disk") * 1024 * 1024
  local image_bytes = errors.check(fs.stat(image.rootfs_path)).size
  if disk_bytes < image_bytes then
    errors.raise("EINVAL", string.format("the root disk (%s) is smaller than image '%s' (%s): give --disk %dMiB or more",
      units.format_bytes(disk_bytes), image.name, units.format_bytes(image_bytes), (image_bytes + 1048575) // 1048576),
      { exit = 2 })
  end

  local lock <close> = vms.lock(name, nil, { creating = true })
  stage("allocate", name)
  local row = insert_row(name, { image = image.name, kernel = kernel_name, driver = driver,
    vcpus = opts.vcpus or cfg.vm.vcpus, memory_mib = mib(opts.memory or cfg.vm.memory, "--memory"),
    disk_mib = mib(opts.disk or cfg.vm.disk, "--disk"), work_disk_mib = mib(opts.work_disk or cfg.vm.work_disk, "--work-disk"),
    nat = ((opts.nat == nil and cfg.vm.nat or opts.nat) or #allow_hosts > 0) and 1 or 0, owner = opts.owner },
    hooks, function(db, r)
      -- --publish: the VM's forwards, in its row's own transaction
      require("banger.forwards").insert(db, r, publish)
      if #allow_hosts > 0 then
        vms.update(r, { allow_hosts = require("banger.native.json").encode(allow_hosts) })
      end
    end)

  local ok, err = pcall(function()
    stage("disks", nil)
    local dir = vms.dir(row)
    fs.mkdir(state.layout().state .. "/vms", 448, true)
    errors.check(fs.mkdir(dir, 448))
    if driver == "qemu" then
      errors.check(vmm.qcow2_overlay(image.rootfs_path, dir .. "/root.qcow2", row.disk_mib * 1024 * 1024))
    else
      hooks.clone_rootfs(image.rootfs_path, dir .. "/root.img", row.disk_mib * 1024 * 1024)
    end
    hooks.create_work_disk(dir .. "/work.ext4", row.work_disk_mib * 1024 * 1024, opts)
    hooks.provision_disks(row)
    if opts.start ~= false then
      M.start_locked(row, { accel = accel, binary = binary, wait = opts.wait, kernel_args = opts.kernel_args,
        during = "creating", hooks = hooks }, stage)
    else
      vms.set_state(row, "created")
    end
  end)
  if not ok then
    log.warn("vm", "create failed, removing the half-made VM: " .. errors.message(err), { vm = name })
    pcall(vms.destroy, row)
    error(err, 0)
  end
  return row
end

--- Restores snapshot `snap_name` into a new VM. opts: name, owner, accel, publish,
-- before_resume(row, h) (runs while the restored VM is still paused, e.g.
-- to hot-plug a disk), hooks (allocate_ip, clone_rootfs, before_launch,
-- after_boot). The new VM has its own name, address, MAC, overlays,
-- machine-id, SSH host keys and RNG state; a VM that cannot be
-- re-identified is removed, never left running as a copy (docs/snapshots.md).
function M.create_from(snap_name, opts, stage)
  opts = opts or {}
  stage = stage or function() end
  local hooks = M.hooks_for(opts.hooks)
  local snapshots = require("banger.snapshots")
  local snap = snapshots.require(snap_name)
  local info = snapshots.check_restorable(snap)
  local name = opts.name or ("vm-" .. random_hex(3))
  errors.check(validate.vm_name(name))
  local driver, accel, binary = M.pick_driver(snap.driver, opts.accel or info.accel)
  if driver ~= snap.driver then
    errors.raise("ENOTSUP", "snapshot '" .. snap.name .. "' was taken under " .. snap.driver .. ", not " .. driver)
  end
  local lock <close> = vms.lock(name, nil, { creating = true })
  stage("allocate", name)
  local row = insert_row(name, { image = snap.image, kernel = snap.kernel, driver = driver, vcpus = snap.vcpus,
    memory_mib = snap.memory_mib, disk_mib = snap.disk_mib, work_disk_mib = snap.work_disk_mib, nat = snap.nat,
    owner = opts.owner },
    hooks, function(db, r)
      -- before any file: its disks will be built on the snapshot's
      snapshots.add_user(snap.id, "vm", r.id)
      require("banger.forwards").insert(db, r, require("banger.vm_settings").publish(opts))
      -- the source's egress allow-list goes with its machine (and its resolv.conf)
      if snap.allow_hosts and snap.allow_hosts ~= "[]" then
        vms.update(r, { allow_hosts = snap.allow_hosts })
      end
    end)
  local sdir = snapshots.dir(snap)
  local ok, err = pcall(function()
    stage("disks", nil)
    local dir = vms.dir(row)
    fs.mkdir(state.layout().state .. "/vms", 448, true)
    errors.check(fs.mkdir(dir, 448))
    for _, d in ipairs(info.disks) do
      local target = d.id == "rootfs" and "root" or "work"
      local bytes = (d.id == "rootfs" and row.disk_mib or row.work_disk_mib) * 1024 * 1024
      if driver == "qemu" then
        errors.check(vmm.qcow2_overlay(d.layer, dir .. "/" .. target .. ".qcow2", bytes,
          d.layer:match("%.qcow2$") and "qcow2" or "raw"))
      else
        hooks.clone_rootfs(d.layer, dir .. "/" .. (target == "root" and "root.img" or "work.ext4"), bytes)
      end
    end
    M.start_locked(row, { accel = accel, binary = binary, during = "creating", hooks = hooks, restore = {
      -- a snapshot of a VM that was itself restored carries its RAM in the stream
      state = sdir .. "/state", ram = info.ram, ram_file = info.ram == "file" and (sdir .. "/ram") or nil,
      kernel_cmdline = info.kernel_cmdline,
      before_resume = opts.before_resume,
    } }, stage)
  end)
  if not ok then
    log.warn("vm", "restore failed, removing the half-made VM: " .. errors.message(err), { vm = name })
    pcall(vms.destroy, row)
    error(err, 0)
  end
  snapshots.update(snap, { last_used_at = vms.now() })
  log.info("vm", "restored", { vm = row.name, snapshot = snap.name })
  return row
end

--- Snapshots running VM `name` and restores `count` copies of it, named
-- PREFIX-1..N (default NAME-fork-1..), or opts.name for a single copy;
-- opts.hooks and opts.owner go to every restore. Returns the new rows and
-- timings.
function M.fork(name, opts, stage)
  opts = opts or {}
  local count = opts.count or 1
  if math.type(count) ~= "integer" or count < 1 or count > 64 then
    errors.usage("--count: expected an integer from 1 to 64, got " .. tostring(opts.count))
  end
  local prefix = opts.prefix or (name .. "-fork")
  local names = {}
  for i = 1, count do
    names[i] = prefix .. "-" .. i
  end
  if opts.name ~= nil then
    if count ~= 1 then
      errors.usage("a name is for one copy; give a prefix for --count " .. count)
    end
    names[1] = opts.name
  end
  for i = 1, count do
    errors.check(validate.vm_name(names[i]))
    if vms.get(names[i]) then
      errors.raise("EEXIST", "a VM named '" .. names[i] .. "' already exists", { exit = 1 })
    end
  end
  local sys = require("banger.native.sys")
  local t0 = sys.monotonic_ms()
  local snap, took = require("banger.snapshots").take(name, { kind = "fork",
    name = prefix .. "-" .. random_hex(3), stage = stage })
  local rows = {}
  for i = 1, count do
    rows[i] = M.create_from(snap.name, { name = names[i], hooks = opts.hooks, owner = opts.owner }, stage)
  end
  return rows, { snapshot = snap.name, pause_ms = took.pause_ms, total_ms = sys.monotonic_ms() - t0 }
end

--- Tells the user (stderr) that VM `name` is still running, when it is:
-- what `vm run` and `vm ssh` say as they leave a VM behind. Returns the
-- line printed, or nil when the VM is gone or stopped (a shell that ran
-- poweroff, a --rm run).
function M.remind_running(name)
  local row = vms.get(name)
  if not (row and vms.alive(row)) then
    return nil
  end
  local line = string.format("VM %s is still running ('banger vm stop %s' stops it, 'banger vm delete -f %s' removes it)",
    name, name, name)
  require("banger.ui").info(line)
  return line
end

--- A VM row as scripts and --json see it: durable fields plus live state.
function M.describe(row)
  local h = vms.load_handles(row)
  return {
    id = row.id,
    name = row.name,
    state = row.state,
    image = row.image,
    kernel = row.kernel,
    driver = row.driver,
    vcpus = row.vcpus,
    memory_mib = row.memory_mib,
    disk_mib = row.disk_mib,
    work_disk_mib = row.work_disk_mib,
    nat = row.nat == 1,
    allow_hosts = require("banger.egress").patterns(row),
    ip = row.ip,
    mac = row.mac,
    dns_name = row.name .. ".vm",
    last_error = row.last_error,
    created_at = row.created_at,
    started_at = row.started_at,
    dir = vms.dir(row),
    pid = h and h.pid or nil,
    -- started by the root helper as a uid of its own (driver.isolate)
    isolated = h ~= nil and h.launcher == "helper" or nil,
    alive = h ~= nil and vmm.alive(h) == true,
  }
end

return M
