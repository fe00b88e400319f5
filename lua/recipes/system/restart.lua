-- banger system restart: restart the root helper service.
return {
  summary = "restart the root helper service",
  run = function()
    if not banger.system.record() then
      banger.errors.raise("ENOENT", "banger is not installed (sudo banger system install)")
    end
    if not banger.system.systemd_running() then
      banger.errors.raise("ESYSTEMD", "systemd is not running on this host")
    end
    local r = banger.proc.run({ "systemctl", "restart", banger.system.unit_name })
    if r.code ~= 0 then
      banger.errors.raise("ESYSTEMD", "systemctl restart failed: " .. r.stderr)
    end
    banger.ui.print("restarted " .. banger.system.unit_name)
  end,
}
