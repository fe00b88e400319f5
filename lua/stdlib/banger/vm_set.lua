--- banger.vm_set: changing an existing VM's machine (`banger vm set`):
-- vCPUs, memory, the work disk's size and NAT. Values are checked by
-- banger.vm_settings, as `vm create` checks them. A stopped VM's row is
-- changed (and its work disk grown) now, and its next start boots with the
-- new values. A running VM gets NAT on or off at once; vCPUs, memory and
-- the work disk are refused while it runs, before anything is changed:
-- a change that silently waits for a restart is easy to forget, and QEMU
-- cannot take them live here (no memory or CPU hot-plug on `-M pc` under
-- TCG, and the guest's filesystem is mounted).
local errors = require("banger.errors")
local vms = require("banger.vms")
local fs = require("banger.native.fs")
local units = require("banger.units")
local vm_settings = require("banger.vm_settings")

local M = {}

local MiB = 1024 * 1024

-- The row column each setting changes, in the order they are reported.
local columns = { { "vcpus", "vcpus" }, { "memory", "memory_mib" }, { "work_disk", "work_disk_mib" }, { "nat", "nat" } }

--- `changes` ({ vcpus =, memory =, work_disk =, nat = }, each optional;
-- sizes in banger's size syntax) checked as `vm create` checks them, as
-- row values: { vcpus = integer, memory_mib = integer, work_disk_mib =
-- integer, nat = boolean }. Raises a usage error (exit 2) when none is
-- given or one is invalid; `how` is banger.vm_settings.check's (default:
-- the `vm set` flags).
function M.check(changes, how)
  how = how or { names = vm_settings.flags, command = "vm set" }
  if changes.vcpus == nil and changes.memory == nil and changes.work_disk == nil and changes.nat == nil then
    errors.usage("nothing to change: give --cpus, --memory, --work-disk, --nat or --no-nat", how.command)
  end
  vm_settings.check({ vcpus = changes.vcpus, memory = changes.memory, work_disk = changes.work_disk,
    nat = changes.nat }, how)
  local flags = vm_settings.flags
  return {
    vcpus = changes.vcpus,
    memory_mib = changes.memory ~= nil and vm_settings.mib(changes.memory, flags.memory) or nil,
    work_disk_mib = changes.work_disk ~= nil and vm_settings.mib(changes.work_disk, flags.work_disk) or nil,
    nat = changes.nat,
  }
end

local function current(row, column)
  if column == "nat" then
    return row.nat == 1 or row.nat == true
  end
  return row[column]
end

-- The work disk a VM's next start uses. After a snapshot it is a qcow2
-- overlay over the snapshot's frozen layer: only the overlay's virtual size
-- grows (`qemu-img resize`: rewriting qcow2 metadata is its job, and this
-- is no hot path), the frozen layer stays as the snapshot needs it, and the
-- filesystem inside is grown online by the guest at its next boot, as every
-- boot grows the work disk's filesystem to its disk (docs/ext4.md). A raw
-- work disk is grown here, file and filesystem (ext4.grow).
local function grow_work_disk(row, mib)
  local dir = vms.dir(row)
  local overlay = dir .. "/work.qcow2"
  if fs.exists(overlay) then
    require("banger.tools").require("qemu-img")
    local r = errors.check(require("banger.native.proc").run({ "qemu-img", "resize", "-q", "-f", "qcow2", overlay,
      tostring(mib * MiB) }))
    if r.code ~= 0 then
      errors.raise("EIO", "growing the work disk overlay of VM '" .. row.name .. "': " .. r.stderr)
    end
    return
  end
  require("banger").ext4.grow(dir .. "/work.ext4", mib * MiB)
end

--- Applies checked changes (M.check's result) to VM `name`, holding its
-- lock. Returns { name, state, vcpus, memory_mib, work_disk_mib, nat,
-- applied, pending }: the VM's settings after the change, and which of
-- them changed: `applied` in effect now (NAT on a running VM), `pending`
-- from the next start. A value equal to the current one is neither.
-- Raises EBUSY for vCPUs, memory or work disk on a running VM, EINVAL for
-- a smaller work disk or for --no-nat on a VM with an egress allow-list;
-- nothing is changed then.
function M.apply(name, changes)
  local lock <close> = vms.lock(name)
  local row = vms.require(name)
  local running = vms.alive(row)
  if not running and row.state ~= "created" and row.state ~= "stopped" and row.state ~= "error" then
    errors.raise("EBUSY", "VM '" .. name .. "' is " .. row.state .. "; try again once it is running or stopped")
  end
  local changed = {}
  for _, c in ipairs(columns) do
    local want = changes[c[2]]
    if want ~= nil and want ~= current(row, c[2]) then
      changed[#changed + 1] = c
    end
  end
  if changes.nat == false and require("banger.egress").enabled(row) then
    -- its allow-list's rules go with the NAT (net.remove_nat)
    errors.raise("EINVAL", "VM '" .. name .. "' has an egress allow-list, which needs NAT: it cannot be turned off",
      { exit = 2 })
  end
  local need_stop = {}
  for _, c in ipairs(changed) do
    if c[2] == "work_disk_mib" and changes.work_disk_mib < row.work_disk_mib then
      errors.raise("EINVAL", string.format("cannot shrink the work disk of VM '%s' from %s to %s: a work disk only grows",
        name, units.format_bytes(row.work_disk_mib * MiB), units.format_bytes(changes.work_disk_mib * MiB)))
    end
    if running and c[2] ~= "nat" then
      need_stop[#need_stop + 1] = vm_settings.flags[c[1]]
    end
  end
  if #need_stop > 0 then
    errors.raise("EBUSY", "VM '" .. name .. "' is running: " .. table.concat(need_stop, ", ")
      .. " can only change while it is stopped; stop it first (banger vm stop " .. name .. "), "
      .. "or change only --nat/--no-nat while it runs")
  end

  local applied, pending, fields = {}, {}, {}
  for _, c in ipairs(changed) do
    local column, want = c[2], changes[c[2]]
    if column == "work_disk_mib" then
      -- The row keeps the old size until the disk has grown: a grow cut
      -- short is finished by the next `vm set` with the same size.
      grow_work_disk(row, want)
    end
    if column == "nat" and running and row.ip then
      -- live, and recorded like the NAT a start makes (net.enable_nat)
      if want then
        require("banger.net").enable_nat(row)
      else
        require("banger.net").disable_nat(row)
      end
      vms.update(row, { nat = want and 1 or 0 })
      applied[#applied + 1] = column
    else
      fields[column] = column == "nat" and (want and 1 or 0) or want
      pending[#pending + 1] = column
    end
  end
  if next(fields) then
    vms.update(row, fields)
  end
  require("banger.log").info("vm", "set", { vm = name, applied = table.concat(applied, ","),
    pending = table.concat(pending, ",") })
  return { name = row.name, state = running and "running" or row.state, vcpus = row.vcpus, memory_mib = row.memory_mib,
    work_disk_mib = row.work_disk_mib, nat = current(row, "nat"), applied = applied, pending = pending }
end

return M
