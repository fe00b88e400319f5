-- A host for crash and census specs: a network namespace of the test's own
-- with a Docker-style FORWARD chain (so NAT also writes the DOCKER-USER
-- accept rules), a home with the tiny image, and banger run there as root
-- or as a non-root owner through the real root helper (setpriv, as in
-- e2e_helper_spec.lua). `check_clean` is what "nothing left" means.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

local hostenv = { e2e = e2e, netns = netns, OWNER = 65534 }

local H = {}
H.__index = H

--- owner: "root" or "user"; extra: more config.lua fields (a string).
function hostenv.new(owner, extra)
  local h = setmetatable({ owner = owner }, H)
  h.ns = netns.new("crash")
  for _, argv in ipairs({ { "iptables", "-w", "-P", "FORWARD", "DROP" }, { "iptables", "-w", "-N", "DOCKER-USER" },
    { "iptables", "-w", "-A", "DOCKER-USER", "-j", "RETURN" }, { "iptables", "-w", "-A", "FORWARD", "-j", "DOCKER-USER" } }) do
    netns.sh({ "ip", "netns", "exec", h.ns, table.unpack(argv) })
  end
  h.home = e2e.home()
  if owner == "user" then
    local parent = t.tmpdir()
    banger.proc.run({ "chmod", "0755", parent })
    h.socket = parent .. "/run/helper.sock"
    h.helper = t.spawn({ "ip", "netns", "exec", h.ns, os.getenv("BANGER_BUILD_DIR") .. "/banger-helper",
      "--socket", h.socket, "--owner", hostenv.OWNER .. ":" .. hostenv.OWNER, stderr = "pipe" })
    e2e.wait_for(function() return banger.fs.exists(h.socket) end, 10000, "the helper's socket")
    banger.proc.run({ "chmod", "0755", h.home })
  end
  h:configure(extra)
  return h
end

--- Rewrites config.lua: networking on, plus `extra`.
function H:configure(extra)
  local helper_cfg = self.socket and string.format(", helper = { socket = %q }", self.socket) or ""
  t.write(self.home .. "/.config/banger/config.lua",
    string.format('return { network = { mode = "on" }%s%s }\n', helper_cfg, extra and (", " .. extra) or ""))
  t.env(self.home)
  if self.owner == "user" then
    banger.proc.run({ "chown", "-R", hostenv.OWNER .. ":" .. hostenv.OWNER, self.home })
  end
end

--- argv to run banger with `args` in the namespace, as the owner.
function H:argv(args, opts)
  local argv = { "ip", "netns", "exec", self.ns }
  if self.owner == "user" then
    for _, a in ipairs({ "setpriv", "--reuid=" .. hostenv.OWNER, "--regid=" .. hostenv.OWNER, "--clear-groups" }) do
      argv[#argv + 1] = a
    end
  end
  argv[#argv + 1] = t.bin()
  for _, a in ipairs(args) do
    argv[#argv + 1] = a
  end
  argv.env = t.env(self.home, self.env)
  argv.cwd = self.home
  for k, v in pairs(opts or {}) do
    argv[k] = v
  end
  return argv
end

function H:banger(args, timeout_ms)
  return banger.proc.run(self:argv(args, { timeout_ms = timeout_ms or 120000 }))
end

--- Runs `argv` (a command, not banger) in the namespace.
function H:run(argv)
  return netns.run(self.ns, argv)
end

function H:state()
  return self.home .. "/.local/state/banger"
end

function H:runtime()
  return self.home .. "/run/banger"
end

--- The VM rows, by name (reconciles, like any command).
function H:vms()
  return e2e.by_name(self:banger({ "vm", "list", "--json" }))
end

--- The rows as the store holds them, read without running a command (a
-- command would reconcile first). The store's scratch files stay the owner's.
function H:rows()
  local db <close> = banger.store.open(self:state() .. "/banger.db")
  local rows = db:query("SELECT id, name, state, host_objects, last_error FROM vms")
  db:close()
  if self.owner == "user" then
    banger.proc.run({ "chown", "-R", hostenv.OWNER .. ":" .. hostenv.OWNER, self:state() })
  end
  return rows
end

--- Changes the store behind banger's back (an older banger's crash, say).
function H:sql(stmt, ...)
  local db <close> = banger.store.open(self:state() .. "/banger.db")
  db:exec(stmt, ...)
  db:close()
  if self.owner == "user" then
    banger.proc.run({ "chown", "-R", hostenv.OWNER .. ":" .. hostenv.OWNER, self:state() })
  end
end

function H:links()
  return self:run({ "ip", "-o", "link", "show" }).stdout
end

--- Nothing of banger's on the host that no row accounts for, and nothing of
-- a VM that is not running: no tap, no NAT or Docker accept rule, no
-- hypervisor whose -name starts with `prefix`, no runtime directory (so no
-- socket), no VM directory without a row. `where` names the kill point.
function H:check_clean(prefix, where)
  local function say(what)
    return where .. ": " .. what
  end
  local rows = self:rows()
  -- What reconcile logged, for a row it left half-made: it skips a VM whose
  -- lock is held and logs a teardown that failed.
  local function reconcile_log()
    local text = banger.fs.exists(self:state() .. "/banger.log") and t.read(self:state() .. "/banger.log") or ""
    local lines = {}
    for line in text:gmatch("[^\n]+") do
      if line:find('"reconcile"', 1, true) then
        lines[#lines + 1] = line
      end
    end
    return table.concat(lines, "\n", math.max(1, #lines - 5))
  end
  for _, r in ipairs(rows) do
    if r.state == "creating" or r.state == "starting" then
      error(say(r.name .. " is still " .. r.state .. "; reconcile logged:\n" .. reconcile_log()), 0)
    end
    t.eq(r.host_objects, "{}", say(r.name .. " (" .. r.state .. ") still records host objects"))
  end
  t.not_contains(self:links(), "bgtap", say("a tap is left"))
  t.truthy(self:run({ "nft", "list", "table", "ip", "banger" }).code ~= 0, say("banger's nftables table is left"))
  local docker = self:run({ "iptables", "-w", "-S", "DOCKER-USER" })
  t.eq(docker.code, 0, docker.stderr)
  t.not_contains(docker.stdout, "banger:", say("a Docker accept rule is left"))
  t.eq(e2e.processes("banger-" .. prefix), "", say("a hypervisor is left"))
  t.eq(e2e.processes(self:runtime() .. "/vms/"), "", say("a process using a VM's sockets is left"))
  t.eq(e2e.list(self:runtime() .. "/vms"), {}, say("a runtime directory (sockets) is left"))
  local ids = {}
  for _, r in ipairs(rows) do
    ids[r.id] = true
  end
  for _, id in ipairs(e2e.list(self:state() .. "/vms")) do
    t.truthy(ids[id], say("VM directory " .. id .. " (overlay, disks) has no row"))
  end
end

--- After a failed test: kills what it may have left, hypervisors named
-- banger-<prefix>..., so one failure does not leak into the next test.
function hostenv.kill_leftovers(prefix)
  for pid in e2e.processes("banger-" .. prefix):gmatch("%d+") do
    banger.proc.run({ "kill", "-9", pid })
  end
end

function H:close()
  if self.helper then
    self.helper:kill(15)
    self.helper:wait(10000)
    self.helper = nil
  end
end

--- Waits until banger process `pid` has logged stage `stage` (ui.stages()
-- writes each stage to banger.log as a JSON line with its pid), reading
-- the log from byte `from` on. Returns false if `child` exited first.
function H:wait_stage(child, pid, stage, from)
  local path = self:state() .. "/banger.log"
  local offset, partial = from, ""
  local deadline = banger.sys.monotonic_ms() + 120000
  while banger.sys.monotonic_ms() < deadline do
    local f = io.open(path, "rb")
    if f then
      f:seek("set", offset)
      local chunk = f:read("a") or ""
      f:close()
      offset = offset + #chunk
      local text = partial .. chunk
      local last_nl = text:match(".*()\n")
      partial = last_nl and text:sub(last_nl + 1) or text
      for line in (last_nl and text:sub(1, last_nl) or ""):gmatch("[^\n]+") do
        if line:find('"component":"stage"', 1, true) then
          local ok, rec = pcall(banger.json.decode, line)
          if ok and rec.pid == pid and rec.msg == stage then
            return true
          end
        end
      end
    end
    local ok, exited = pcall(child.wait, child, 0)
    if ok and exited then
      return false
    end
    banger.sys.sleep_ms(2)
  end
  error("timed out waiting for stage " .. stage)
end

--- The log's current size: stages before it belong to earlier commands.
function H:log_size()
  local st = banger.fs.exists(self:state() .. "/banger.log") and banger.fs.stat(self:state() .. "/banger.log")
  return st and st.size or 0
end

return hostenv
