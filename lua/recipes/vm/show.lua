-- banger vm show NAME: one VM in detail.
return {
  summary = "show one VM",
  json = true,
  args = { { "name", required = true, complete = "vm", help = "VM name" } },
  run = function(opts)
    local info = banger.vm.describe(banger.vms.require(opts.name))
    banger.ui.emit(opts, info, function(v)
      local keys = { "name", "id", "state", "alive", "image", "kernel", "driver", "vcpus", "memory_mib",
        "disk_mib", "work_disk_mib", "nat", "allow_hosts", "ip", "mac", "dns_name", "pid", "isolated", "created_at", "started_at",
        "last_error", "dir" }
      for _, k in ipairs(keys) do
        local value = v[k]
        if k == "allow_hosts" then
          value = #value > 0 and table.concat(value, " ") or nil -- "-": no allow-list
        end
        banger.ui.print(string.format("%-14s %s", k, banger.ui.text(value)))
      end
    end, "vm")
  end,
}
