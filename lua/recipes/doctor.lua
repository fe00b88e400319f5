-- banger doctor: is this host ready, and if not, what to do about it.
return {
  summary = "check this host's prerequisites, each with a fix",
  description = "The 'orphans' check lists banger's host objects that no VM accounts for (taps, NAT and Docker\n"
    .. "accept rules, hypervisors, runtime and VM directories); 'banger vm prune --orphans' removes them.",
  json = true,
  needs_config = false, -- reports a broken config.lua as its first check
  run = function(opts)
    local report = banger.doctor.run()
    banger.ui.emit(opts, report, function(r)
      local mark = { ok = "ok  ", warn = "warn", fail = "FAIL", skip = "skip" }
      for _, c in ipairs(r.checks) do
        banger.ui.print(string.format("%s  %-15s %s", mark[c.status], c.name, c.detail))
        if c.fix then
          banger.ui.print(string.format("      %-15s fix: %s", "", c.fix))
        end
      end
      banger.ui.print((r.failed == 0 and "ready" or (r.failed .. " check(s) failed"))
        .. (r.skipped > 0 and (", " .. r.skipped .. " skipped until the config loads") or ""))
    end, "doctor")
    if report.failed > 0 then
      os.exit(1)
    end
  end,
}
