-- banger vm stop NAME: clean guest shutdown, killed after the grace period.
return {
  summary = "stop a VM (clean shutdown, then kill after --grace seconds)",
  args = { { "name", required = true, complete = "vm", help = "VM name" } },
  flags = { { "grace", type = "integer", default = 15, help = "seconds to wait for a clean shutdown" } },
  run = function(opts)
    local how = banger.vm.stop(opts.name, opts.grace * 1000)
    banger.ui.info(opts.name .. ": " .. how)
  end,
}
