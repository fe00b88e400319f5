-- vm health / vm ping and vm stats on one real guest (kernel under QEMU
-- TCG, the tiny busybox image) with a tap on a bridge in a network
-- namespace of its own: every documented JSON key with a plausible value,
-- exit 0 while the agent answers and 1 once the VM is stopped, and
-- --watch ended by Ctrl-C with 130.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()
local json_doc = assert(loadfile(t.source_dir() .. "/tests/lua/json_doc.lua", "t", _ENV))()

local MiB = 1024 * 1024

describe("vm health and vm stats on a real guest", function()
  after_each(function()
    netns.cleanup()
  end)

  it("report a running VM's numbers, answer 0/1 for health, and stop --watch on Ctrl-C", function()
    local ns = netns.new("stats")
    local home = e2e.home()
    t.write(home .. "/.config/banger/config.lua", 'return { network = { mode = "on" } }\n')
    local run = netns.banger(ns, home)
    local c = run({ "vm", "create", "st", "--image", "tiny", "--memory", "256MiB", "--work-disk", "64MiB" })
    t.eq(c.code, 0, c.stderr)
    local vm = banger.json.decode(run({ "vm", "show", "st", "--json" }).stdout)

    -- health: the agent answers
    local h = run({ "vm", "health", "st", "--json" })
    t.eq(h.code, 0, h.stderr)
    local health = json_doc.conforms("vm health", h.stdout)
    t.eq({ health.name, health.state, health.ok, health.error }, { "st", "running", true, banger.json.null })
    t.truthy(health.rtt_ms > 0 and health.rtt_ms < 5000, "round trip " .. health.rtt_ms .. " ms")
    t.truthy(health.uptime_seconds > 0 and health.uptime_seconds < 3600, "uptime " .. health.uptime_seconds)
    t.eq(health.agent_version, "0.1.0")
    t.eq(health.protocol, "1.3") -- this build's agent: list and remove (docs/agent-protocol.md)
    t.eq(health.banger_version, banger.sys.build().version)
    t.truthy(health.kernel:match("cloud%-amd64$"), health.kernel)
    local ping = run({ "vm", "ping", "st" })
    t.eq(ping.code, 0, ping.stderr)
    t.truthy(ping.stdout:match("^st: ok, round trip [%d.]+ ms, up %d+"), ping.stdout)

    -- traffic through the tap, counted from the guest's side
    t.eq(netns.run(ns, { "busybox", "ping", "-c", "3", "-W", "10", vm.ip }).code, 0, "the guest answers pings")

    local s = run({ "vm", "stats", "st", "--json" })
    t.eq(s.code, 0, s.stderr)
    local stats = json_doc.conforms("vm stats", s.stdout)
    t.eq({ stats.name, stats.state }, { "st", "running" })
    t.eq(stats.hypervisor.pid, vm.pid)
    t.truthy(stats.hypervisor.rss_bytes > 16 * MiB, "hypervisor RSS " .. stats.hypervisor.rss_bytes)
    t.truthy(stats.hypervisor.cpu_seconds > 0, "hypervisor CPU time " .. stats.hypervisor.cpu_seconds)
    local g = stats.guest
    -- MemTotal is the VM's memory less what the kernel reserves for itself
    t.truthy(g.mem_total_bytes <= 256 * MiB and g.mem_total_bytes >= 200 * MiB,
      "guest MemTotal " .. g.mem_total_bytes / MiB .. " MiB for a 256 MiB VM")
    t.truthy(g.mem_available_bytes > 0 and g.mem_available_bytes <= g.mem_total_bytes)
    t.truthy(g.mem_free_bytes > 0 and g.mem_free_bytes <= g.mem_total_bytes)
    t.truthy(g.load_1 >= 0 and g.load_5 >= 0 and g.load_15 >= 0)
    t.truthy(g.uptime_seconds >= health.uptime_seconds, "uptime goes on")
    local tap = banger.net.tap_name({ id = vm.id })
    t.eq(stats.network.tap, tap)
    t.eq(netns.run(ns, { "ip", "link", "show", tap }).code, 0, "the tap is a device in the VM's namespace")
    t.truthy(stats.network.rx_bytes >= 3 * 98 and stats.network.tx_bytes >= 3 * 98,
      "three pings each way: rx " .. stats.network.rx_bytes .. ", tx " .. stats.network.tx_bytes)
    t.eq(stats.root_disk, {
      path = vm.dir .. "/root.qcow2", format = "qcow2", size_bytes = vm.disk_mib * MiB,
      apparent_bytes = banger.fs.stat(vm.dir .. "/root.qcow2").size,
      allocated_bytes = banger.fs.stat(vm.dir .. "/root.qcow2").blocks_bytes,
    })
    t.eq({ stats.work_disk.path, stats.work_disk.format, stats.work_disk.size_bytes },
      { vm.dir .. "/work.ext4", "raw", 64 * MiB })
    t.truthy(stats.work_disk.apparent_bytes == 64 * MiB, "the work disk file is the disk's size")
    t.truthy(stats.work_disk.allocated_bytes > 0 and stats.work_disk.allocated_bytes < 64 * MiB,
      "the work disk is sparse: " .. stats.work_disk.allocated_bytes)
    t.truthy(stats.root_disk.allocated_bytes > 0)

    local text = run({ "vm", "stats", "st" })
    t.eq(text.code, 0, text.stderr)
    for _, line in ipairs({ "st  running", "  hypervisor  pid " .. vm.pid, "  guest       memory ", "  network     " .. tap, "  root disk   ", "  work disk   " }) do
      t.contains(text.stdout, line)
    end

    -- --watch prints a sample every --interval until Ctrl-C, then exits 130
    local out = home .. "/watch.out"
    local argv = { "ip", "netns", "exec", ns, t.bin(), "vm", "stats", "st", "--watch", "--interval", "1",
      env = t.env(home), cwd = home, stdout = { file = out, append = false }, stderr = "null" }
    local watch = t.spawn(argv)
    e2e.wait_for(function()
      local _, n = (banger.fs.exists(out) and t.read(out) or ""):gsub("st  running\n", "")
      return n >= 2
    end, 60000, "two samples from vm stats --watch")
    t.truthy(t.read(out):match("cpu [%d.]+ s %(%d+%%%)"), "a later sample shows the CPU share: " .. t.read(out))
    watch:kill(2)
    local st = watch:wait(30000)
    t.eq({ st.exited, st.code }, { true, 130 })

    -- on a terminal (script(1) gives it one) each sample replaces the last
    local tty_out = home .. "/watch-tty.out"
    local cmd = table.concat({ "exec ip netns exec", ns, t.bin(), "vm stats st --watch --interval 1" }, " ")
    local term = t.spawn({ "script", "-qfec", cmd, "/dev/null", env = t.env(home), cwd = home,
      stdout = { file = tty_out, append = false }, stderr = "null", stdin = "null" })
    e2e.wait_for(function()
      local _, n = (banger.fs.exists(tty_out) and t.read(tty_out) or ""):gsub("\27%[H\27%[2Jst  running\r?\n", "")
      return n >= 2
    end, 60000, "two samples on a terminal, each after home + clear screen")
    local banger_pid = banger.proc.run({ "pgrep", "-P", tostring(term:pid()) }).stdout:match("%d+")
    -- the shell and ip netns exec both exec: the script's child is banger itself
    t.contains(t.read("/proc/" .. banger_pid .. "/cmdline"), "vm\0stats\0st")
    t.eq(banger.proc.run({ "kill", "-INT", banger_pid }).code, 0)
    local tst = term:wait(30000)
    t.eq({ tst.exited, tst.code }, { true, 130 }, t.read(tty_out))

    -- a hypervisor that runs but does not answer (SIGSTOP): 1 within --timeout
    t.eq(banger.proc.run({ "kill", "-STOP", tostring(vm.pid) }).code, 0)
    local t0 = banger.sys.monotonic_ms()
    local silent = run({ "vm", "health", "st", "--timeout", "1", "--json" })
    local took = banger.sys.monotonic_ms() - t0
    t.eq(banger.proc.run({ "kill", "-CONT", tostring(vm.pid) }).code, 0)
    t.eq(silent.code, 1, silent.stderr)
    local sh = json_doc.conforms("vm health", silent.stdout)
    t.eq({ sh.ok, sh.state, sh.rtt_ms }, { false, "running", banger.json.null })
    t.contains(sh.error, "ETIMEDOUT")
    t.truthy(took < 10000, "vm health --timeout 1 took " .. took .. " ms")
    local again = run({ "vm", "health", "st" })
    t.eq(again.code, 0, "answers again once resumed: " .. again.stdout .. again.stderr)

    -- stopped: health answers 1, stats has the disks only
    t.eq(run({ "vm", "stop", "st" }, 60000).code, 0)
    local down = run({ "vm", "health", "st", "--json" })
    t.eq(down.code, 1, down.stderr)
    local dh = json_doc.conforms("vm health", down.stdout)
    t.eq({ dh.ok, dh.state, dh.error, dh.rtt_ms, dh.agent_version }, { false, "stopped", "not running",
      banger.json.null, banger.json.null })
    local down_text = run({ "vm", "ping", "st" })
    t.eq({ down_text.code, down_text.stdout }, { 1, "st: not answering: not running\n" })
    local ds = json_doc.conforms("vm stats", run({ "vm", "stats", "st", "--json" }).stdout)
    t.eq({ ds.hypervisor, ds.guest, ds.network }, { banger.json.null, banger.json.null, banger.json.null })
    t.eq(ds.root_disk.size_bytes, vm.disk_mib * MiB)

    t.eq(run({ "vm", "delete", "st" }).code, 0)
    t.eq(e2e.processes(home .. "/run/banger"), "")
  end)
end)
