-- banger image pull REF [--name N]: an OCI image from a registry, turned into
-- an ext4 root filesystem without root: layers downloaded in parallel into
-- the verified blob cache, then written into the image by the ext4 engine
-- with OCI layer rules. A failed or interrupted pull registers nothing.
return {
  summary = "pull an OCI image from a registry into an ext4 image",
  json = true,
  args = { { "ref", required = true, help = "image reference, e.g. docker.io/library/debian:bookworm" } },
  flags = {
    { "name", type = "string", help = "image name (default: derived from the reference)" },
    { "kernel", type = "string", help = "kernel to boot it with" },
    { "platform", type = "string", default = "linux/amd64", help = "platform to pick from an index" },
    { "parallel", type = "integer", default = 4, help = "concurrent layer downloads" },
    { "default", type = "boolean", help = "make it the default image" },
  },
  run = function(opts)
    local ui = banger.ui
    local ref = banger.oci.parse_ref(opts.ref)
    local name = opts.name or (ref.repository:match("([^/]+)$") .. "-" .. (ref.tag or "latest")):lower()
      :gsub("[^a-z0-9-]", "-"):gsub("^[^a-z]+", "")
    local cache = banger.state.layout().cache .. "/oci"
    local resolved = banger.oci.resolve(opts.ref, { cache = cache, platform = opts.platform })
    ui.info(string.format("%s: %s, %d layer(s)", opts.ref, resolved.digest, #resolved.layers))
    local last = -1
    local pulled = banger.oci.fetch(resolved, {
      cache = cache, parallel = opts.parallel,
      on_progress = ui.is_tty(2) and function(done, total)
        local pct = total > 0 and math.floor(done * 100 / total) or 0
        if pct ~= last then
          last = pct
          io.stderr:write(string.format("\r  downloading %3d%% of %s", pct, banger.units.format_bytes(total)))
        end
      end or nil,
    })
    if last >= 0 then
      io.stderr:write("\n")
    end
    local fields = { name = name, kernel = opts.kernel, is_default = opts.default, source_ref = opts.ref,
      digest = resolved.digest }
    fields.customize = function(img)
      fields.init = banger.images.make_bootable(img)
      if fields.init then
        ui.info("  no init in the image: VMs boot it with banger-init (agent as PID 1)")
      end
    end
    local row = banger.images.import_layers(pulled, fields, function(i, _, st)
      ui.info(string.format("  layer %d/%d: %d entries, %s", i, #pulled, st.entries, banger.units.format_bytes(st.bytes)))
    end)
    ui.emit(opts, row, function(r)
      ui.print(string.format("pulled %s as image %s (%s)", opts.ref, r.name, banger.units.format_bytes(r.size_bytes)))
    end)
  end,
}
