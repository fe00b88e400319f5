-- banger vm workspace prepare NAME: copy this repository into a VM.
return {
  summary = "copy the current repository's files into a VM (/root/<repo>)",
  json = true,
  args = { { "vm", required = true, complete = "vm", help = "VM name" } },
  flags = {
    { "include-untracked", type = "boolean", help = "also copy untracked files that are not ignored" },
    { "dry-run", type = "boolean", help = "list the files that would be copied; touch no VM" },
  },
  run = function(opts)
    local ws = banger.workspace
    local root = ws.root()
    if not root then
      banger.errors.raise("ENOENT", "not inside a git repository")
    end
    local files, skipped = ws.files(root, { include_untracked = opts.include_untracked })
    if opts.dry_run then
      for _, f in ipairs(files) do
        io.stdout:write(f, "\n")
      end
    else
      local lock <close> = banger.vms.lock(opts.vm)
      local row = banger.vms.require(opts.vm)
      local n = ws.prepare(row, root, files)
      banger.ui.emit(opts, { vm = row.name, files = n, guest = "/root/" .. root:match("([^/]+)$") }, function(r)
        banger.ui.print(string.format("copied %d file(s) to %s:%s", r.files, r.vm, r.guest))
      end, "workspace")
    end
    if skipped > 0 then
      banger.ui.info(string.format("note: %d untracked file(s) not copied (add --include-untracked to copy them)", skipped))
    end
  end,
}
