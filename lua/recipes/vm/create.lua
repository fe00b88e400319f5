-- banger vm create [NAME]: allocate, make disks, boot, wait for the agent.
return {
  summary = "create and boot a VM",
  json = true,
  args = { { "name", help = "VM name (a DNS label; default: generated)" } },
  flags = {
    { "image", type = "string", help = "image name (default: config vm.image)" },
    { "kernel", type = "string", help = "kernel name (default: the image's, else config vm.kernel)" },
    { "cpus", type = "integer", help = "virtual CPUs" },
    { "memory", type = "string", metavar = "SIZE", help = "memory, e.g. 2GiB" },
    { "disk", type = "string", metavar = "SIZE", help = "root disk size" },
    { "work-disk", type = "string", metavar = "SIZE", help = "work disk size (mounted at /root)" },
    { "nat", type = "boolean", help = "give the VM outbound NAT" },
    { "driver", type = "string", choices = { "auto", "qemu", "firecracker" }, help = "hypervisor driver" },
    { "accel", type = "string", choices = { "auto", "kvm", "tcg" }, help = "QEMU acceleration" },
    { "no-start", type = "boolean", help = "create the disks but do not boot" },
    { "no-wait", type = "boolean", help = "do not wait for the guest agent" },
  },
  run = function(opts)
    local settings = banger.vm_settings.check({
      name = opts.name,
      image = opts.image,
      kernel = opts.kernel,
      vcpus = opts.cpus,
      memory = opts.memory,
      disk = opts.disk,
      work_disk = opts.work_disk,
      nat = opts.nat or nil,
      driver = opts.driver,
      accel = opts.accel,
    }, { names = setmetatable({ name = "NAME" }, { __index = banger.vm_settings.flags }), command = "vm create" })
    settings.start, settings.wait = not opts.no_start, not opts.no_wait
    local row = banger.vm.create(settings, banger.ui.stages())
    local info = banger.vm.describe(banger.vms.require(row.name))
    banger.ui.emit(opts, info, function(v)
      banger.ui.print(string.format("%s %s (%s)", v.name, v.state, v.ip or "no network"))
    end, "vm")
  end,
}
