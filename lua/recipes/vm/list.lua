-- banger vm list: the VMs of this user, from the state store.
local ui = banger.ui

return {
  summary = "list VMs",
  json = true,
  flags = {
    { "state", type = "string", help = "only VMs in this state (running, stopped, ...)" },
  },
  run = function(opts)
    local rows = banger.json.array()
    for _, row in ipairs(banger.vms.list()) do
      if not opts.state or row.state == opts.state then
        rows[#rows + 1] = banger.vm.describe(row)
      end
    end
    ui.emit(opts, rows, function(list)
      if #list == 0 then
        ui.info("no VMs (create one with 'banger vm run')")
        return
      end
      ui.table(list, {
        { "NAME", "name" },
        { "STATE", "state" },
        { "IMAGE", "image" },
        { "IP", "ip" },
        { "VCPUS", "vcpus" },
        { "MEMORY", function(r) return r.memory_mib .. "MiB" end },
        { "PID", "pid" },
        { "CREATED", "created_at" },
      })
    end, "array of vm")
  end,
}
