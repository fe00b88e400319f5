-- banger vm health NAME (alias: vm ping): does the guest agent answer?
-- Exit 0 when it does, 1 when not (a stopped VM, or no answer in --timeout).
return {
  summary = "check that a VM's agent answers (alias: ping): round trip, uptime, versions; exit 1 if not",
  json = true,
  args = { { "name", required = true, complete = "vm", help = "VM name" } },
  flags = { { "timeout", type = "integer", default = 5, help = "seconds to wait for the agent's answer" } },
  run = function(opts)
    if opts.timeout < 1 then
      banger.errors.usage("--timeout must be at least 1 second", "vm health")
    end
    local report = banger.vm_stats.health(banger.vms.require(opts.name), opts.timeout * 1000)
    banger.ui.emit(opts, report, function(r)
      if not r.ok then
        banger.ui.print(string.format("%s: not answering: %s", r.name, r.error))
        return
      end
      banger.ui.print(string.format("%s: ok, round trip %.1f ms, up %s", r.name, r.rtt_ms,
        banger.vm_stats.format_duration(r.uptime_seconds)))
      banger.ui.print(string.format("  agent %s (protocol %s), kernel %s, banger %s", r.agent_version, r.protocol,
        banger.ui.text(r.kernel), r.banger_version))
    end, "vm_health")
    return report.ok and 0 or 1
  end,
}
