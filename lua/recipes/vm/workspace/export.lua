-- banger vm workspace export NAME: bring a VM's changes back.
return {
  summary = "bring the files a VM changed in its workspace back, as a patch or a tarball",
  args = { { "vm", required = true, complete = "vm", help = "VM name" } },
  flags = {
    { "format", type = "string", default = "patch", choices = { "patch", "tar" }, help = "patch (for git apply) or tar" },
    { "output", short = "o", type = "string", complete = "file", help = "write here instead of standard output" },
  },
  examples = { "banger vm workspace export box | git apply", "banger vm workspace export box --format tar -o changes.tar" },
  run = function(opts)
    local row = banger.vms.require(opts.vm)
    if not banger.vms.alive(row) then
      banger.errors.raise("EINVAL", "VM '" .. row.name .. "' is not running (start it: banger vm start " .. row.name .. ")")
    end
    local r = banger.workspace.export(row, { format = opts.format })
    if opts.output then
      banger.fs.write_atomic(opts.output, r.data, tonumber("644", 8))
    else
      io.stdout:write(r.data)
    end
    banger.ui.info(string.format("%d changed or new file(s)%s", #r.changed,
      #r.deleted > 0 and (", " .. #r.deleted .. " deleted" .. (opts.format == "tar" and " (not in a tarball: " .. table.concat(r.deleted, ", ") .. ")" or "")) or ""))
  end,
}
