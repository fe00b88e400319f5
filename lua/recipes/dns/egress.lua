-- banger dns egress: the resolver of VMs with an egress allow-list
-- (started in the background when such a VM starts; docs/networking.md).
return {
  summary = "resolve allow-listed names for VMs with --allow-host (started automatically)",
  flags = {
    { "idle-exit", type = "integer", default = 60, help = "exit after this many seconds without an allow-listed VM running" },
  },
  run = function(opts)
    local served = banger.egress.serve({ idle_s = opts.idle_exit, on_ready = function(port)
      banger.log.info("egress", "listening", { port = port })
    end })
    if not served then
      banger.ui.info("an egress resolver is already running")
    end
  end,
}
