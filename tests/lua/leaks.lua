-- What a test left on the host, as luv's test harness fails on leaked
-- handles. Specs run in parallel under ctest -j, so only what is provably
-- this test's own is counted: a process that is a child of the runner or
-- whose command line, working directory, environment or open files name one
-- of the test's temporary directories; a tap in this namespace bearing the
-- mark of one of the test's banger homes (ifalias banger:<home tag>, see
-- lua/stdlib/banger/net.lua); a NAT rule for such a tap or for a VM id of
-- those homes; a socket in those homes' runtime directories; a network namespace
-- named by tests/lua/netns.lua with the runner's pid.
-- A process still using a directory after it was removed shows it as
-- "<dir>/... (deleted)", so the (slower) search by directory can run once
-- per spec file over every directory its tests had.
local fs, proc, sys = banger.fs, banger.proc, banger.sys

local M = {}
local self_pid = sys.getpid()

local function try(fn, ...)
  local ok, v = pcall(fn, ...)
  return ok and v or nil
end

local function under(path, dirs)
  path = path:gsub(" %(deleted%)$", "")
  for _, d in ipairs(dirs) do
    if path == d or path:sub(1, #d + 1) == d .. "/" then
      return d
    end
  end
end

local function mentions(text, dirs)
  for _, d in ipairs(dirs) do
    if text:find(d, 1, true) then
      return d
    end
  end
end

-- Why process `pid` is the test's own, or nil. Only children of the runner
-- unless `deep`: then also by command line, directory, environment, files.
local function owned(pid, dirs, deep)
  local stat = try(fs.read, "/proc/" .. pid .. "/stat")
  if not stat then
    return nil
  end
  -- A zombie holds nothing but its pid (and the runner cannot reap a
  -- child whose handle is gone): only live processes count.
  local state, ppid = stat:match("%) (%S) (%d+)")
  if state == "Z" then
    return nil
  end
  if tonumber(ppid) == self_pid then
    return "a child of the test process"
  end
  if not deep or #dirs == 0 then
    return nil
  end
  local base = "/proc/" .. pid
  local d = mentions((try(fs.read, base .. "/cmdline") or ""):gsub("%z", " "), dirs)
  if d then
    return "its command line names " .. d
  end
  d = under(try(fs.readlink, base .. "/cwd") or "", dirs)
  if d then
    return "it works in " .. d
  end
  for var in (try(fs.read, base .. "/environ") or ""):gmatch("[^%z]+") do
    d = mentions(var:match("=(.*)") or "", dirs)
    if d then
      return "its environment names " .. d
    end
  end
  for _, fd in ipairs(try(fs.list, base .. "/fd") or {}) do
    d = under(try(fs.readlink, base .. "/fd/" .. fd) or "", dirs)
    if d then
      return "it holds a file in " .. d
    end
  end
end

--- Processes (other than the runner) that are the test's own: {pid=, why=}.
function M.processes(dirs, deep)
  local out = {}
  for _, e in ipairs(try(fs.list, "/proc") or {}) do
    local pid = tonumber(e)
    if pid and pid ~= self_pid then
      local why = owned(pid, dirs, deep)
      if why then
        local cmd = (try(fs.read, "/proc/" .. pid .. "/cmdline") or ""):gsub("%z", " ")
        out[#out + 1] = { pid = pid, why = why, cmd = cmd:sub(1, 120) }
      end
    end
  end
  return out
end

--- The mark a banger home puts on its taps (net.home_tag() for that home).
function M.home_tag(home)
  return sys.sha256(home .. "/.local/state/banger"):sub(1, 16)
end

--- bgtap* devices in this namespace marked by one of `homes`: {name=, home=}.
function M.taps(homes)
  local tags = {}
  for _, h in ipairs(homes) do
    tags["banger:" .. M.home_tag(h)] = h
  end
  local out = {}
  for _, name in ipairs(try(fs.list, "/sys/class/net") or {}) do
    if name:sub(1, 5) == "bgtap" then
      local alias = (try(fs.read, "/sys/class/net/" .. name .. "/ifalias") or ""):gsub("%s+$", "")
      if tags[alias] then
        out[#out + 1] = { name = name, home = tags[alias] }
      end
    end
  end
  return out
end

--- The VM ids a home knows now (state and runtime directories).
function M.vm_ids(home)
  local ids = {}
  for _, dir in ipairs({ home .. "/.local/state/banger/vms", home .. "/run/banger/vms" }) do
    for _, id in ipairs(try(fs.list, dir) or {}) do
      ids[#ids + 1] = id
    end
  end
  return ids
end

--- NAT rules in this namespace for one of `taps` (a set of tap names):
-- {text=, delete=argv} (banger's nftables table, FORWARD and DOCKER-USER).
function M.nat_rules(taps)
  local out = {}
  if next(taps) == nil then
    return out
  end
  local nft = proc.run({ "nft", "-a", "list", "table", "ip", "banger" })
  if nft.code == 0 then
    local chain
    for line in nft.stdout:gmatch("[^\n]+") do
      chain = line:match("^%s*chain (%S+)") or chain
      local tap, handle = line:match('comment "(bgtap[%w]+)".-# handle (%d+)')
      if tap and taps[tap] then
        local rule = line:gsub("^%s+", ""):gsub("%s*# handle %d+$", "")
        out[#out + 1] = { text = "nftables ip banger " .. chain .. ": " .. rule,
          delete = { "nft", "delete", "rule", "ip", "banger", chain, "handle", handle } }
      end
    end
  end
  for _, chain in ipairs({ "FORWARD", "DOCKER-USER" }) do
    local r = proc.run({ "iptables", "-w", "-S", chain })
    for line in (r.code == 0 and r.stdout or ""):gmatch("[^\n]+") do
      local tap = line:match('banger:(bgtap[%w]+)')
      if tap and taps[tap] and line:sub(1, 3) == "-A " then
        local argv = { "iptables", "-w", "-D" }
        for word in line:sub(4):gsub('"', ""):gmatch("%S+") do
          argv[#argv + 1] = word
        end
        out[#out + 1] = { text = "iptables " .. line, delete = argv }
      end
    end
  end
  return out
end

local function walk_sockets(dir, out)
  for _, name in ipairs(try(fs.list, dir) or {}) do
    local path = dir .. "/" .. name
    local st = try(fs.lstat, path)
    if st and st.type == "socket" then
      out[#out + 1] = path
    elseif st and st.type == "directory" then
      walk_sockets(path, out)
    end
  end
end

--- Unix sockets left in the runtime directories of `homes` (VM sockets,
-- which banger must remove with the VM; a test's own socket files elsewhere
-- go with its temporary directory).
function M.sockets(homes)
  local out = {}
  for _, h in ipairs(homes) do
    walk_sockets(h .. "/run/banger", out)
  end
  return out
end

--- Network namespaces tests/lua/netns.lua made in this runner (bgt-<tag>-<pid>-<n>).
function M.namespaces()
  local out = {}
  for _, name in ipairs(try(fs.list, "/run/netns") or {}) do
    if name:match("^bgt%-[%w]+%-" .. self_pid .. "%-%d+$") then
      out[#out + 1] = name
    end
  end
  return out
end

--- Everything of the test's own still there: a list of objects, each
-- {what=, reap=fn}. dirs: the test's temporary directories; homes: the
-- banger homes it used; ids: VM ids those homes had at some point; deep:
-- also search processes by directory (see owned()).
function M.census(dirs, homes, ids, deep)
  local found = {}
  for _, p in ipairs(M.processes(dirs, deep)) do
    found[#found + 1] = { what = string.format("process %d (%s): %s", p.pid, p.cmd, p.why),
      reap = function() proc.run({ "kill", "-9", tostring(p.pid) }) end }
  end
  local taps = {}
  for _, id in ipairs(ids) do
    taps["bgtap" .. id:sub(1, 10)] = true
  end
  for _, tap in ipairs(M.taps(homes)) do
    taps[tap.name] = true
    found[#found + 1] = { what = "tap " .. tap.name .. " of home " .. tap.home,
      reap = function() proc.run({ "ip", "link", "delete", tap.name }) end }
  end
  for _, rule in ipairs(M.nat_rules(taps)) do
    found[#found + 1] = { what = "NAT rule " .. rule.text, reap = function() proc.run(rule.delete) end }
  end
  for _, ns in ipairs(M.namespaces()) do
    found[#found + 1] = { what = "network namespace " .. ns,
      reap = function() proc.run({ "ip", "netns", "delete", ns }) end }
  end
  for _, path in ipairs(M.sockets(homes)) do
    found[#found + 1] = { what = "socket " .. path, reap = function() pcall(fs.remove, path) end }
  end
  return found
end

return M
