-- banger vm prune [-f]: delete every VM that is not running.
-- banger vm prune --orphans [-f]: remove host objects no VM accounts for.
local function prune_orphans(opts)
  local census = banger.census
  local found, unchecked = census.scan()
  for _, p in ipairs(unchecked) do
    banger.ui.warn(p)
  end
  if #found == 0 then
    banger.ui.emit(opts, { removed = {}, failed = {}, unchecked = unchecked },
      function() banger.ui.info("no orphaned host objects") end, "orphans_removed")
    return 0
  end
  if not opts.force then
    if not banger.ui.is_tty(0) then
      banger.errors.raise("EUSAGE", "refusing to remove " .. #found .. " orphaned host object(s) without a terminal "
        .. "to confirm on; use --force", { exit = 2 })
    end
    for _, o in ipairs(found) do
      io.stderr:write("  ", o.kind, "  ", o.detail, "\n")
    end
    io.stderr:write("remove these? [y/N] ")
    local answer = io.stdin:read("l")
    if not answer or not answer:lower():match("^y") then
      banger.ui.info("nothing removed")
      return 1
    end
  end
  local removed, failed, still_unchecked = census.remove()
  local report = { removed = {}, failed = {}, unchecked = still_unchecked }
  for _, o in ipairs(removed) do
    report.removed[#report.removed + 1] = census.describe(o)
  end
  for _, f in ipairs(failed) do
    local d = census.describe(f.object)
    d.error = f.error
    report.failed[#report.failed + 1] = d
  end
  banger.ui.emit(opts, report, function(r)
    banger.ui.info("removed " .. #r.removed .. " orphaned host object(s)" .. (#r.removed > 0 and ":" or ""))
    for _, o in ipairs(r.removed) do
      banger.ui.print(string.format("%-12s %s", o.kind, o.detail))
    end
    for _, f in ipairs(r.failed) do
      banger.ui.warn("could not remove " .. f.kind .. " " .. f.detail .. ": " .. f.error)
    end
  end, "orphans_removed")
  return #failed > 0 and 1 or 0
end

return {
  summary = "delete all VMs that are not running (--orphans: host objects no VM accounts for)",
  description = "Without --orphans: deletes every VM that is not running.\n\n"
    .. "With --orphans: removes instead what 'banger doctor' lists as orphans, banger's host objects that no\n"
    .. "VM row accounts for (left by a crash of an older banger, or by hand): this user's bgtap* taps no\n"
    .. "process holds, NAT and Docker accept rules of taps that are gone, an empty 'ip banger' nftables\n"
    .. "table, this user's hypervisors whose sockets are in banger's runtime directory (an isolated QEMU is\n"
    .. "told to quit through its QMP socket), and runtime, VM and snapshot directories without a row. Other users'\n"
    .. "taps and processes, other tables and other banger homes' VMs are never touched. Asks first unless\n"
    .. "--force; prints what it removed (--json: {removed, failed, unchecked}).",
  json = true,
  flags = {
    { "force", short = "f", type = "boolean", help = "do not ask for confirmation" },
    { "orphans", type = "boolean", help = "instead, remove banger's host objects that no VM accounts for "
      .. "(the ones 'banger doctor' lists: taps, NAT rules, hypervisors, runtime and VM directories)" },
  },
  run = function(opts)
    if opts.orphans then
      return prune_orphans(opts)
    end
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
