-- banger kernel list: the kernel catalog.
return {
  summary = "list kernels",
  json = true,
  run = function(opts)
    local list = banger.kernel.list(banger.kernels.dir())
    banger.ui.emit(opts, list, function(rows)
      if #rows == 0 then
        banger.ui.info("no kernels (import one with 'banger kernel import')")
        return
      end
      banger.ui.table(rows, { { "NAME", "name" }, { "VERSION", "version" }, { "DISTRO", "distro" },
        { "IMPORTED", "imported_at" } })
    end, "array of kernel")
  end,
}
