-- banger system uninstall: remove everything the install and the helper
-- added to the host; user data stays unless --purge.
return {
  summary = "remove the root helper service, banger's bridges, NAT rules and sockets",
  json = true,
  flags = {
    { "purge", type = "boolean", help = "also delete the owner's banger state and cache (VMs, images, kernels)" },
    { "root", type = "string", help = "remove the files under this directory instead of / (host objects untouched)" },
  },
  run = function(opts)
    if not opts.root and banger.sys.geteuid() ~= 0 then
      banger.errors.raise("EPERM", "system uninstall must run as root: sudo banger system uninstall")
    end
    local r = banger.system.uninstall({ root = opts.root, purge = opts.purge })
    banger.ui.emit(opts, r, function(res)
      if #res.removed == 0 then
        banger.ui.print("nothing to remove")
      end
      for _, what in ipairs(res.removed) do
        banger.ui.print("removed " .. what)
      end
    end, "uninstalled")
  end,
}
