-- banger vm create [NAME]: allocate, make disks, boot, wait for the agent.
-- banger vm create --from SNAP [NAME]: restore a snapshot instead of booting.
local flags = banger.vm_settings.cli_flags()
for _, f in ipairs({
  { "no-start", type = "boolean", help = "create the disks but do not boot" },
  { "no-wait", type = "boolean", help = "do not wait for the guest agent" },
  { "from", type = "string", metavar = "SNAPSHOT", complete = "snapshot", help = "restore this snapshot instead of booting" },
}) do
  flags[#flags + 1] = f
end

return {
  summary = "create and boot a VM",
  json = true,
  args = { { "name", help = "VM name (a DNS label; default: generated)" } },
  flags = flags,
  run = function(opts)
    if opts.from then
      -- the machine is the snapshot's: only a name may be chosen
      for _, flag in ipairs({ "image", "kernel", "cpus", "memory", "disk", "work_disk", "nat", "driver", "accel",
        "no_start", "no_wait" }) do
        -- nat is nil unless given: --no-nat is given too
        if opts[flag] ~= nil and (opts[flag] ~= false or flag == "nat") then
          banger.errors.usage("--from restores the snapshot's machine as it was: --" .. flag:gsub("_", "-")
            .. " cannot be combined with it")
        end
      end
      if opts.allow_host and #opts.allow_host > 0 then
        banger.errors.usage("--from restores the snapshot's machine as it was: --allow-host cannot be combined with it "
          .. "(the VM keeps the snapshot's allow-list)")
      end
      if opts.name then
        banger.vms.check_name(opts.name)
      end
      local publish = banger.vm_settings.from_flags(opts).publish
      banger.vm_settings.check({ publish = publish }, { names = banger.vm_settings.flags, command = "vm create" })
      local row = banger.vm.create_from(opts.from, { name = opts.name, publish = publish }, banger.ui.stages())
      local info = banger.vm.describe(banger.vms.require(row.name))
      banger.ui.emit(opts, info, function(v)
        banger.ui.print(string.format("%s %s (%s), restored from %s", v.name, v.state, v.ip or "no network", opts.from))
      end, "vm")
      return
    end
    local settings = banger.vm_settings.from_flags(opts)
    settings.name = opts.name
    banger.vm_settings.check(settings, { names = setmetatable({ name = "NAME" }, { __index = banger.vm_settings.flags }),
      command = "vm create" })
    settings.start, settings.wait = not opts.no_start, not opts.no_wait
    local row = banger.vm.create(settings, banger.ui.stages())
    local info = banger.vm.describe(banger.vms.require(row.name))
    banger.ui.emit(opts, info, function(v)
      banger.ui.print(string.format("%s %s (%s)", v.name, v.state, v.ip or "no network"))
    end, "vm")
  end,
}
