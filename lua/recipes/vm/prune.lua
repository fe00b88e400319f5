-- banger vm prune [-f]: delete every VM that is not running.
return {
  summary = "delete all VMs that are not running",
  json = true,
  flags = { { "force", short = "f", type = "boolean", help = "do not ask for confirmation" } },
  run = function(opts)
    local victims = {}
    for _, row in ipairs(banger.vms.list()) do
      if not banger.vms.alive(row) then
        victims[#victims + 1] = row.name
      end
    end
    if #victims == 0 then
      banger.ui.emit(opts, banger.json.array(), function() banger.ui.info("nothing to prune") end, "array of string")
      return
    end
    if not opts.force then
      if not banger.ui.is_tty(0) then
        banger.errors.raise("EUSAGE", "refusing to prune " .. #victims .. " VM(s) without a terminal to confirm on; use --force",
          { exit = 2 })
      end
      io.stderr:write("delete " .. table.concat(victims, ", ") .. "? [y/N] ")
      local answer = io.stdin:read("l")
      if not answer or not answer:lower():match("^y") then
        banger.ui.info("nothing deleted")
        return 1
      end
    end
    local failed = 0
    local deleted = banger.json.array()
    for _, name in ipairs(victims) do
      local ok, e = pcall(banger.vm.delete, name, false)
      if ok then
        deleted[#deleted + 1] = name
      else
        failed = failed + 1
        banger.ui.warn("could not delete " .. name .. ": " .. banger.errors.message(e))
      end
    end
    banger.ui.emit(opts, deleted, function(list)
      banger.ui.info("deleted " .. #list .. " VM(s): " .. table.concat(list, ", "))
    end, "array of string")
    return failed > 0 and 1 or 0
  end,
}
