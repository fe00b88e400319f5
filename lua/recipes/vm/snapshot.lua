-- banger vm snapshot NAME [--name SNAP] [--stop]: save a running VM so it
-- can be restored (vm create --from) or forked, then let it run on.
return {
  summary = "snapshot a running VM (restore it with 'vm create --from')",
  description = "Pauses the VM, saves its device state and memory, freezes its disks as layers of the snapshot\n"
    .. "and resumes it on new overlays above them (--stop: leaves it stopped instead). The VM keeps\n"
    .. "needing the snapshot's layers, so the snapshot can be deleted only after the VM. See docs/snapshots.md.",
  json = true,
  args = { { "vm", required = true, complete = "vm", help = "the running VM" } },
  flags = {
    { "name", type = "string", help = "snapshot name (default: VM-YYYYmmdd-HHMMSS)" },
    { "stop", type = "boolean", help = "leave the VM stopped instead of resuming it" },
  },
  examples = { "banger vm snapshot box --name box-clean", "banger vm create --from box-clean copy" },
  run = function(opts)
    if opts.name then
      banger.snapshots.check_name(opts.name)
    end
    local row, took = banger.snapshots.take(opts.vm, { name = opts.name, stop = opts.stop, stage = banger.ui.stages() })
    local out = { snapshot = banger.snapshots.describe(row), pause_ms = took.pause_ms }
    banger.ui.emit(opts, out, function(v)
      banger.ui.print(string.format("snapshot %s of %s: %s, the VM was paused %d ms%s", v.snapshot.name,
        v.snapshot.source_vm, banger.units.format_bytes(v.snapshot.size_bytes), v.pause_ms,
        opts.stop and " and is now stopped" or ""))
    end, "snapshot_taken")
  end,
}
