-- banger vm ports NAME: the TCP ports a running VM listens on and the UDP
-- ports it has bound, with the process holding each and the address the
-- host reaches it at (NAME.vm:PORT, and the host ports forwarded to it), or
-- "guest-only" for loopback.
local function render(r)
  local ui = banger.ui
  if #r.listeners == 0 then
    ui.info(r.name .. " listens on no TCP or UDP port")
    return
  end
  ui.table(r.listeners, {
    { "PROTO", "proto" },
    { "ADDRESS", "address" },
    { "PORT", "port" },
    { "PROCESS", function(l) return l.pid and string.format("%s[%d]", l.comm, l.pid) or "-" end },
    { "URL", function(l)
      local where = { l.url }
      for _, f in ipairs(l.forwarded) do
        where[#where + 1] = f
      end
      return #where > 0 and table.concat(where, ", ") or l.reach
    end },
  })
  if r.truncated then
    ui.warn("the guest has more sockets than the agent lists; some are not shown")
  end
end

return {
  summary = "list the TCP and UDP ports a running VM listens on, and where the host reaches them",
  json = true,
  args = { { "name", required = true, complete = "vm", help = "VM name" } },
  flags = { { "timeout", type = "integer", default = 10, help = "seconds to wait for the guest agent" } },
  run = function(opts)
    if opts.timeout < 1 then
      banger.errors.usage("--timeout must be at least 1 second", "vm ports")
    end
    local r = banger.vm_ports.list(banger.vms.require(opts.name), opts.timeout * 1000)
    banger.ui.emit(opts, r, render, "vm_ports")
  end,
}
