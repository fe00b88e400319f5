--- banger.guest: talking to a running VM through its agent.
local errors = require("banger.errors")
local vms = require("banger.vms")
local agent = require("banger.native.agent")
local log = require("banger.log")

local M = {}

--- The agent endpoint recorded in a VM's handles.
function M.endpoint(h, timeout_ms, wait)
  local a = h.agent or {}
  local kind = a.kind == "serial_socket" and "unix" or a.kind
  return { kind = kind, path = a.path, cid = a.cid, port = a.port, timeout_ms = timeout_ms, wait = wait }
end

--- A connected agent client for a running VM (raising on failure).
function M.connect(row, opts)
  opts = opts or {}
  local h = vms.load_handles(row)
  if not h or not vms.alive(row, h) then
    errors.raise("ESRCH", "VM '" .. row.name .. "' is not running (start it with 'banger vm start " .. row.name .. "')")
  end
  return errors.wrap_handle(errors.check(agent.connect(M.endpoint(h, opts.timeout_ms or 10000, opts.wait))))
end

--- Whether the running VM's agent offers every request in `needed`
-- (hello's capabilities: an image made by an older banger has an older agent).
function M.can(row, needed)
  local c <close> = M.connect(row)
  local have = {}
  for _, cap in ipairs(c:hello().capabilities or {}) do
    have[cap] = true
  end
  for _, cap in ipairs(needed) do
    if not have[cap] then
      return false
    end
  end
  return true
end

--- Waits for the agent of a just-launched VM to answer.
-- The last `n` lines of a VM's console log, indented: what a boot that
-- never reached the agent said last.
local function console_tail(row, n)
  local text = require("banger.native.fs").read(vms.dir(row) .. "/console.log") or ""
  local lines = {}
  for line in text:gmatch("[^\r\n]+") do
    lines[#lines + 1] = "  " .. line
    if #lines > n then
      table.remove(lines, 1)
    end
  end
  return table.concat(lines, "\n")
end

function M.wait_ready(row, h, timeout_ms)
  local c, msg, code = agent.connect(M.endpoint(h, timeout_ms, true))
  if not c and code == "ETIMEDOUT" then
    local tail = console_tail(row, 10)
    errors.raise(code, msg .. (tail ~= "" and ("; the console log ends with:\n" .. tail .. "\n") or ""),
      { hint = "the whole log: banger vm logs " .. row.name })
  end
  c = errors.check(c, msg, code)
  local info = c:hello()
  c:close()
  return info
end

--- Makes a just-restored VM a machine of its own (docs/snapshots.md): its
-- clock stepped to ours, host entropy added and the kernel RNG reseeded, a
-- new machine-id, hostname, MAC and address, new SSH host keys. Raises when
-- the agent cannot do it: the caller removes the VM rather than let a copy
-- of another machine run.
function M.reidentify(row, h, generation, timeout_ms)
  local sys = require("banger.native.sys")
  local vms_ = require("banger.vms")
  local c <close> = errors.wrap_handle(errors.check(agent.connect(M.endpoint(h, timeout_ms, true))))
  c:hello()
  local req = {
    generation = generation,
    hostname = row.name,
    machine_id = vms_.random_hex(16),
    time_ns = math.floor(sys.time() * 1e9),
    entropy = M.entropy(64),
    ssh_host_keys = true,
  }
  if row.ip then
    local net = require("banger.config").get().network
    req.net = { dev = "eth0", mac = row.mac, address = row.ip, prefix = net.cidr, gateway = net.bridge_ip }
    if row.nat == 1 or row.nat == true then
      req.dns = require("banger.net").nameservers()
    end
  end
  local r = c:reidentify(req)
  log.info("guest", "re-identified", { vm = row.name, generation = generation, ssh_host_keys = r.ssh_host_keys,
    took_ms = r.took_ms })
  return r
end

--- `n` bytes from the host's kernel RNG.
function M.entropy(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local raw = f:read(n)
  f:close()
  return raw
end

--- Asks the guest to power itself off; false when the agent cannot be reached.
function M.poweroff(h)
  local c = agent.connect(M.endpoint(h, 3000, false))
  if not c then
    return false
  end
  local ok = c:poweroff()
  c:close()
  return ok == true
end

--- Runs argv in the guest, streaming output to our stdout/stderr.
-- Returns the exec result ({code, signal, interrupted}).
function M.exec(row, argv, opts)
  opts = opts or {}
  local c <close> = M.connect(row)
  local req = { env = opts.env, cwd = opts.cwd, stdin = opts.stdin, timeout_ms = opts.timeout_ms }
  for i, a in ipairs(argv) do
    req[i] = a
  end
  if opts.capture then
    return c:exec(req)
  end
  req.on_stdout = opts.on_stdout or function(chunk)
    io.stdout:write(chunk)
    io.stdout:flush()
  end
  req.on_stderr = opts.on_stderr or function(chunk)
    io.stderr:write(chunk)
    io.stderr:flush()
  end
  return c:exec(req)
end

-- Signal names as SSH reports them ("KILL"), as numbers like the agent's.
local signal_numbers = { HUP = 1, INT = 2, QUIT = 3, ILL = 4, TRAP = 5, ABRT = 6, BUS = 7, FPE = 8, KILL = 9,
  USR1 = 10, SEGV = 11, USR2 = 12, PIPE = 13, ALRM = 14, TERM = 15 }

--- Runs argv in the VM over SSH (banger's pinned host key). opts: cwd,
-- env, stdin, timeout_ms, on_stdout, on_stderr (default: our stdout and
-- stderr; `capture = true` collects them into .stdout/.stderr instead).
-- Returns {code, signal, interrupted, timed_out}, or nil and the reason
-- when SSH did not answer within opts.connect_ms (default 30 s).
function M.ssh_exec(row, argv, opts)
  opts = opts or {}
  local ssh = require("banger.ssh")
  local c, why = ssh.wait_connect(row, opts.connect_ms or 30000)
  if not c then
    return nil, why
  end
  local req = { stdin = opts.stdin, timeout_ms = opts.timeout_ms }
  if not opts.capture then
    req.on_stdout = opts.on_stdout or function(chunk) io.stdout:write(chunk) io.stdout:flush() end
    req.on_stderr = opts.on_stderr or function(chunk) io.stderr:write(chunk) io.stderr:flush() end
  end
  local ok, r = pcall(c.exec, c, ssh.command_line(argv, opts), req)
  c:close()
  if not ok then
    if errors.is(r) and r.code == "ECANCELED" then
      return { code = errors.interrupt_status(), interrupted = true, timed_out = false }
    end
    error(r, 0)
  end
  local signal = r.signal and (signal_numbers[r.signal] or 0) or nil
  -- a command killed by a signal has no exit status over SSH: the shell's 128 + N
  return { code = signal and 128 + signal or r.code, signal = signal, interrupted = r.interrupted == true,
    timed_out = r.timed_out == true, stdout = r.stdout, stderr = r.stderr }
end

--- Runs a user's command in the VM the best way available: over SSH (with
-- banger's pinned host key) when the VM has an address and an SSH server,
-- else through the agent. Output streams to our stdout/stderr; returns
-- {code, interrupted}.
function M.run(row, argv, opts)
  opts = opts or {}
  local ssh = require("banger.ssh")
  if row.ip and ssh.guest_has_sshd(row) then
    local r, why = M.ssh_exec(row, argv, opts)
    if r then
      return r
    end
    log.warn("guest", "SSH did not answer, using the agent: " .. errors.message(why), { vm = row.name })
  end
  return M.exec(row, argv, opts)
end

return M
