-- A small recipe: `banger vm count [--state S] [--json]`.
-- Drop it into ./.banger/recipes/vm/count.lua (one project) or
-- ~/.config/banger/recipes/vm/count.lua (all projects).
return {
  summary = "count VMs, optionally in one state",
  json = true,
  flags = {
    { "state", type = "string", help = "only count VMs in this state" },
  },
  run = function(opts)
    local db = banger.state.db()
    local rows = db:query("SELECT state, COUNT(*) AS n FROM vms GROUP BY state ORDER BY state")
    local counts, total = {}, 0
    for _, r in ipairs(rows) do
      if not opts.state or r.state == opts.state then
        counts[r.state] = r.n
        total = total + r.n
      end
    end
    banger.ui.emit(opts, { total = total, by_state = counts }, function(data)
      banger.ui.print(string.format("%d VM(s)", data.total))
      for state, n in pairs(data.by_state) do
        banger.ui.print(string.format("  %-10s %d", state, n))
      end
    end)
  end,
}
