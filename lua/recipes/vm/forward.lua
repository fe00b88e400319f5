-- banger vm forward NAME HOSTPORT:GUESTPORT[/udp]: forward a host port to
-- the VM's port (kept with the VM; live while it runs).
-- banger vm forward NAME [--list]: the VM's forwards.
-- banger vm forward NAME --remove HOSTPORT[/udp]: stop forwarding a port.
return {
  summary = "forward host ports to a VM's ports (list, add, remove)",
  json = true,
  args = {
    { "name", required = true, complete = "vm", help = "VM name" },
    { "forwards", rest = true, metavar = "HOSTPORT:GUESTPORT[/udp]",
      help = "host port to guest port, TCP unless /udp (host ports from 1024)" },
  },
  flags = {
    { "address", type = "string", metavar = "ADDR",
      help = "host address to listen on (default 127.0.0.1; any other is reachable from the network)" },
    { "list", short = "l", type = "boolean", help = "show the VM's forwards (the default without a port)" },
    { "remove", type = "list", metavar = "HOSTPORT[/udp]", help = "stop forwarding this host port" },
  },
  run = function(opts)
    local forwards = banger.forwards
    local adding = #opts.forwards > 0
    if opts.list and (adding or #opts.remove > 0) then
      banger.errors.usage("--list only shows: give it no ports and no --remove", "vm forward")
    end
    if opts.address and not adding then
      banger.errors.usage("--address applies to the forwards being added", "vm forward")
    end
    for _, spec in ipairs(opts.remove) do
      local proto, port = forwards.unforward(opts.name, spec)
      if not opts.json then
        banger.ui.info(opts.name .. ": no longer forwarding host port " .. port .. "/" .. proto)
      end
    end
    if adding then
      local address, exposed = forwards.check_address(opts.address or forwards.default_address)
      if exposed then
        banger.ui.warn("forwarding on " .. address .. ": these ports are reachable from the network, "
          .. "not only from this machine")
      end
      local added, live = forwards.forward(opts.name, opts.forwards, address)
      if not opts.json then
        for _, f in ipairs(added) do
          banger.ui.info(string.format("%s: %s:%d/%s -> guest port %d%s", opts.name, address, f.host_port, f.proto,
            f.guest_port, live and "" or " (active once the VM runs)"))
        end
      end
    end
    if opts.json or opts.list or (not adding and #opts.remove == 0) then
      banger.ui.emit(opts, forwards.status(opts.name), function(list)
        if #list == 0 then
          banger.ui.info(opts.name .. " has no forwards")
        end
        for _, f in ipairs(list) do
          banger.ui.print(string.format("%-21s -> %-5d %-3s %s", f.host_address .. ":" .. f.host_port, f.guest_port,
            f.proto, f.active and "active" or "inactive"))
        end
      end, "array of forward")
    end
  end,
}
