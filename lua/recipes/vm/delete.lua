-- banger vm delete NAME...: remove VMs and everything they own on the host.
return {
  summary = "delete VMs (their disks, sockets, network and pinned host keys)",
  args = { { "names", rest = true, required = true, complete = "vm", help = "VM names" } },
  flags = { { "force", short = "f", type = "boolean", help = "kill running VMs first" } },
  run = function(opts)
    for _, name in ipairs(opts.names) do
      banger.vm.delete(name, opts.force)
      banger.ui.info("deleted " .. name)
    end
  end,
}
