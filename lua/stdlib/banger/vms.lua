--- banger.vms: what banger knows about VMs, and keeping it true.
--
-- The row in `vms` is what a VM *is*. What is *currently true* of a running
-- VM (hypervisor pid and command line, sockets, tap) is in handles.json in
-- the VM's directory, with the teardown identity mirrored into the row's
-- handle_* columns so cleanup still works if the file is lost.
-- Every mutation of one VM happens under that VM's lock file; there is no
-- global lock.
local errors = require("banger.errors")
local state = require("banger.state")
local fs = require("banger.native.fs")
local json = require("banger.native.json")
local vmm = require("banger.native.vmm")
local validate = require("banger.native.validate")
local log = require("banger.log")

local M = {}

local function now()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end
M.now = now

--- `bytes` random bytes from the kernel, as lowercase hex (ids, names).
function M.random_hex(bytes)
  local f = assert(io.open("/dev/urandom", "rb"))
  local raw = f:read(bytes)
  f:close()
  return (raw:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

function M.dir(row_or_id)
  local id = type(row_or_id) == "table" and row_or_id.id or row_or_id
  return state.layout().state .. "/vms/" .. id
end

function M.runtime_dir(row_or_id)
  local id = type(row_or_id) == "table" and row_or_id.id or row_or_id
  return state.layout().runtime .. "/vms/" .. id
end

--- Raises unless `name` is a valid VM name: a name from the command line
-- is checked before it reaches any path (lock files, directories).
function M.check_name(name)
  if type(name) ~= "string" then
    errors.raise("EINVAL", "invalid VM name: expected a string, got " .. type(name))
  end
  errors.check(validate.vm_name(name))
end

-- A VM's lock. Released, it removes its file when no VM of that name
-- exists (any more): a lock file never outlives its VM.
local VmLock = {}
VmLock.__index = VmLock

function VmLock:close()
  local l = self.handle
  if not l then
    return
  end
  self.handle = nil
  local ok, row = pcall(M.get, self.name)
  if ok and not row then
    l:remove()
  else
    l:close()
  end
end
VmLock.__close = VmLock.close

local function lock_path(name)
  return state.layout().state .. "/locks/vm-" .. name .. ".lock"
end

local function take(name, timeout_ms)
  local l, msg, code = fs.lock(lock_path(name), { timeout_ms = timeout_ms })
  if not l then
    return nil, msg, code
  end
  return setmetatable({ name = name, handle = l }, VmLock)
end

--- Holds the VM's lock until closed: `local l <close> = vms.lock(name)`.
-- The VM must exist (checked before any file is touched) unless
-- opts.creating, for the create that is about to insert it.
function M.lock(name, timeout_ms, opts)
  M.check_name(name)
  if not (opts and opts.creating) then
    M.require(name)
  end
  fs.mkdir(state.layout().state .. "/locks", 448, true)
  local l, msg, code = take(name, timeout_ms)
  if not l then
    if code == "EBUSY" then
      errors.raise("EBUSY", "VM '" .. name .. "' is busy: another banger command is working on it")
    end
    errors.raise(code, msg)
  end
  return l
end

--- The VM's lock when nobody holds it, else nil (reconcile; like the
-- fs.lock it replaces, it makes no locks directory).
function M.try_lock(name)
  return (take(name, 0))
end

function M.get(name)
  return state.db():query("SELECT * FROM vms WHERE name = ?", name)[1]
end

--- The VM named `name`, or a clear error.
function M.require(name)
  M.check_name(name)
  local row = M.get(name)
  if not row then
    errors.raise("ENOENT", "no VM named '" .. tostring(name) .. "' (see 'banger vm list')", { exit = 1 })
  end
  return row
end

function M.list()
  return state.db():query("SELECT * FROM vms ORDER BY name")
end

--- The names of the VMs that boot kernel `name`.
---@param name string
---@return string[]
function M.using_kernel(name)
  local names = {}
  for i, r in ipairs(state.db():query("SELECT name FROM vms WHERE kernel = ? ORDER BY name", name)) do
    names[i] = r.name
  end
  return names
end

--- Inserts a new VM's row in state 'creating' (the caller holds the lock on
-- `name`): a fresh id, MAC and vm_dir, the address from
-- opts.allocate_ip(db) (nil: none). opts.also(db, row) runs in the same
-- transaction. `fields`: image, kernel, driver, vcpus, memory_mib,
-- disk_mib, work_disk_mib, nat, owner (optional: who the VM belongs to,
-- banger.sandbox). Returns the row; EEXIST when the name is taken.
---@param name string
---@param fields table
---@param opts { allocate_ip: fun(db): string?, also: fun(db, row: table)? }|nil
---@return table row
function M.insert(name, fields, opts)
  opts = opts or {}
  local id = M.random_hex(6)
  local f = fields
  local row
  state.transaction(function(db)
    if db:query("SELECT 1 FROM vms WHERE name = ?", name)[1] then
      errors.raise("EEXIST", "a VM named '" .. name .. "' already exists")
    end
    local t = now()
    db:exec([[INSERT INTO vms (id, name, image, kernel, driver, vcpus, memory_mib, disk_mib, work_disk_mib, nat,
                               ip, mac, state, vm_dir, created_at, updated_at, owner)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'creating', ?, ?, ?, ?)]],
      id, name, f.image, f.kernel, f.driver, f.vcpus, f.memory_mib, f.disk_mib, f.work_disk_mib, f.nat,
      opts.allocate_ip and opts.allocate_ip(db) or json.null,
      string.format("02:%s:%s:%s:%s:%s", id:sub(1, 2), id:sub(3, 4), id:sub(5, 6), id:sub(7, 8), id:sub(9, 10)),
      M.dir(id), t, t, f.owner or json.null)
    row = db:query("SELECT * FROM vms WHERE id = ?", id)[1]
    if opts.also then
      opts.also(db, row)
    end
  end)
  return row
end

--- Updates columns of a VM row (json.null stores NULL) and the table itself.
function M.update(row, fields)
  local sets, args = { "updated_at = ?" }, { now() }
  for k, v in pairs(fields) do
    sets[#sets + 1] = k .. " = ?"
    args[#args + 1] = v
  end
  args[#args + 1] = row.id
  state.db():exec("UPDATE vms SET " .. table.concat(sets, ", ") .. " WHERE id = ?", table.unpack(args))
  for k, v in pairs(fields) do
    row[k] = v ~= json.null and v or nil
  end
end

function M.set_state(row, new_state, fields)
  fields = fields or {}
  fields.state = new_state
  M.update(row, fields)
end

-- handles.json -----------------------------------------------------------

function M.handles_path(row)
  return M.dir(row) .. "/handles.json"
end

--- Records what is now true of a running VM: the scratch file and its mirror in the row.
function M.save_handles(row, h)
  errors.check(fs.write_atomic(M.handles_path(row), json.encode(h, { indent = 2 }), 384))
  M.update(row, {
    handle_pid = h.pid,
    handle_cmdline = json.encode(h.cmdline or json.array()),
    handle_tap = h.tap or json.null,
    handle_api_socket = h.control_socket or json.null,
    handle_agent_socket = h.agent and h.agent.path or json.null,
  })
end

--- The handles of a VM: from handles.json, else rebuilt from the row's mirror.
function M.load_handles(row)
  local text = fs.read(M.handles_path(row))
  if text then
    local ok, h = pcall(json.decode, text)
    if ok and type(h) == "table" then
      return h
    end
    log.warn("vms", "unreadable handles.json, using the state row", { vm = row.name })
  end
  if not row.handle_pid then
    return nil
  end
  local cmdline = row.handle_cmdline and json.decode(row.handle_cmdline) or {}
  return {
    driver = row.driver,
    pid = row.handle_pid,
    cmdline = cmdline,
    control_socket = row.handle_api_socket,
    tap = row.handle_tap,
    agent = { kind = row.driver == "qemu" and "serial_socket" or "vsock_uds", path = row.handle_agent_socket },
  }
end

function M.clear_handles(row)
  fs.remove(M.handles_path(row))
  M.update(row, {
    handle_pid = json.null,
    handle_cmdline = json.null,
    handle_tap = json.null,
    handle_api_socket = json.null,
    handle_agent_socket = json.null,
  })
end

--- Is the VM's hypervisor really running? pid + command line + socket.
function M.alive(row, h)
  h = h or M.load_handles(row)
  return h ~= nil and vmm.alive(h) == true
end

--- Kills a VM's hypervisor if it still runs. One the root helper launched
-- (driver.isolate) runs as a uid of its own: only the helper may signal it,
-- and its signal_vmm checks that the pid is such a hypervisor. A plain
-- kill refused with EPERM goes the same way (handles rebuilt from the row
-- do not say who launched it).
function M.kill_hypervisor(h)
  if h.launcher ~= "helper" then
    local ok, msg, code = vmm.kill(h)
    if ok or code ~= "EPERM" then
      return errors.check(ok, msg, code)
    end
  end
  if not vmm.alive(h) then
    return true
  end
  require("banger.priv").call("signal_vmm", { pid = h.pid, signal = "KILL" })
  for _ = 1, 500 do
    if not vmm.alive(h) then
      return true
    end
    require("banger.native.sys").sleep_ms(10)
  end
  errors.raise("ETIMEDOUT", "the hypervisor (pid " .. h.pid .. ") did not exit after SIGKILL")
end

--- Releases everything a stopped or crashed VM holds on the host: its
-- hypervisor, NAT rules, tap, runtime directory and sockets, from what its
-- row records (banger.host_objects). Never raises: returns true when all is
-- gone, else false and the problems (the records stay for the next command).
function M.teardown(row, h)
  return require("banger.host_objects").release(row, h or M.load_handles(row))
end

--- Removes every host object and file of a VM, then its row. Raises, keeping
-- the row (and so the record of what is left), if an object could not be
-- removed: the next command's reconcile, or a later delete, finishes it.
function M.destroy(row)
  local done, problems = M.teardown(row)
  if not done then
    errors.raise("EBUSY", "VM '" .. row.name .. "' could not be removed completely (" .. table.concat(problems, "; ")
      .. "); it is kept so a later command can finish")
  end
  require("banger.host_objects").remove_files(row)
  require("banger.snapshots").vm_removed(row.id)
  require("banger.forwards").remove_all(row.id)
  state.db():exec("DELETE FROM vms WHERE id = ?", row.id)
end

-- reconcile ---------------------------------------------------------------

--- Makes the state store match the host: VMs marked running whose
-- hypervisor is gone are demoted and their objects released; a create that
-- died half-way (row still 'creating', nobody holding its lock) is removed;
-- a start that died is undone; a teardown that did not finish (host objects
-- still recorded on a VM that is not running) is finished. Never fails the
-- calling command: problems are logged.
function M.reconcile()
  local ok_rows, rows = pcall(state.db().query, state.db(),
    "SELECT * FROM vms WHERE state IN ('creating', 'starting', 'running', 'stopping') OR host_objects <> '{}' "
      .. "OR handle_pid IS NOT NULL")
  if not ok_rows then
    return
  end
  if #rows > 0 then
    -- rows to check mean VMs were made, so the locks directory is due anyway
    fs.mkdir(state.layout().state .. "/locks", 448, true)
  end
  for _, row in ipairs(rows) do
    local ok, e = pcall(function()
      -- A create or start killed while it spawned a process leaves, for a
      -- few milliseconds, a child between fork and exec holding a copy of
      -- the lock's descriptor; waiting briefly for a half-made VM's lock
      -- lets the very next command clean it up. A live create or start
      -- holds it much longer, and this command then leaves that VM alone.
      local half_made = row.state == "creating" or row.state == "starting"
      local lock <close> = take(row.name, half_made and 500 or 0)
      if not lock then
        return -- another command is working on this VM right now
      end
      local current = M.get(row.name)
      if not current or current.id ~= row.id then
        return
      end
      -- Holding the lock proves no other command is working on this VM,
      -- so a transitional state here is an operation that died half-way.
      local live = current.state == "running" or current.state == "stopping"
      if current.state == "creating" then
        log.warn("reconcile", "removing a VM whose create did not finish", { vm = current.name })
        M.destroy(current)
      elseif current.state == "starting" then
        log.warn("reconcile", "a start did not finish; stopping what it launched", { vm = current.name })
        M.teardown(current)
        M.set_state(current, "error", { last_error = "start did not finish" })
      elseif live and M.alive(current) then
        if current.state == "stopping" then
          M.set_state(current, "running")
        end
      elseif live then
        log.warn("reconcile", "VM was " .. current.state .. " but its hypervisor is gone; marking it stopped",
          { vm = current.name })
        M.teardown(current)
        M.set_state(current, "stopped")
      else
        log.warn("reconcile", "finishing the release of a " .. current.state .. " VM's host objects",
          { vm = current.name })
        M.teardown(current)
      end
    end)
    if not ok then
      log.error("reconcile", errors.message(e), { vm = row.name })
    end
  end
end

return M
