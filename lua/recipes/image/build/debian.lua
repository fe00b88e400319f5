-- banger image build debian: a Debian 12 golden image from Debian packages
-- (banger.debian_image: mmdebstrap, then the ext4 engine, no mount),
-- registered and, unless told otherwise, made the default.
return {
  summary = "build the Debian 12 golden image (mmdebstrap + the ext4 engine)",
  json = true,
  flags = {
    { "name", type = "string", default = "debian-12", help = "image name" },
    { "suite", type = "string", default = "bookworm", help = "Debian suite" },
    { "kernel", type = "string", complete = "kernel", default = "debian-cloud", help = "kernel recorded with the image" },
    { "package", type = "list", help = "extra package (adds to config image.packages)" },
    { "tar", type = "string", help = "use this mmdebstrap tar instead of running mmdebstrap (cache)" },
    { "no-default", type = "boolean", help = "do not make it the default image" },
    { "replace", type = "boolean", help = "replace an existing image of that name" },
  },
  run = function(opts)
    local row = banger.debian_image.build({
      name = opts.name, suite = opts.suite, kernel = opts.kernel, packages = opts.package, tar = opts.tar,
      default = not opts.no_default, replace = opts.replace,
    })
    banger.ui.emit(opts, row, function(r)
      banger.ui.print(string.format("built %s (%s)%s", r.name, banger.units.format_bytes(r.size_bytes),
        r.is_default == 1 and ", the default image" or ""))
    end, "image")
  end,
}
