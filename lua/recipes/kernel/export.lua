-- banger kernel export NAME: write a kernel as a bundle for a catalog
-- (banger.kernel_catalog.export; docs/kernels.md has the catalog's format).
return {
  summary = "write a kernel as <name>-<arch>.tar.zst with its catalog entry",
  json = true,
  args = { { "name", required = true, complete = "kernel", help = "kernel name" } },
  flags = {
    { "output", type = "string", help = "directory to write into (default: the current one)" },
    { "level", type = "integer", default = 9, help = "zstd level, 1 (fast) to 19 (smallest, much slower)" },
  },
  examples = {
    "banger kernel export debian-cloud --output dist && jq -s '{kernels: .}' dist/*-*.json > dist/catalog.json",
  },
  run = function(opts)
    local entry, path = banger.kernel_catalog.export({ name = opts.name, output = opts.output, level = opts.level })
    banger.ui.emit(opts, entry, function(e)
      banger.ui.info(string.format("wrote %s (%s) and its catalog entry %s", path,
        banger.units.format_bytes(e.size), (path:gsub("%.tar%.zst$", ".json"))))
      banger.ui.print(banger.json.encode(e))
    end, "kernel export")
  end,
}
