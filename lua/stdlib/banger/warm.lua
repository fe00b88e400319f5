--- banger.warm: the snapshots that make `vm run` a restore instead of a
-- boot. The first run for a machine (image, kernel, sizes, NAT, driver,
-- file_sync sources, banger version) boots cold and is snapshotted as soon
-- as its agent answers, before any workspace is attached; later runs with
-- the same machine restore that snapshot and get the repository on a
-- hot-plugged disk of their own. A changed image or kernel, or another
-- banger, gives another key, so a stale snapshot is never restored; the
-- cache keeps the `vm.warm_snapshots` most recently used (docs/snapshots.md).
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local json = require("banger.native.json")
local log = require("banger.log")
local provision = require("banger.provision")
local snapshots = require("banger.snapshots")
local sys = require("banger.native.sys")

local M = {}

--- Whether this machine can run warm: QEMU on -M pc (TCG), the one machine
-- here with PCI hot-plug for the workspace disk. Returns false and why.
function M.usable(driver, accel)
  if driver ~= "qemu" then
    return false, "the " .. driver .. " driver cannot hot-plug the workspace disk"
  end
  if accel ~= "tcg" then
    return false, "QEMU's microvm machine (KVM) has no PCI hot-plug for the workspace disk"
  end
  return true
end

-- What the work disk of the snapshotted VM got from the host: file_sync
-- sources by path, size and modification time.
local function file_sync_fingerprint(entries)
  local out = {}
  for _, e in ipairs(entries or {}) do
    local st = fs.stat((e.host:gsub("^~/", (os.getenv("HOME") or "") .. "/")))
    out[#out + 1] = { e.host, e.guest, e.mode or false, st and st.size or false, st and st.mtime or false }
  end
  return out
end

--- The cache key of a machine: settings as vm.create takes them (after
-- defaults), the driver and accelerator, and the file_sync entries.
function M.key(s, driver, accel, file_sync)
  local images, kernels = require("banger.images"), require("banger.kernels")
  local image = images.pick(s.image)
  local kernel = kernels.require(require("banger.vm").kernel_for(image, s.kernel))
  local st = errors.check(fs.stat(image.rootfs_path))
  local cfg = require("banger.config").get()
  local doc = {
    banger = snapshots.build_id(),
    image = { image.name, st.size, st.mtime, st.ino },
    kernel = { kernel.name, kernel.sha256 },
    vcpus = s.vcpus or cfg.vm.vcpus,
    memory = s.memory or cfg.vm.memory,
    disk = s.disk or cfg.vm.disk,
    work_disk = s.work_disk or cfg.vm.work_disk,
    nat = (s.nat == nil and cfg.vm.nat or s.nat) and true or false,
    driver = driver,
    accel = accel,
    file_sync = file_sync_fingerprint(cfg.file_sync),
    extra_file_sync = file_sync_fingerprint(file_sync),
    -- the rest of what the work disk got before the first boot
    ssh_key = sys.sha256(provision.ssh_key().public_text),
    git = { provision.git_identity() },
  }
  return sys.sha256(json.encode(doc))
end

--- The ready warm snapshot of `key`, or nil. One that can no longer be
-- restored (a stale file, a kernel gone) is deleted when nothing needs it.
function M.find(key)
  local row = require("banger.state").db():query(
    "SELECT * FROM snapshots WHERE warm_key = ? AND state = 'ready'", key)[1]
  if not row then
    return nil
  end
  local ok, why = pcall(snapshots.check_restorable, row)
  if not ok then
    log.warn("warm", "not using warm snapshot " .. row.name .. ": " .. errors.message(why), { snapshot = row.name })
    local u = snapshots.users(row)
    if #u.vms == 0 and #u.snapshots == 0 then
      snapshots.remove(row)
    end
    return nil
  end
  return row
end

--- Keeps the `bound` most recently used warm snapshots; older ones are
-- deleted once nothing needs them. Returns the names deleted.
function M.prune(bound)
  local rows = require("banger.state").db():query(
    "SELECT * FROM snapshots WHERE kind = 'warm' AND state = 'ready' ORDER BY COALESCE(last_used_at, created_at) DESC")
  local deleted = {}
  for i, row in ipairs(rows) do
    local u = snapshots.users(row)
    if i > bound and #u.vms == 0 and #u.snapshots == 0 then
      snapshots.remove(row)
      deleted[#deleted + 1] = row.name
    end
  end
  if #deleted > 0 then
    log.info("warm", "pruned warm snapshots", { deleted = table.concat(deleted, ","), bound = bound })
  end
  return deleted
end

return M
