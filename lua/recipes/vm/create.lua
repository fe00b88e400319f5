-- banger vm create [NAME]: allocate, make disks, boot, wait for the agent.
-- banger vm create --from SNAP [NAME]: restore a snapshot instead of booting.
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
    { "from", type = "string", metavar = "SNAPSHOT", help = "restore this snapshot instead of booting" },
  },
  run = function(opts)
    if opts.from then
      -- the machine is the snapshot's: only a name may be chosen
      for _, flag in ipairs({ "image", "kernel", "cpus", "memory", "disk", "work_disk", "nat", "driver", "accel",
        "no_start", "no_wait" }) do
        if opts[flag] ~= nil and opts[flag] ~= false then
          banger.errors.usage("--from restores the snapshot's machine as it was: --" .. flag:gsub("_", "-")
            .. " cannot be combined with it")
        end
      end
      if opts.name then
        banger.vms.check_name(opts.name)
      end
      local row = banger.vm.create_from(opts.from, { name = opts.name }, banger.ui.stages())
      local info = banger.vm.describe(banger.vms.require(row.name))
      banger.ui.emit(opts, info, function(v)
        banger.ui.print(string.format("%s %s (%s), restored from %s", v.name, v.state, v.ip or "no network", opts.from))
      end, "vm")
      return
    end
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
