-- banger kernel import SOURCE [--name N]: add a kernel to the catalog.
return {
  summary = "import a kernel from a Debian package, a directory or a vmlinuz",
  json = true,
  args = { { "source", required = true, complete = "file", help = ".deb, directory or vmlinuz/vmlinux path" } },
  flags = {
    { "name", type = "string", help = "catalog name (default: derived from the source)" },
    { "distro", type = "string", default = "", help = "distribution, recorded in the manifest" },
    { "replace", type = "boolean", help = "replace a kernel of the same name" },
  },
  examples = {
    "apt-get download linux-image-6.1.0-56-cloud-amd64 && banger kernel import linux-image-*.deb --name debian-cloud",
  },
  run = function(opts)
    local name = opts.name or banger.kernels.name_for(opts.source)
    banger.ui.info("importing " .. opts.source .. " as " .. name .. " (vmlinux + initramfs)")
    banger.kernels.import({
      source = opts.source, name = name, distro = opts.distro, replace = opts.replace,
    })
    local m = banger.kernel.show(banger.kernels.dir(), name)
    banger.ui.emit(opts, m, function(k)
      banger.ui.print(string.format("%s: Linux %s, %d modules in the initramfs", k.name, k.version, #k.modules))
    end, "kernel")
  end,
}
