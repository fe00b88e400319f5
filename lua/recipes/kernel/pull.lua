-- banger kernel pull NAME: download a kernel named in a catalog, check its
-- sha256 and import it, or unpack it when it is a kernel bundle
-- (banger.kernel_catalog has the catalog's format; docs/kernels.md).
return {
  summary = "download a kernel from a catalog and import it",
  json = true,
  args = { { "name", required = true, help = "the kernel's name in the catalog" } },
  flags = {
    { "catalog", type = "string", help = "catalog URL (default: config kernel.catalog_url)" },
    { "as", type = "string", help = "local name (default: the catalog name)" },
    { "replace", type = "boolean", help = "replace a kernel of the same name" },
  },
  run = function(opts)
    local url = opts.catalog or banger.config.get().kernel.catalog_url
    if not url then
      banger.errors.usage("no catalog: pass --catalog URL or set kernel.catalog_url in config.lua", "kernel pull")
    end
    local m = banger.kernel_catalog.pull({ name = opts.name, catalog = url, as = opts.as, replace = opts.replace })
    banger.ui.emit(opts, m, function(k)
      banger.ui.print(string.format("%s: Linux %s (sha256 verified)", k.name, k.version))
    end, "kernel")
  end,
}
