-- banger image cache prune [--dry-run]: empty the OCI blob cache. Images do
-- not depend on it (each is a complete ext4 file); a pull running meanwhile
-- is not corrupted (the cache is renamed aside before it is deleted).
return {
  summary = "free the OCI blob cache",
  json = true,
  flags = { { "dry-run", type = "boolean", help = "only report what would be freed" } },
  run = function(opts)
    local r = banger.oci.cache_prune(banger.state.layout().cache .. "/oci", { dry_run = opts.dry_run })
    banger.ui.emit(opts, r, function(v)
      banger.ui.print(string.format("%s %s in %d blob(s)", opts.dry_run and "would free" or "freed",
        banger.units.format_bytes(v.bytes), v.blobs))
    end, "cache_prune")
  end,
}
