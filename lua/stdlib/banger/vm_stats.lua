--- banger.vm_stats: how a VM is doing, for `vm health` and `vm stats`.
-- Host-side numbers come from files the host kernel keeps (/proc/<pid> of
-- the hypervisor, the tap's counters in /sys, the disk files' sizes); the
-- guest's from its own /proc, read through the agent's `get` request,
-- which every agent has served since protocol 1.0, so no new request and
-- no capability check are needed. Whatever cannot be read is nil (null
-- in JSON), never a guess: an isolated QEMU runs as a uid of its own and a
-- host mounted with hidepid hides its /proc entry.
local agent = require("banger.native.agent")
local fs = require("banger.native.fs")
local sys = require("banger.native.sys")
local errors = require("banger.errors")
local guest = require("banger.guest")
local vms = require("banger.vms")

local M = {}

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local text = f:read("a")
  f:close()
  return text
end

--- /proc/meminfo's text as bytes: { MemTotal = n, MemAvailable = n, ... }.
---@param text string
---@return table<string, integer>
function M.parse_meminfo(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    local key, n, unit = line:match("^([%w_()]+):%s+(%d+)%s*(%a*)")
    if key then
      out[key] = math.tointeger(tonumber(n)) * (unit == "kB" and 1024 or 1)
    end
  end
  return out
end

--- /proc/loadavg's three averages, or nil.
---@param text string
---@return number?, number?, number?
function M.parse_loadavg(text)
  local a, b, c = text:match("^(%d+%.?%d*)%s+(%d+%.?%d*)%s+(%d+%.?%d*)")
  if not a then
    return nil
  end
  return tonumber(a), tonumber(b), tonumber(c)
end

--- /proc/uptime's first field (seconds since boot), or nil.
---@param text string
---@return number?
function M.parse_uptime(text)
  return tonumber(text:match("^(%d+%.?%d*)"))
end

--- A process's user + system CPU time in clock ticks from /proc/<pid>/stat,
-- or nil. The command name (field 2) may hold spaces and parentheses, so
-- the fields are counted after its last ')'.
---@param text string
---@return integer?
function M.parse_cpu_ticks(text)
  local rest = text:match("^.*%)%s+(.*)$")
  if not rest then
    return nil
  end
  local fields = {}
  for f in rest:gmatch("%S+") do
    fields[#fields + 1] = f
  end
  -- rest starts at field 3 (state); utime and stime are fields 14 and 15
  local utime, stime = math.tointeger(tonumber(fields[12])), math.tointeger(tonumber(fields[13]))
  if not utime or not stime then
    return nil
  end
  return utime + stime
end

--- The hypervisor's CPU time and resident memory, each nil when unreadable.
---@param pid integer
---@return { pid: integer, cpu_seconds: number?, rss_bytes: integer? }
function M.process(pid)
  local out = { pid = pid }
  local stat = read_file("/proc/" .. pid .. "/stat")
  local ticks = stat and M.parse_cpu_ticks(stat)
  if ticks then
    out.cpu_seconds = ticks / sys.clock_ticks()
  end
  local status = read_file("/proc/" .. pid .. "/status")
  local rss = status and status:match("\nVmRSS:%s+(%d+) kB")
  if rss then
    out.rss_bytes = math.tointeger(tonumber(rss)) * 1024
  end
  return out
end

--- A disk file's sizes: what the guest sees (size_bytes), the file's length
-- (apparent_bytes) and the blocks it really takes on the host (allocated_bytes).
local function disk(path, format, size_mib)
  local st = fs.stat(path)
  return {
    path = path,
    format = format,
    size_bytes = size_mib * 1024 * 1024,
    apparent_bytes = st and st.size or nil,
    allocated_bytes = st and st.blocks_bytes or nil,
  }
end

--- The VM's root and work disk files (the ones its next start uses).
function M.disks(row)
  local dir = vms.dir(row)
  local root = row.driver == "qemu" and disk(dir .. "/root.qcow2", "qcow2", row.disk_mib)
    or disk(dir .. "/root.img", "raw", row.disk_mib)
  local work = fs.exists(dir .. "/work.qcow2") and disk(dir .. "/work.qcow2", "qcow2", row.work_disk_mib)
    or disk(dir .. "/work.ext4", "raw", row.work_disk_mib)
  return root, work
end

local function counter(tap, name)
  local text = read_file("/sys/class/net/" .. tap .. "/statistics/" .. name)
  return text and math.tointeger(tonumber(text:match("%d+")))
end

--- The tap's byte counters, from the guest's side: what the host's tap
-- sends is what the guest receives.
function M.network(tap)
  return { tap = tap, rx_bytes = counter(tap, "tx_bytes"), tx_bytes = counter(tap, "rx_bytes") }
end

--- The guest's memory, load and uptime, read through a connected agent client.
function M.guest(c)
  local mem = M.parse_meminfo(c:get("/proc/meminfo"))
  local l1, l5, l15 = M.parse_loadavg(c:get("/proc/loadavg"))
  return {
    mem_total_bytes = mem.MemTotal,
    mem_available_bytes = mem.MemAvailable,
    mem_free_bytes = mem.MemFree,
    load_1 = l1,
    load_5 = l5,
    load_15 = l15,
    uptime_seconds = M.parse_uptime(c:get("/proc/uptime")),
  }
end

--- Seconds as "3d 4h", "2h 5m", "4m 10s" or "12s"; "-" for nil.
---@param seconds number?
function M.format_duration(seconds)
  if not seconds then
    return "-"
  end
  local s = math.floor(seconds)
  local d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
  if d > 0 then
    return string.format("%dd %dh", d, h)
  elseif h > 0 then
    return string.format("%dh %dm", h, m)
  elseif m > 0 then
    return string.format("%dm %ds", m, s % 60)
  end
  return string.format("%ds", s)
end

local function connect(h, timeout_ms)
  return agent.connect(guest.endpoint(h, timeout_ms, false))
end

--- Does the VM's agent answer within `timeout_ms`? Never raises for a VM
-- that is down or silent: `ok` says so and `error` says why.
---@param row table a VM row
---@param timeout_ms integer
function M.health(row, timeout_ms)
  local out = { name = row.name, state = row.state, ok = false, banger_version = sys.build().version }
  local h = vms.load_handles(row)
  if not h or not vms.alive(row, h) then
    out.error = "not running"
    return out
  end
  local c, msg, code = connect(h, timeout_ms)
  if not c then
    errors.check_interrupted()
    out.error = msg .. (code and " (" .. code .. ")" or "")
    return out
  end
  local ok, err = pcall(function()
    local hello = c:hello()
    out.agent_version = hello.agent_version
    out.protocol = string.format("%d.%d", hello.proto or 0, hello.minor or 0)
    out.kernel = hello.kernel
    local _, rtt = c:ping(timeout_ms)
    out.rtt_ms = rtt
    out.uptime_seconds = M.parse_uptime(c:get("/proc/uptime"))
  end)
  c:close()
  if not ok then
    errors.check_interrupted()
    out.error = errors.message(err)
    return out
  end
  out.ok = true
  return out
end

--- One sample of everything `vm stats` shows. A stopped VM has its disks
-- only; a running one whose agent does not answer has no guest numbers.
---@param row table a VM row
---@param timeout_ms integer? for the agent (default 5000)
function M.sample(row, timeout_ms)
  local root, work = M.disks(row)
  local out = { name = row.name, state = row.state, root_disk = root, work_disk = work }
  local h = vms.load_handles(row)
  if not h or not vms.alive(row, h) then
    return out
  end
  out.hypervisor = M.process(h.pid)
  -- the tap is recorded with the VM's host objects (handles.json has none)
  local tap = h.tap or require("banger.host_objects").get(row).tap
  if tap then
    out.network = M.network(tap)
  end
  local c = connect(h, timeout_ms or 5000)
  if c then
    local ok, g = pcall(M.guest, c)
    c:close()
    if ok then
      out.guest = g
    else
      errors.check_interrupted()
      require("banger.log").warn("vm_stats", "guest numbers unavailable: " .. errors.message(g), { vm = row.name })
    end
  end
  errors.check_interrupted()
  return out
end

return M
