-- banger kernel show NAME
return {
  summary = "show one kernel's manifest",
  json = true,
  args = { { "name", required = true, complete = "kernel", help = "kernel name" } },
  run = function(opts)
    local k = banger.kernel.show(banger.kernels.dir(), opts.name)
    banger.ui.emit(opts, k, function(v)
      for _, key in ipairs({ "name", "version", "distro", "arch", "sha256", "source", "imported_at", "dir" }) do
        banger.ui.print(string.format("%-12s %s", key, banger.ui.text(v[key])))
      end
      banger.ui.print(string.format("%-12s %s", "modules", #(v.modules or {}) > 0 and table.concat(v.modules, " ") or "-"))
    end, "kernel")
  end,
}
