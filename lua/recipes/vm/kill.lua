-- banger vm kill NAME: stop the hypervisor at once.
return {
  summary = "kill a VM's hypervisor immediately",
  args = { { "name", required = true, complete = "vm", help = "VM name" } },
  run = function(opts)
    banger.ui.info(opts.name .. ": " .. banger.vm.kill(opts.name))
  end,
}
