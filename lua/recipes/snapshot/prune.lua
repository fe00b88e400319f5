-- banger snapshot prune: delete every snapshot nothing needs.
return {
  summary = "delete every snapshot that no VM or snapshot needs",
  json = true,
  flags = {
    { "warm", type = "boolean", help = "only the warm 'vm run' snapshots" },
  },
  run = function(opts)
    local deleted = banger.snapshots.prune(opts.warm and { warm = true } or nil)
    local out = { deleted = {}, bytes = 0 }
    for _, row in ipairs(deleted) do
      out.deleted[#out.deleted + 1] = row.name
      out.bytes = out.bytes + row.size_bytes
    end
    banger.ui.emit(opts, out, function(v)
      banger.ui.info(string.format("deleted %d snapshot(s), %s%s", #v.deleted, banger.units.format_bytes(v.bytes),
        #v.deleted > 0 and (": " .. table.concat(v.deleted, ", ")) or ""))
    end, "snapshot_prune")
  end,
}
