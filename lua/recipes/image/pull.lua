-- banger image pull REF [--name N]: an OCI image from a registry, turned into
-- an ext4 root filesystem without root, in one stream: the layers download
-- in parallel into the verified blob cache while each is unpacked straight
-- into the image by the ext4 engine with OCI layer rules (a layer is read as
-- it arrives; it counts only once its digest is verified at its end). A
-- failed or interrupted pull registers nothing and leaves no image file.
return {
  summary = "pull an OCI image from a registry into an ext4 image",
  json = true,
  args = { { "ref", required = true, help = "image reference, e.g. docker.io/library/debian:bookworm" } },
  flags = {
    { "name", type = "string", help = "image name (default: derived from the reference)" },
    { "kernel", type = "string", complete = "kernel", help = "kernel to boot it with" },
    { "platform", type = "string", default = "linux/amd64", help = "platform to pick from an index" },
    { "parallel", type = "integer", default = 4, help = "concurrent layer downloads" },
    { "default", type = "boolean", help = "make it the default image" },
  },
  run = function(opts)
    local ui = banger.ui
    local ref = banger.oci.parse_ref(opts.ref)
    local name = opts.name or (ref.repository:match("([^/]+)$") .. "-" .. (ref.tag or "latest")):lower()
      :gsub("[^a-z0-9-]", "-"):gsub("^[^a-z]+", "")
    banger.images.validate_name(name)
    if banger.images.get(name) then  -- before any download
      banger.errors.raise("EEXIST", "an image named '" .. name .. "' already exists")
    end
    local cache = banger.state.layout().cache .. "/oci"
    local resolved = banger.oci.resolve(opts.ref, { cache = cache, platform = opts.platform })
    ui.info(string.format("%s: %s, %d layer(s)", opts.ref, resolved.digest, #resolved.layers))
    local pull <close> = banger.oci.pull(resolved, { cache = cache, parallel = opts.parallel })
    local layers, estimate = {}, 0
    for i, l in ipairs(resolved.layers) do
      layers[i] = function()
        return pull:open(i)
      end
      estimate = estimate + l.size
    end
    local progress = ui.percent_progress(function(pct, _, total)
      return string.format("downloaded %3d%% of %s", pct, banger.units.format_bytes(total))
    end)
    local fields = { name = name, kernel = opts.kernel, is_default = opts.default, source_ref = opts.ref,
      digest = resolved.digest }
    fields.customize = function(img)
      fields.init = banger.images.make_bootable(img)
      if fields.init then
        ui.info("  no init in the image: VMs boot it with banger-init (agent as PID 1)")
      end
    end
    local row = banger.images.import_layers(layers, fields, function(i, _, st)
      progress.clear()
      ui.info(string.format("  layer %d/%d: %d entries, %s", i, #layers, st.entries, banger.units.format_bytes(st.bytes)))
    end, {
      estimate = estimate,
      on_progress = progress.update and function() progress.update(pull:progress()) end,
      -- Every layer ended verified; this also waits for the cache's renames.
      after_layers = function()
        pull:wait()
      end,
    })
    ui.emit(opts, row, function(r)
      ui.print(string.format("pulled %s as image %s (%s)", opts.ref, r.name, banger.units.format_bytes(r.size_bytes)))
    end, "image")
  end,
}
