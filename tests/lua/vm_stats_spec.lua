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
