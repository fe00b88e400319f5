-- banger image register --rootfs FILE --name N [--kernel K]: adopt an
-- existing ext4 root filesystem as an image (copied into the image store).
return {
  summary = "register an existing ext4 root filesystem as an image",
  json = true,
  flags = {
    { "rootfs", type = "string", complete = "file", help = "ext4 image file (required)" },
    { "name", type = "string", help = "image name (required)" },
    { "kernel", type = "string", complete = "kernel", help = "kernel to boot it with (default: config vm.kernel)" },
    { "default", type = "boolean", help = "make it the default image" },
  },
  run = function(opts)
    if not opts.rootfs or not opts.name then
      banger.errors.usage("--rootfs and --name are required", "image register")
    end
    local row = banger.images.import_file(opts.rootfs, { name = opts.name, kernel = opts.kernel, is_default = opts.default })
    banger.ui.emit(opts, row, function(r)
      banger.ui.print(string.format("registered image %s (%s)", r.name, banger.units.format_bytes(r.size_bytes)))
    end, "image")
  end,
}
