-- banger system install: the root helper as a hardened systemd service, so
-- the owner's daily banger needs no sudo.
return {
  summary = "install the root helper as a systemd service for one user (run with sudo)",
  json = true,
  flags = {
    { "owner", type = "string", help = "user the helper serves (default: the user who ran sudo)" },
    { "root", type = "string", help = "write the files under this directory instead of / (packaging, tests)" },
    { "start", type = "boolean", default = true, help = "enable and (re)start the service (--no-start to only write it)" },
  },
  examples = { "sudo banger system install", "sudo banger system install --owner alice" },
  run = function(opts)
    local owner = opts.owner or os.getenv("SUDO_UID")
    if not owner then
      banger.errors.usage("say whom the helper serves: --owner USER (or run through sudo)", "system install")
    end
    if not opts.root and banger.sys.geteuid() ~= 0 then
      banger.errors.raise("EPERM", "system install writes a systemd unit and must run as root: sudo banger system install")
    end
    local r = banger.system.install(owner, { root = opts.root, start = opts.start })
    banger.ui.emit(opts, r, function(rec)
      banger.ui.print(string.format("installed %s for %s (uid %d): %s", banger.system.unit_name, rec.owner,
        rec.owner_uid, rec.unit))
      if rec.started then
        banger.ui.print("the helper is running; " .. rec.owner .. " can now use banger without sudo")
      elseif rec.note then
        banger.ui.warn(rec.note)
      end
    end, "installed")
  end,
}
