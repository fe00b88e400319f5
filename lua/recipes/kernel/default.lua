-- banger kernel default: make sure the default kernel exists, importing it
-- from the host's package manager (Debian/Ubuntu: apt-get download of the
-- cloud kernel package) or pulling it from the configured catalog
-- (banger.kernels.ensure_default, which a VM's first start also calls).
return {
  summary = "ensure the default kernel is in the catalog (import or pull it)",
  json = true,
  run = function(opts)
    local k = banger.kernels.ensure_default(banger.ui.info)
    banger.ui.emit(opts, k, function(m)
      banger.ui.print(string.format("default kernel: %s (Linux %s)", m.name, m.version))
    end, "kernel")
  end,
}
