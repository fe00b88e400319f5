-- banger kernel rm NAME
return {
  summary = "remove a kernel from the catalog",
  args = { { "name", required = true, complete = "kernel", help = "kernel name" } },
  run = function(opts)
    banger.kernels.remove(opts.name)
    banger.ui.info("removed kernel " .. opts.name)
  end,
}
