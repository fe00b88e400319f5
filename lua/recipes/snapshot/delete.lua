-- banger snapshot delete NAME: remove a snapshot nothing needs.
return {
  summary = "delete a snapshot that no VM or snapshot needs",
  args = { { "name", required = true, complete = "snapshot", help = "snapshot name" } },
  run = function(opts)
    local row = banger.snapshots.delete(opts.name)
    banger.ui.info("deleted snapshot " .. row.name .. " (" .. banger.units.format_bytes(row.size_bytes) .. ")")
  end,
}
