-- banger image import --name N LAYER.tar[.gz|.zst]...: build an image from
-- tarballs (a root filesystem tar, or OCI-style layers oldest first) with
-- the ext4 engine: no root, no mount, ownership as the archives say.
return {
  summary = "build an image from root filesystem tarballs or layers",
  json = true,
  args = { { "layers", rest = true, required = true, complete = "file", help = "tar files, oldest layer first" } },
  flags = {
    { "name", type = "string", help = "image name (required)" },
    { "kernel", type = "string", complete = "kernel", help = "kernel to boot it with" },
    { "headroom", type = "integer", default = 30, help = "free space to add, in percent of the content (0..1000)" },
    { "default", type = "boolean", help = "make it the default image" },
  },
  examples = { "mmdebstrap --variant=minbase bookworm debian.tar && banger image import --name debian debian.tar" },
  run = function(opts)
    if not opts.name then
      banger.errors.usage("--name is required", "image import")
    end
    local why = banger.images.headroom_problem(opts.headroom)
    if why then
      banger.errors.usage("--headroom " .. why, "image import")
    end
    local row = banger.images.import_layers(opts.layers, {
      name = opts.name, kernel = opts.kernel, is_default = opts.default, headroom_pct = opts.headroom,
      source_ref = "import:" .. table.concat(opts.layers, ","),
    }, function(i, path, st)
      banger.ui.info(string.format("  layer %d/%d %s: %d entries, %s", i, #opts.layers, path, st.entries,
        banger.units.format_bytes(st.bytes)))
    end)
    banger.ui.emit(opts, row, function(r)
      banger.ui.print(string.format("imported image %s (%s)", r.name, banger.units.format_bytes(r.size_bytes)))
    end, "image")
  end,
}
