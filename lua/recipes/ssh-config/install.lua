-- banger ssh-config install: `ssh NAME.vm` works with banger's key and pins.
return {
  summary = "add a managed Include to ~/.ssh/config so `ssh NAME.vm` reaches banger VMs",
  json = true,
  run = function(opts)
    local r = banger.ssh_config.install()
    banger.ui.emit(opts, r, function(x)
      banger.ui.print("added banger's Include to " .. x.config .. " (Host *.vm settings in " .. x.included .. ")")
    end, "ssh_config_installed")
  end,
}
