-- banger kernel rm NAME
return {
  summary = "remove a kernel from the catalog",
  args = { { "name", required = true, help = "kernel name" } },
  run = function(opts)
    local users = banger.state.db():query("SELECT name FROM vms WHERE kernel = ?", opts.name)
    if #users > 0 then
      banger.errors.raise("EBUSY", "kernel '" .. opts.name .. "' is used by VM '" .. users[1].name .. "'")
    end
    banger.kernel.remove(banger.kernels.dir(), opts.name)
    banger.ui.info("removed kernel " .. opts.name)
  end,
}
