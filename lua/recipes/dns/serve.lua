-- banger dns serve: answer <vm>.vm queries (started in the background by
-- vm start; run it in the foreground to watch it).
return {
  summary = "answer <vm>.vm DNS queries for running VMs (started automatically)",
  flags = {
    { "idle-exit", type = "integer", default = 60, help = "exit after this many seconds without a running VM" },
    { "port", type = "integer", help = "listen on this port instead of network.dns's" },
  },
  run = function(opts)
    local served = banger.dns.serve({ idle_s = opts.idle_exit, port = opts.port, on_ready = function(port)
      banger.log.info("dns", "listening", { port = port })
      if banger.ui.is_tty(2) then
        banger.ui.info("answering <vm>.vm on port " .. port)
      end
    end })
    if not served then
      banger.ui.info("a DNS responder is already running")
    end
  end,
}
