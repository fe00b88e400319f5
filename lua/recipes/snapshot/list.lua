-- banger snapshot list: every snapshot, its size and who needs it.
return {
  summary = "list snapshots",
  json = true,
  run = function(opts)
    local out = {}
    for _, row in ipairs(banger.snapshots.list()) do
      out[#out + 1] = banger.snapshots.describe(row)
    end
    banger.ui.emit(opts, out, function(list)
      if #list == 0 then
        banger.ui.info("no snapshots (take one with 'banger vm snapshot NAME')")
        return
      end
      local rows = {}
      for _, s in ipairs(list) do
        local users = {}
        for _, v in ipairs(s.used_by_vms) do users[#users + 1] = v end
        for _, v in ipairs(s.used_by_snapshots) do users[#users + 1] = "snapshot " .. v end
        rows[#rows + 1] = { s.name, s.kind, s.source_vm, banger.units.format_bytes(s.size_bytes), s.ram or "-",
          s.created_at, #users > 0 and table.concat(users, ",") or "-" }
      end
      banger.ui.table(rows, { "NAME", "KIND", "FROM", "SIZE", "RAM", "CREATED", "USED BY" })
    end, "array of snapshot")
  end,
}
