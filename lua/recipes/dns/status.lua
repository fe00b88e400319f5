-- banger dns status: is the responder up, and which names does it answer?
return {
  summary = "show the <vm>.vm DNS responder and the names it answers",
  json = true,
  run = function(opts)
    local host, port = banger.dns.address()
    local names = banger.state.db():query(
      "SELECT name || '.vm' AS name, ip FROM vms WHERE state = 'running' AND ip IS NOT NULL ORDER BY name")
    local s = { running = banger.dns.running(), address = host .. ":" .. port, names = names }
    banger.ui.emit(opts, s, function(st)
      banger.ui.print(string.format("responder: %s on %s", st.running and "running" or "not running", st.address))
      for _, n in ipairs(st.names) do
        banger.ui.print(string.format("  %-30s %s", n.name, n.ip))
      end
    end, "dns_status")
  end,
}
