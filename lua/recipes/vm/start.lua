-- banger vm start NAME: boot a stopped VM again (its disks are kept).
return {
  summary = "start a stopped VM",
  args = { { "name", required = true, complete = "vm", help = "VM name" } },
  flags = {
    { "driver", type = "string", choices = { "qemu", "firecracker" }, help = "override the VM's driver" },
    { "accel", type = "string", choices = { "auto", "kvm", "tcg" }, help = "QEMU acceleration" },
    { "no-wait", type = "boolean", help = "do not wait for the guest agent" },
  },
  run = function(opts)
    banger.vm.start(opts.name, { accel = opts.accel, wait = not opts.no_wait }, banger.ui.stages())
    banger.ui.info(opts.name .. ": running")
  end,
}
