-- banger vm set NAME: change a VM's vCPUs, memory, work disk size or NAT.
-- A stopped VM boots with the new values at its next start; a running one
-- gets NAT on or off at once and refuses the rest (banger.vm_set).
local labels = { vcpus = "cpus", memory_mib = "memory", work_disk_mib = "work disk", nat = "nat" }

local function describe(r, column)
  local v = r[column]
  if column == "nat" then
    return "nat " .. (v and "on" or "off")
  elseif column == "vcpus" then
    return "cpus " .. v
  end
  return labels[column] .. " " .. banger.units.format_bytes(v * 1024 * 1024)
end

local function listed(r, columns)
  local parts = {}
  for i, column in ipairs(columns) do
    parts[i] = describe(r, column)
  end
  return table.concat(parts, ", ")
end

return {
  summary = "change a VM's cpus, memory, work disk size or NAT (NAT live; the rest from its next start)",
  json = true,
  args = { { "name", required = true, complete = "vm", help = "VM name" } },
  flags = {
    { "cpus", type = "integer", help = "virtual CPUs (a stopped VM)" },
    { "memory", type = "string", metavar = "SIZE", help = "memory, e.g. 2GiB (a stopped VM)" },
    { "work-disk", type = "string", metavar = "SIZE", help = "grow the work disk to SIZE (a stopped VM; never shrinks)" },
    { "nat", type = "boolean", tristate = true, help = "outbound NAT on (--no-nat: off); live on a running VM" },
  },
  run = function(opts)
    banger.vms.check_name(opts.name)
    local changes = banger.vm_set.check({ vcpus = opts.cpus, memory = opts.memory, work_disk = opts.work_disk,
      nat = opts.nat })
    local r = banger.vm_set.apply(opts.name, changes)
    banger.ui.emit(opts, r, function(v)
      if #v.applied == 0 and #v.pending == 0 then
        banger.ui.print(v.name .. ": nothing changed")
      end
      if #v.applied > 0 then
        banger.ui.print(v.name .. ": " .. listed(v, v.applied) .. ", now")
      end
      if #v.pending > 0 then
        banger.ui.print(v.name .. ": " .. listed(v, v.pending) .. ", from its next start")
      end
    end, "vm_set")
  end,
}
