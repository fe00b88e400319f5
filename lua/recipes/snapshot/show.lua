-- banger snapshot show NAME
return {
  summary = "show one snapshot",
  json = true,
  args = { { "name", required = true, complete = "snapshot", help = "snapshot name" } },
  run = function(opts)
    local info = banger.snapshots.describe(banger.snapshots.require(opts.name))
    banger.ui.emit(opts, info, function(v)
      for _, k in ipairs({ "name", "id", "kind", "source_vm", "driver", "image", "kernel", "vcpus", "memory_mib",
        "disk_mib", "work_disk_mib", "ram", "size_bytes", "banger_version", "created_at", "last_used_at", "dir" }) do
        banger.ui.print(string.format("%-14s %s", k, banger.ui.text(v[k])))
      end
      banger.ui.print(string.format("%-14s %s", "used_by_vms", #v.used_by_vms > 0 and table.concat(v.used_by_vms, ", ") or "-"))
      banger.ui.print(string.format("%-14s %s", "used_by_snaps",
        #v.used_by_snapshots > 0 and table.concat(v.used_by_snapshots, ", ") or "-"))
    end, "snapshot")
  end,
}
