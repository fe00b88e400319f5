-- banger image pull REF [--name N]: an OCI image from a registry, turned into
-- an ext4 root filesystem without root (banger.images.pull has the flow).
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
    local row = banger.images.pull({ ref = opts.ref, name = opts.name, kernel = opts.kernel, platform = opts.platform,
      parallel = opts.parallel, default = opts.default })
    banger.ui.emit(opts, row, function(r)
      banger.ui.print(string.format("pulled %s as image %s (%s)", opts.ref, r.name, banger.units.format_bytes(r.size_bytes)))
    end, "image")
  end,
}
