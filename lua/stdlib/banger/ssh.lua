--- banger.ssh: SSH into VMs with banger's key and banger's own pinned host
-- keys (trust on first use, state dir ssh/known_hosts; the user's
-- ~/.ssh/known_hosts is never touched). The engine client (libssh2) checks
-- and pins before authenticating; `vm ssh` runs the system ssh with the
-- same key and known_hosts.
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local native = require("banger.native.ssh")
local state = require("banger.state")

local M = {}

function M.known_hosts()
  return state.layout().state .. "/ssh/known_hosts"
end

--- The names a VM's host key is pinned under.
function M.names(row)
  return { row.ip, row.name .. ".vm" }
end

local function require_reachable(row)
  if row.state ~= "running" then
    errors.raise("EINVAL", "VM '" .. row.name .. "' is not running (banger vm start " .. row.name .. ")")
  end
  if not row.ip then
    errors.raise("EINVAL", "VM '" .. row.name .. "' has no network address (created without networking; "
      .. "see docs/networking.md); use banger vm exec instead")
  end
end

--- A libssh2 connection to the VM, host key checked (and pinned the first time).
function M.connect(row, opts)
  opts = opts or {}
  require_reachable(row)
  local key = require("banger.provision").ssh_key()
  fs.mkdir_private(M.known_hosts():match("^(.*)/"))
  return errors.wrap_handle(errors.check(native.connect({
    host = row.ip, port = opts.port or 22, user = "root", key = key.private, known_hosts = M.known_hosts(),
    names = { row.name .. ".vm" }, subject = "VM " .. row.name, timeout_ms = opts.timeout_ms,
  })))
end

--- Removes a VM's pins (vm delete, or a deliberate re-key).
function M.forget(row)
  local names = { row.name .. ".vm" }
  if row.ip then
    names[#names + 1] = row.ip
  end
  return errors.check(native.forget(M.known_hosts(), names))
end

--- POSIX shell quoting for a remote command line.
function M.quote(arg)
  if arg:match("^[%w%./_:=@%%+,-]+$") then
    return arg
  end
  return "'" .. arg:gsub("'", "'\\''") .. "'"
end

--- The remote command line for argv with a working directory and environment.
function M.command_line(argv, opts)
  opts = opts or {}
  local parts = {}
  if opts.cwd then
    parts[#parts + 1] = "cd " .. M.quote(opts.cwd) .. " &&"
  end
  if opts.env and #opts.env > 0 then
    parts[#parts + 1] = "env"
    for _, e in ipairs(opts.env) do
      parts[#parts + 1] = M.quote(e)
    end
  end
  for _, a in ipairs(argv) do
    parts[#parts + 1] = M.quote(a)
  end
  return table.concat(parts, " ")
end

--- The system ssh command line for `vm ssh`: banger's key, banger's
-- known_hosts, accept-new (the first connection pins, a changed key fails).
function M.ssh_argv(row, command, opts)
  opts = opts or {}
  require_reachable(row)
  local key = require("banger.provision").ssh_key()
  local argv = { "ssh", "-i", key.private, "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" .. M.known_hosts(),
    "-o", "StrictHostKeyChecking=accept-new", "-o", "GlobalKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
    -- a pin ssh adds itself stays readable, so vm delete can forget it
    -- (Debian's ssh_config hashes them, and the VM's next tenant of the
    -- address would then meet a "changed" host key)
    "-o", "HashKnownHosts=no" }
  if opts.tty then
    argv[#argv + 1] = "-t"
  end
  argv[#argv + 1] = "root@" .. row.ip
  if command and #command > 0 then
    argv[#argv + 1] = "--"
    argv[#argv + 1] = M.command_line(command, opts)
  end
  return argv
end

--- Does the guest run an SSH server banger can use? Asked through the agent.
function M.guest_has_sshd(row)
  local guest = require("banger.guest")
  local ok, r = pcall(guest.exec, row, { "sh", "-c", "test -x /usr/sbin/sshd || test -x /usr/sbin/dropbear" },
    { capture = true })
  return ok and r.code == 0
end

--- Waits until the VM's SSH server accepts a connection (the agent is up
-- before sshd on most images); returns the connection or nil, last error.
function M.wait_connect(row, timeout_ms)
  local sys = require("banger.native.sys")
  local deadline = sys.monotonic_ms() + (timeout_ms or 30000)
  local last
  repeat
    local ok, c = pcall(M.connect, row, { timeout_ms = 3000 })
    if ok then
      return c
    end
    errors.check_interrupted() -- else the raw sleep below would return at once, every time
    last = c
    if errors.is(c) and c.code == "EHOSTKEY" then
      error(c, 0)  -- never retry past a changed host key
    end
    sys.sleep_ms(250)
  until sys.monotonic_ms() > deadline
  return nil, last
end

return M
