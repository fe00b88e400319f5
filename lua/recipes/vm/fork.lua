-- banger vm fork NAME [--count N] [--name PREFIX]: N running copies of a
-- running VM, each a machine of its own.
return {
  summary = "snapshot a running VM and restore copies of it",
  description = "Takes a snapshot of the VM (it keeps running) and restores COUNT new VMs from it, named\n"
    .. "PREFIX-1..PREFIX-N. Each fork gets its own name, address, MAC, machine-id, SSH host keys and\n"
    .. "RNG state, and shares the unchanged memory pages of the snapshot copy-on-write. The snapshot\n"
    .. "(kind 'fork') is deleted with the last VM that needs it. See docs/snapshots.md.",
  json = true,
  args = { { "vm", required = true, complete = "vm", help = "the running VM" } },
  flags = {
    { "count", type = "integer", help = "how many copies (default 1)" },
    { "name", type = "string", metavar = "PREFIX", help = "name prefix of the copies (default: VM-fork)" },
  },
  examples = { "banger vm fork box --count 4", "banger vm fork box --name try" },
  run = function(opts)
    local rows, took = banger.vm.fork(opts.vm, { count = opts.count, prefix = opts.name }, banger.ui.stages())
    local out = { snapshot = took.snapshot, pause_ms = took.pause_ms, total_ms = took.total_ms, vms = {} }
    for i, r in ipairs(rows) do
      out.vms[i] = banger.vm.describe(banger.vms.require(r.name))
    end
    banger.ui.emit(opts, out, function(v)
      for _, vm in ipairs(v.vms) do
        banger.ui.print(string.format("%s %s (%s)", vm.name, vm.state, vm.ip or "no network"))
      end
      banger.ui.info(string.format("%d fork(s) of %s in %d ms (the source was paused %d ms)", #v.vms, opts.vm,
        v.total_ms, v.pause_ms))
    end, "fork")
  end,
}
