-- banger.vm_stats' readers against this host's own /proc and /sys, and
-- its parsers against the kernel's formats (including a command name that
-- holds spaces and parentheses, which /proc/<pid>/stat does not escape).
local vm_stats = require("banger.vm_stats")

describe("banger.vm_stats", function()
  it("parses /proc/meminfo into bytes", function()
    local m = vm_stats.parse_meminfo("MemTotal:        1000 kB\nMemFree:          200 kB\nHugePages_Total:       0\n"
      .. "MemAvailable:     500 kB\n")
    t.eq(m, { MemTotal = 1024000, MemFree = 204800, MemAvailable = 512000, HugePages_Total = 0 })
    local host = vm_stats.parse_meminfo(t.read("/proc/meminfo"))
    t.truthy(host.MemTotal > 0 and host.MemAvailable <= host.MemTotal)
  end)

  it("parses /proc/loadavg and /proc/uptime", function()
    t.eq({ vm_stats.parse_loadavg("0.52 0.58 0.59 1/289 12345\n") }, { 0.52, 0.58, 0.59 })
    t.eq(vm_stats.parse_loadavg("garbage"), nil)
    t.eq(vm_stats.parse_uptime("350735.47 234388.90\n"), 350735.47)
    t.truthy(vm_stats.parse_uptime(t.read("/proc/uptime")) > 0)
  end)

  it("counts a process's CPU ticks after the last ')' of its name", function()
    local line = "42 (qemu) x (y)) S 1 42 42 0 -1 4194560 100 0 0 0 700 300 0 0 20 0 3 0 10 1000 50\n"
    t.eq(vm_stats.parse_cpu_ticks(line), 1000)
    t.eq(vm_stats.parse_cpu_ticks("nonsense"), nil)
  end)

  it("reads a live process's CPU time and RSS, and nothing for one that is gone", function()
    local p = vm_stats.process(banger.sys.getpid())
    t.truthy(p.rss_bytes > 0, "RSS of this process")
    t.truthy(p.cpu_seconds >= 0)
    local child = t.spawn({ "true" })
    child:wait()
    local gone = vm_stats.process(child:pid())
    t.eq({ gone.cpu_seconds, gone.rss_bytes }, { nil, nil })
  end)

  it("reads a tap's counters from the guest's side", function()
    local lo = vm_stats.network("lo")
    t.truthy(math.type(lo.rx_bytes) == "integer" and math.type(lo.tx_bytes) == "integer")
    t.eq(vm_stats.network("no-such-if0"), { tap = "no-such-if0" })
  end)

  it("formats durations", function()
    t.eq({ vm_stats.format_duration(nil), vm_stats.format_duration(12.7), vm_stats.format_duration(250),
      vm_stats.format_duration(7500), vm_stats.format_duration(90000) }, { "-", "12s", "4m 10s", "2h 5m", "1d 1h" })
  end)
end)

describe("the agent's ping and the guest's numbers through it", function()
  local agent = require("banger.native.agent")

  local function start_agent()
    local sock = t.tmpdir() .. "/agent.sock"
    local bin = assert(os.getenv("BANGER_BUILD_DIR"), "BANGER_BUILD_DIR") .. "/cli/banger-agent/banger-agent"
    local child = t.spawn({ bin, "--unix", sock })
    return assert(agent.connect({ kind = "unix", path = sock, wait = true, timeout_ms = 10000 })), child
  end

  it("times the round trip, and gives up on a silent agent after timeout_ms", function()
    local c, child = start_agent()
    local ok, rtt = c:ping(5000)
    t.eq(ok, true)
    t.truthy(math.type(rtt) == "float" and rtt > 0 and rtt < 5000, "round trip " .. tostring(rtt))
    t.raises(function() c:ping(0) end, "bad argument #2")
    -- a stopped agent (its session: the agent forks one per connection):
    -- the ping waits 300 ms, not the default 10 s
    t.eq(banger.proc.run({ "pkill", "-STOP", "-P", tostring(child:pid()) }).code, 0)
    local t0 = banger.sys.monotonic_ms()
    local none, msg, code = c:ping(300)
    local took = banger.sys.monotonic_ms() - t0
    t.eq(banger.proc.run({ "pkill", "-CONT", "-P", tostring(child:pid()) }).code, 0)
    t.eq({ none, code }, { nil, "ETIMEDOUT" }, msg)
    t.truthy(took >= 290 and took < 3000, "the ping gave up after " .. took .. " ms")
    c:close()
    child:kill(9)
    child:wait(5000)
  end)

  it("reads memory, load and uptime through the agent's get", function()
    local c, child = start_agent()
    local g = vm_stats.guest(c) -- the agent runs on this host: this host's numbers
    local host = vm_stats.parse_meminfo(t.read("/proc/meminfo"))
    t.eq(g.mem_total_bytes, host.MemTotal)
    t.truthy(g.mem_available_bytes > 0 and g.mem_free_bytes > 0 and g.load_15 >= 0 and g.uptime_seconds > 0)
    c:close()
    child:kill(9)
    child:wait(5000)
  end)
end)
