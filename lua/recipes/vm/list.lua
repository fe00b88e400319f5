-- banger vm list: the VMs of this user, from the state store.
local ui = banger.ui

return {
  summary = "list VMs",
  json = true,
  flags = {
    { "state", type = "string", help = "only VMs in this state (running, stopped, ...)" },
  },
  run = function(opts)
    local db = banger.state.db()
    local rows
    if opts.state then
      rows = db:query("SELECT * FROM vms WHERE state = ? ORDER BY name", opts.state)
    else
      rows = db:query("SELECT * FROM vms ORDER BY name")
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
        { "CREATED", "created_at" },
      })
    end)
  end,
}
