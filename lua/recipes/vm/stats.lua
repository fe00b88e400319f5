-- banger vm stats NAME: the hypervisor's CPU and memory on the host, the
-- guest's memory and load, disk and network use; --watch refreshes it.
local function render(s, cpu_percent)
  local ui, fmt = banger.ui, banger.units.format_bytes
  local function bytes(n)
    return n and fmt(n) or "-"
  end
  ui.print(string.format("%s  %s", s.name, s.state))
  local h = s.hypervisor
  if h then
    local cpu = h.cpu_seconds and string.format("%.1f s", h.cpu_seconds) or "-"
    if cpu_percent then
      cpu = cpu .. string.format(" (%.0f%%)", cpu_percent)
    end
    ui.print(string.format("  %-11s pid %d, cpu %s, rss %s", "hypervisor", h.pid, cpu, bytes(h.rss_bytes)))
  end
  local g = s.guest
  if g then
    ui.print(string.format("  %-11s memory %s available of %s, load %.2f %.2f %.2f, up %s", "guest",
      bytes(g.mem_available_bytes), bytes(g.mem_total_bytes), g.load_1, g.load_5, g.load_15,
      banger.vm_stats.format_duration(g.uptime_seconds)))
  elseif h then
    ui.print(string.format("  %-11s the agent does not answer", "guest"))
  end
  if s.network then
    ui.print(string.format("  %-11s %s: rx %s, tx %s", "network", s.network.tap, bytes(s.network.rx_bytes),
      bytes(s.network.tx_bytes)))
  end
  for _, d in ipairs({ { "root disk", s.root_disk }, { "work disk", s.work_disk } }) do
    local v = d[2]
    ui.print(string.format("  %-11s %s of %s used on the host (file %s, %s)", d[1], bytes(v.allocated_bytes),
      bytes(v.size_bytes), bytes(v.apparent_bytes), v.format))
  end
end

return {
  summary = "show a VM's CPU, memory, load, disk and network use (--watch to refresh)",
  json = true,
  args = { { "name", required = true, complete = "vm", help = "VM name" } },
  flags = {
    { "watch", short = "w", type = "boolean", help = "refresh until Ctrl-C" },
    { "interval", type = "integer", default = 2, help = "seconds between refreshes with --watch" },
    { "timeout", type = "integer", default = 5, help = "seconds to wait for the guest agent" },
  },
  run = function(opts)
    if opts.interval < 1 or opts.timeout < 1 then
      banger.errors.usage("--interval and --timeout must be at least 1 second", "vm stats")
    end
    if opts.watch and opts.json then
      banger.errors.usage("--watch prints for people; run --json once per sample instead", "vm stats")
    end
    if not opts.watch then
      local s = banger.vm_stats.sample(banger.vms.require(opts.name), opts.timeout * 1000)
      banger.ui.emit(opts, s, render, "vm_stats")
      return
    end
    local tty = banger.ui.is_tty(1)
    local last, last_at
    while true do
      local s = banger.vm_stats.sample(banger.vms.require(opts.name), opts.timeout * 1000)
      local now = banger.sys.monotonic_ms()
      local cpu = s.hypervisor and s.hypervisor.cpu_seconds
      local percent
      if cpu and last and now > last_at then
        percent = (cpu - last) * 100000 / (now - last_at)
      end
      last, last_at = cpu, now
      if tty then
        io.stdout:write("\27[H\27[2J") -- home and clear: the next sample replaces this one
      end
      render(s, percent)
      if not tty then
        banger.ui.print("")
      end
      io.stdout:flush()
      banger.sys.sleep_ms(opts.interval * 1000)
    end
  end,
}
