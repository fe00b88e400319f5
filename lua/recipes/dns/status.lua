-- banger dns status: is the responder up, and which names does it answer?
return {
  summary = "show the <vm>.vm DNS responder and the names it answers",
  json = true,
  run = function(opts)
    banger.ui.emit(opts, banger.dns.status(), function(st)
      banger.ui.print(string.format("responder: %s on %s", st.running and "running" or "not running", st.address))
      for _, n in ipairs(st.names) do
        banger.ui.print(string.format("  %-30s %s", n.name, n.ip))
      end
    end, "dns_status")
  end,
}
