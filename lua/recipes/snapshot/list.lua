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
      banger.ui.table(list, {
        { "NAME", "name" }, { "KIND", "kind" }, { "FROM", "source_vm" },
        { "SIZE", function(v) return banger.units.format_bytes(v.size_bytes) end },
        { "RAM", "ram" }, { "CREATED", "created_at" },
        { "USED BY", function(v)
          local users = {}
          for _, n in ipairs(v.used_by_vms) do users[#users + 1] = n end
          for _, n in ipairs(v.used_by_snapshots) do users[#users + 1] = "snapshot " .. n end
          return #users > 0 and table.concat(users, ",") or "-"
        end },
      })
    end, "array of snapshot")
  end,
}
