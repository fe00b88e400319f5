--- banger.sandbox: the operations `banger serve` (HTTP API) and `banger mcp`
-- call. A sandbox is a banger VM (the same rows and stdlib: banger.vm,
-- banger.vms, banger.guest, banger.snapshots, banger.workspace), seen and
-- removed with `banger vm list/delete` too. Errors are banger's structured
-- errors: ENOENT, EINVAL, EBUSY (the agent is busy), ETIMEDOUT, EFBIG,
-- ENOTSUP (the image's agent is too old); docs/lua-api/sandbox.md.
--
-- On QEMU the agent is one serial stream and a new session kills what the
-- previous one ran, so every use of a sandbox's agent here holds an flock
-- in the VM's directory (a bounded wait, then EBUSY); exec goes over SSH,
-- where sessions are independent, when the VM has an address and sshd.
local errors = require("banger.errors")
local vms = require("banger.vms")
local fs = require("banger.native.fs")
local json = require("banger.native.json")
local sys = require("banger.native.sys")
local log = require("banger.log")

local M = {}

--- How long an operation waits for another one's use of the same agent
-- before EBUSY.
M.agent_wait_ms = 30000
--- read_file's default limit.
M.default_max_file_bytes = 256 * 1024 * 1024
--- workspace_tar's limit on the unpacked content.
M.max_workspace_bytes = 1024 * 1024 * 1024
M.max_path_length = 4096

--- `path` checked and normalised: absolute, no NUL, no `..` component,
-- at most M.max_path_length bytes and 255 per component; `.` and repeated
-- slashes are dropped. Raises EINVAL.
function M.check_path(path)
  if type(path) ~= "string" then
    errors.raise("EINVAL", "path: expected a string, got " .. type(path))
  end
  if #path == 0 or path:sub(1, 1) ~= "/" then
    errors.raise("EINVAL", "path '" .. path .. "' is not absolute")
  end
  if path:find("\0", 1, true) then
    errors.raise("EINVAL", "path contains a NUL byte")
  end
  if #path > M.max_path_length then
    errors.raise("EINVAL", "path is longer than " .. M.max_path_length .. " bytes")
  end
  local parts = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." then
      errors.raise("EINVAL", "path '" .. path .. "' has a '..' component")
    elseif #part > 255 then
      errors.raise("EINVAL", "a component of path '" .. path:sub(1, 64) .. "...' is longer than 255 bytes")
    elseif part ~= "." then
      parts[#parts + 1] = part
    end
  end
  return "/" .. table.concat(parts, "/")
end

-- owners --------------------------------------------------------------------

--- A process's start time (clock ticks since boot, /proc/<pid>/stat field
-- 22), or nil when there is no such process. With the pid it names one
-- process for good: a pid reused later has another start time.
function M.process_start_time(pid)
  local text = fs.read("/proc/" .. math.tointeger(pid) .. "/stat")
  -- the command name (field 2) may hold spaces and ')': count after the last ')'
  local rest = text and text:match("^.*%)%s+(.*)$")
  -- a zombie (Z) or dying (X) process is gone: its parent has not reaped
  -- it yet, or died without reaping it under an init that never does
  if not rest or rest:match("^[ZX]%s") then
    return nil
  end
  local i = 2
  for f in rest:gmatch("%S+") do
    i = i + 1
    if i == 22 then
      return math.tointeger(tonumber(f))
    end
  end
  return nil
end

--- The owner value for a sandbox that must die with process `pid`
-- (default this one): "session:<pid>:<starttime>".
function M.session_owner(pid)
  pid = pid or sys.getpid()
  local start = M.process_start_time(pid)
  if not start then
    errors.raise("ESRCH", "no process " .. tostring(pid))
  end
  return "session:" .. pid .. ":" .. start
end

--- Whether the owner of a sandbox is still there: a session owner while
-- its process (same pid AND start time) runs; any other owner (api:<uid>)
-- until its sandbox is deleted.
function M.owner_alive(owner)
  local pid, start = tostring(owner):match("^session:(%d+):(%d+)$")
  if not pid then
    return true
  end
  return M.process_start_time(tonumber(pid)) == math.tointeger(tonumber(start))
end

local function check_owner(owner)
  if owner == nil then
    return
  end
  if type(owner) ~= "string" or #owner > 128 or not owner:match("^[%w]+:[%w:._@-]*$") then
    errors.raise("EINVAL", "owner: expected 'api:<uid>' or 'session:<pid>:<starttime>', got " .. tostring(owner))
  end
end

-- records ---------------------------------------------------------------------

--- A VM row as the API shows a sandbox (JSON-ready).
function M.record(row)
  return {
    id = row.id,
    name = row.name,
    state = row.state,
    image = row.image,
    kernel = row.kernel,
    vcpus = row.vcpus,
    memory_bytes = row.memory_mib * 1024 * 1024,
    ip = row.ip,
    nat = row.nat == 1 or row.nat == true,
    allow_hosts = require("banger.egress").patterns(row), -- [] in JSON when empty
    owner = row.owner,
    created_at = row.created_at,
  }
end

-- The row of a sandbox by name or id; ENOENT.
local function row_of(name_or_id)
  if type(name_or_id) ~= "string" or name_or_id == "" then
    errors.raise("EINVAL", "sandbox: expected a name or id, got " .. tostring(name_or_id))
  end
  local row = require("banger.state").db():query("SELECT * FROM vms WHERE name = ? OR id = ? ORDER BY name = ? DESC",
    name_or_id, name_or_id, name_or_id)[1]
  if not row then
    errors.raise("ENOENT", "no sandbox '" .. name_or_id .. "'")
  end
  return row
end

function M.get(name_or_id)
  return M.record(row_of(name_or_id))
end

--- Every sandbox (every VM), or those of opts.owner.
function M.list(opts)
  opts = opts or {}
  local out = {}
  for _, row in ipairs(vms.list()) do
    if opts.owner == nil or row.owner == opts.owner then
      out[#out + 1] = M.record(row)
    end
  end
  return json.array(out) -- [] in JSON when empty, not {}
end

-- the agent, one user at a time ---------------------------------------------

--- Runs fn(client) holding the sandbox's agent lock (waiting at most
-- opts.wait_ms, default M.agent_wait_ms, then EBUSY) with a fresh agent
-- session.
function M.with_agent(row, fn, opts)
  local wait = opts and opts.wait_ms or M.agent_wait_ms
  local lock, msg, code = fs.lock(vms.dir(row) .. "/agent.lock", { timeout_ms = wait })
  if not lock then
    if code == "EBUSY" then
      errors.raise("EBUSY", "sandbox '" .. row.name .. "' is busy: another operation is using its agent (waited "
        .. wait .. " ms)")
    end
    errors.raise(code, msg)
  end
  local ok, r = pcall(function()
    local c <close> = require("banger.guest").connect(row)
    return fn(c)
  end)
  lock:close()
  if not ok then
    error(r, 0)
  end
  return r
end

-- Whether the sandbox runs an SSH server banger can use: asked through the
-- agent once per boot and remembered in the VM's runtime directory (gone
-- with the VM's run), so an exec of another process need not wait for the
-- agent lock to learn it.
local has_sshd = {}
local function sshd(row)
  local key = row.id .. "@" .. tostring(row.started_at)
  if has_sshd[key] == nil then
    local path = vms.runtime_dir(row) .. "/sandbox-sshd"
    local known = fs.read(path)
    if known == "yes" or known == "no" then
      has_sshd[key] = known == "yes"
    else
      has_sshd[key] = M.with_agent(row, function(c)
        local r = c:exec({ "sh", "-c", "test -x /usr/sbin/sshd || test -x /usr/sbin/dropbear" })
        return r.code == 0
      end)
      fs.write_atomic(path, has_sshd[key] and "yes" or "no", 384)
    end
  end
  return has_sshd[key]
end

-- create / delete -----------------------------------------------------------

--- The caller's tar at `tar_path`, made safe: extracted into `dir/tree` by
-- banger's hostile-archive extraction (engine/archive: nothing outside the
-- directory, no writing through a link, no device or set-id, at most
-- M.max_workspace_bytes), then packed again from what landed into
-- `dir/clean.tar`, whose path is returned. Only that tar reaches a guest.
function M.clean_tar(tar_path, dir)
  local archive = require("banger.native.archive")
  local tree = dir .. "/tree"
  errors.check(fs.mkdir(tree, 448))
  local ok, msg, code = archive.extract(tar_path, tree, M.max_workspace_bytes)
  if not ok then
    -- what libarchive refused (EARCHIVE) is the caller's bad tar, like an escaping entry
    errors.raise(code == "EFBIG" and "EFBIG" or "EINVAL", "workspace_tar: " .. tostring(msg))
  end
  local clean = dir .. "/clean.tar"
  errors.check(archive.create(clean, tree, require("banger.workspace").tree(tree)))
  return clean
end

local function unpack_workspace(row, tar_path)
  local workspace = require("banger.workspace")
  local tmp = errors.check(fs.mkdtemp("banger-sandbox-ws-"))
  local ok, err = pcall(function()
    local clean = M.clean_tar(tar_path, tmp)
    workspace.unpack_in_guest(row, clean, "/root/workspace", function(r, argv, o)
      return M.with_agent(r, function(c)
        local req = { stdin = o.stdin }
        table.move(argv, 1, #argv, 1, req)
        return c:exec(req)
      end)
    end)
  end)
  fs.remove_tree(tmp)
  if not ok then
    error(err, 0)
  end
end

--- Creates and starts a sandbox and waits for its agent (docs/lua-api/sandbox.md
-- for opts); on any failure removes what it made.
function M.create(opts)
  opts = opts or {}
  check_owner(opts.owner)
  local vm = require("banger.vm")
  if opts.workspace_tar ~= nil and not fs.stat(opts.workspace_tar) then
    errors.raise("ENOENT", "workspace_tar: no file " .. tostring(opts.workspace_tar))
  end
  local stage = opts.on_stage or function() end
  local row
  if opts.snapshot then
    row = vm.create_from(opts.snapshot, { name = opts.name, owner = opts.owner }, stage)
  else
    row = vm.create({ name = opts.name, image = opts.image, kernel = opts.kernel, vcpus = opts.vcpus,
      memory = opts.memory, nat = opts.nat, allow_hosts = opts.allow_hosts, owner = opts.owner },
      { on_stage = stage })
  end
  if opts.workspace_tar then
    local ok, err = pcall(function()
      stage("workspace", row.name)
      unpack_workspace(row, opts.workspace_tar)
    end)
    if not ok then
      log.warn("sandbox", "workspace failed, removing the sandbox: " .. errors.message(err), { vm = row.name })
      pcall(vm.delete, row.name, true)
      error(err, 0)
    end
  end
  return M.record(vms.require(row.name))
end

function M.delete(name_or_id)
  local row = row_of(name_or_id)
  require("banger.vm").delete(row.name, true)
  return true
end

--- Deletes the sandboxes whose owner starts with `owner_prefix` (default
-- "session:") and is gone (M.owner_alive). Returns their names.
function M.reap(owner_prefix)
  owner_prefix = owner_prefix or "session:"
  local removed = {}
  for _, row in ipairs(vms.list()) do
    local owner = row.owner
    if owner and owner:sub(1, #owner_prefix) == owner_prefix and not M.owner_alive(owner) then
      local ok, err = pcall(require("banger.vm").delete, row.name, true)
      if ok then
        removed[#removed + 1] = row.name
        log.info("sandbox", "reaped", { vm = row.name, owner = owner })
      elseif not (errors.is(err) and err.code == "ENOENT") then
        log.warn("sandbox", "could not reap: " .. errors.message(err), { vm = row.name, owner = owner })
      end
    end
  end
  return removed
end

-- exec ------------------------------------------------------------------------

local function running_row(name)
  local row = row_of(name)
  if not vms.alive(row) then
    errors.raise("ESRCH", "sandbox '" .. row.name .. "' is not running")
  end
  return row
end

local function check_exec(req)
  if type(req) ~= "table" or type(req.argv) ~= "table" or #req.argv == 0 then
    errors.raise("EINVAL", "exec: argv must be a non-empty list of strings")
  end
  for _, a in ipairs(req.argv) do
    if type(a) ~= "string" then
      errors.raise("EINVAL", "exec: argv must be a non-empty list of strings")
    end
  end
  if req.timeout_ms ~= nil and (math.type(req.timeout_ms) ~= "integer" or req.timeout_ms < 1) then
    errors.raise("EINVAL", "exec: timeout_ms must be a positive integer")
  end
  if req.cwd ~= nil then
    M.check_path(req.cwd)
  end
  for _, e in ipairs(req.env or {}) do
    if type(e) ~= "string" or not e:match("^[%a_][%w_]*=") then
      errors.raise("EINVAL", "exec: env entries are 'NAME=value', got " .. tostring(e))
    end
  end
end

--- Runs argv in the sandbox: over SSH when it has an address and sshd,
-- else through its agent (serialised). Returns { code, signal?, timed_out,
-- interrupted, stdout?, stderr? } (output collected without callbacks).
function M.exec(name, req)
  check_exec(req)
  local row = running_row(name)
  local opts = { env = req.env, cwd = req.cwd, stdin = req.stdin, timeout_ms = req.timeout_ms,
    on_stdout = req.on_stdout, on_stderr = req.on_stderr, capture = not (req.on_stdout or req.on_stderr) }
  if not opts.capture then
    -- one callback given: the other stream is dropped, never written to ours
    opts.on_stdout = opts.on_stdout or function() end
    opts.on_stderr = opts.on_stderr or function() end
  end
  local r
  if row.ip and sshd(row) then
    local why
    r, why = require("banger.guest").ssh_exec(row, req.argv, opts)
    if not r then
      log.warn("sandbox", "SSH did not answer, using the agent: " .. errors.message(why), { vm = row.name })
    end
  end
  if not r then
    r = M.with_agent(row, function(c)
      local a = { env = req.env, cwd = req.cwd, stdin = req.stdin, timeout_ms = req.timeout_ms }
      if not opts.capture then
        a.on_stdout, a.on_stderr = opts.on_stdout, opts.on_stderr
      end
      table.move(req.argv, 1, #req.argv, 1, a)
      return c:exec(a)
    end)
  end
  return { code = r.code, signal = r.signal, timed_out = r.timed_out == true, interrupted = r.interrupted == true,
    stdout = r.stdout, stderr = r.stderr }
end

-- files -----------------------------------------------------------------------

--- A file of the sandbox, at most opts.max_bytes (default
-- M.default_max_file_bytes; EFBIG past it). With opts.on_data the chunks
-- stream to it and nil is returned.
function M.read_file(name, path, opts)
  opts = opts or {}
  path = M.check_path(path)
  local max = opts.max_bytes or M.default_max_file_bytes
  local row = running_row(name)
  return M.with_agent(row, function(c)
    local caps = {}
    for _, cap in ipairs(c:hello().capabilities or {}) do
      caps[cap] = true
    end
    if caps.list then
      -- a directory or an oversized file is refused before any byte moves
      local e, _, is_dir = c:list(path)
      if is_dir then
        errors.raise("EISDIR", path .. " is a directory")
      elseif e[1].type == "other" then
        -- a fifo would block the agent until a writer came; a device may not end
        errors.raise("EINVAL", path .. " is not a regular file")
      elseif e[1].type == "file" and e[1].size > max then
        errors.raise("EFBIG", string.format("%s is %d bytes, over the limit of %d", path, e[1].size, max))
      end
    end
    local parts, total = {}, 0
    -- the agent sends at most one byte more than allowed: a device such as
    -- /dev/zero ends too
    c:get(path, function(chunk)
      total = total + #chunk
      if total > max then
        errors.raise("EFBIG", string.format("%s is over the limit of %d bytes", path, max))
      end
      if opts.on_data then
        opts.on_data(chunk)
      else
        parts[#parts + 1] = chunk
      end
    end, max + 1)
    if opts.on_data then
      return nil
    end
    return table.concat(parts)
  end)
end

--- Writes a file in the sandbox (replaced atomically) from a string or a
-- reader function (next chunk, nil at the end). opts: mode (default
-- 0644), max_bytes (EFBIG past it). Returns { bytes }.
function M.write_file(name, path, data, opts)
  opts = opts or {}
  path = M.check_path(path)
  if path == "/" then
    errors.raise("EINVAL", "cannot write to /")
  end
  if type(data) ~= "string" and type(data) ~= "function" then
    errors.raise("EINVAL", "write_file: data must be a string or a reader function")
  end
  local mode = opts.mode or tonumber("644", 8)
  if math.type(mode) ~= "integer" or mode < 0 or mode > tonumber("7777", 8) then
    errors.raise("EINVAL", "write_file: mode must be an integer from 0 to 07777")
  end
  local max = opts.max_bytes
  if max and type(data) == "string" and #data > max then
    errors.raise("EFBIG", string.format("%d bytes, over the limit of %d", #data, max))
  end
  local source = data
  if type(data) == "function" and max then
    local total = 0
    source = function()
      local chunk = data()
      total = total + (chunk and #chunk or 0)
      if total > max then
        errors.raise("EFBIG", string.format("over the limit of %d bytes", max))
      end
      return chunk
    end
  end
  local row = running_row(name)
  local bytes = M.with_agent(row, function(c)
    return c:put(path, source, { mode = mode })
  end)
  return { bytes = bytes }
end

--- The entries of a directory of the sandbox, or the one entry of a file
-- (links are never followed): { name, type, size, mode, mtime }.
function M.list_files(name, path)
  path = M.check_path(path)
  local row = running_row(name)
  return M.with_agent(row, function(c)
    local entries, truncated = c:list(path)
    if truncated then
      log.warn("sandbox", "directory listing cut at the agent's limit", { vm = row.name, path = path })
    end
    return entries
  end)
end

--- Removes a file, link or directory (empty unless opts.recursive) of the
-- sandbox without following links. "/" is refused.
function M.remove_file(name, path, opts)
  path = M.check_path(path)
  if path == "/" then
    errors.raise("EINVAL", "refusing to remove /")
  end
  local row = running_row(name)
  M.with_agent(row, function(c)
    c:remove(path, opts and opts.recursive == true)
  end)
  return true
end

-- fork / snapshot -------------------------------------------------------------

--- A running copy of the sandbox (banger.vm.fork), owned by opts.owner
-- (default the source's owner).
function M.fork(name, opts)
  opts = opts or {}
  check_owner(opts.owner)
  local row = running_row(name)
  local rows = require("banger.vm").fork(row.name, { name = opts.name, owner = opts.owner or row.owner })
  return M.record(vms.require(rows[1].name))
end

--- A snapshot of the sandbox (banger.snapshots.take): its record.
function M.snapshot(name, opts)
  opts = opts or {}
  local row = running_row(name)
  local snapshots = require("banger.snapshots")
  local snap = snapshots.take(row.name, { name = opts.name })
  return snapshots.describe(snapshots.require(snap.name))
end

return M
