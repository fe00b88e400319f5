-- banger version: what this binary is, stamped at build time.
return {
  summary = "print banger's version, commit and build time",
  json = true,
  needs_config = false, -- runs with a broken config.lua
  run = function(opts)
    local b = banger.sys.build()
    banger.ui.emit(opts, b, function(info)
      banger.ui.print(string.format("banger %s (commit %s, built %s)", info.version, info.commit, info.built_at))
    end, "version")
  end,
}
