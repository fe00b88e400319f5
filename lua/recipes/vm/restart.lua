-- banger vm restart NAME: stop (cleanly if possible) and start again.
return {
  summary = "restart a VM",
  args = { { "name", required = true, complete = "vm", help = "VM name" } },
  flags = { { "grace", type = "integer", default = 15, help = "seconds to wait for a clean shutdown" } },
  run = function(opts)
    banger.vm.stop(opts.name, opts.grace * 1000)
    banger.vm.start(opts.name, {}, banger.ui.stages())
    banger.ui.info(opts.name .. ": running")
  end,
}
