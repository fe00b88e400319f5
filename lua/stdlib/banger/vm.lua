--- banger.vm: VM lifecycle operations the recipes compose. Each takes the
-- VM's lock for its whole duration. Hooks let a project or user change one
-- step without copying a recipe: banger.vm.hooks.before_stop = function(row) ... end
local errors = require("banger.errors")
local vms = require("banger.vms")
local vmm = require("banger.native.vmm")
local log = require("banger.log")

local M = {}

M.hooks = {}
-- Functions run when a VM is deleted, after its files are gone:
-- function(row). SSH registers the known_hosts cleanup here.
M.delete_hooks = {}

local function run_hook(name, ...)
  local h = M.hooks[name]
  if h then
    h(...)
  end
end

M.default_grace_ms = 15000

--- Stops a running VM: a clean guest shutdown first, a kill after `grace_ms`.
-- Returns "stopped" (clean), "killed" (grace ran out) or "not running".
function M.stop_locked(row, grace_ms)
  local h = vms.load_handles(row)
  local result = "not running"
  if h and vmm.alive(h) then
    run_hook("before_stop", row, h)
    vms.set_state(row, "stopping")
    local clean = errors.check(vmm.shutdown(h, grace_ms or M.default_grace_ms))
    result = clean and "stopped" or "killed"
  end
  vms.teardown(row, h)
  vms.set_state(row, "stopped")
  log.info("vm", "stopped", { vm = row.name, how = result })
  return result
end

function M.stop(name, grace_ms)
  local lock <close> = vms.lock(name)
  return M.stop_locked(vms.require(name), grace_ms)
end

function M.kill(name)
  local lock <close> = vms.lock(name)
  local row = vms.require(name)
  local h = vms.load_handles(row)
  local was_alive = h and vmm.alive(h)
  vms.teardown(row, h)
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
  for _, hook in ipairs(M.delete_hooks) do
    local ok, e = pcall(hook, row)
    if not ok then
      log.warn("vm", "delete hook failed: " .. errors.message(e), { vm = name })
    end
  end
  return row
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
    ip = row.ip,
    mac = row.mac,
    dns_name = row.name .. ".vm",
    last_error = row.last_error,
    created_at = row.created_at,
    started_at = row.started_at,
    dir = vms.dir(row),
    pid = h and h.pid or nil,
    alive = h ~= nil and vmm.alive(h) == true,
  }
end

return M
