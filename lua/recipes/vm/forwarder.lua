-- banger vm forwarder NAME --vm-dir DIR: a running VM's port forwarder.
-- `vm start` and `vm forward` start it in the background (one per VM with
-- forwards); `vm stop`, `kill` and `delete` stop it.
return {
  summary = "serve a running VM's port forwards (started and stopped automatically)",
  -- started by a command that holds the VM's lock: reconciling is the commands' job
  reconcile = false,
  args = { { "name", required = true, complete = "vm", help = "VM name" } },
  flags = {
    { "vm-dir", type = "string", metavar = "DIR", help = "the VM's directory (names this banger home's forwarder)" },
  },
  run = function(opts)
    if not opts.vm_dir then
      banger.errors.usage("--vm-dir is required", "vm forwarder")
    end
    banger.forwarder.serve(opts.name, opts.vm_dir)
  end,
}
