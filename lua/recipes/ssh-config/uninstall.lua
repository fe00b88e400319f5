-- banger ssh-config uninstall: remove exactly what install added.
return {
  summary = "remove banger's Include block from ~/.ssh/config",
  json = true,
  run = function(opts)
    local r = banger.ssh_config.uninstall()
    banger.ui.emit(opts, r, function(x)
      banger.ui.print(x.removed and ("removed banger's block from " .. x.config) or "nothing to remove")
    end, "ssh_config_removed")
  end,
}
