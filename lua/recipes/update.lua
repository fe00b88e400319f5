-- banger update: this release install to the channel's newest version,
-- another one (--to), or back to the previous one (--rollback); --check
-- only looks. docs/install.md ("Updating") has the rules and exit codes.
local function ask(opts)
  if opts.yes then
    return nil
  end
  return function(from, to)
    if not banger.ui.is_tty(0) then
      banger.errors.raise("EUSAGE", "refusing to switch banger " .. from .. " -> " .. to
        .. " without a terminal to confirm on; use --yes", { exit = 2 })
    end
    io.stderr:write("switch banger " .. from .. " -> " .. to .. "? [y/N] ")
    local answer = io.stdin:read("l")
    return answer ~= nil and answer:lower():match("^y") ~= nil
  end
end

local function check(opts)
  local exits = banger.update.check_exit
  local ok, r = pcall(banger.update.check)
  if not ok then
    -- 1 means "up to date" here: a failure to check must not look like it.
    if banger.errors.is(r) and (r.exit == nil or r.exit == 1) then
      r.exit = exits.check_failed
    end
    error(r, 0)
  end
  banger.ui.emit(opts, r, function(c)
    if c.update_available then
      banger.ui.print(string.format("banger %s is available (this is %s): banger update", c.available, c.current))
    else
      banger.ui.print(string.format("banger %s is up to date (the channel's latest is %s)", c.current, c.available))
    end
  end, "update_check")
  return r.update_available and exits.available or exits.up_to_date
end

return {
  summary = "update banger from its signed release channel (--check, --to, --rollback)",
  json = true,
  flags = {
    { "check", type = "boolean", help = "only say whether a newer version is available (exit 0: yes, 1: no)" },
    { "to", type = "string", metavar = "VERSION", help = "install this version (the only way to go back to an older one)" },
    { "rollback", type = "boolean", help = "switch back to the previous version" },
    { "yes", short = "y", type = "boolean", help = "do not ask for confirmation" },
    { "system-root", type = "string", metavar = "DIR",
      help = "where the system install record lives instead of / (packaging, tests)" },
  },
  examples = { "banger update --check", "banger update", "banger update --to 0.2.0", "banger update --rollback" },
  run = function(opts)
    if (opts.check and 1 or 0) + (opts.to and 1 or 0) + (opts.rollback and 1 or 0) > 1 then
      banger.errors.usage("--check, --to and --rollback do not go together", "update")
    end
    if opts.check then
      return check(opts)
    end
    local r
    if opts.rollback then
      r = banger.update.rollback({ confirm = ask(opts), system_root = opts.system_root })
    else
      local progress = banger.ui.percent_progress(function(pct, done, total)
        return string.format("%3d%% %s of %s", pct, banger.units.format_bytes(done), banger.units.format_bytes(total))
      end)
      r = banger.update.update({
        to = opts.to, confirm = ask(opts), system_root = opts.system_root, on_progress = progress.update,
        on_stage = function(name, detail)
          progress.finish()
          banger.ui.info(name .. ": " .. detail)
        end,
      })
      progress.finish()
    end
    banger.ui.emit(opts, r, function(u)
      if not u.changed then
        banger.ui.print("banger " .. u.to .. " is up to date")
        return
      end
      banger.ui.print(string.format("banger %s -> %s%s", u.from, u.to,
        u.previous and (" (previous: " .. u.previous .. ", banger update --rollback)") or ""))
      if #u.removed > 0 then
        banger.ui.info("removed older versions: " .. table.concat(u.removed, ", "))
      end
      if u.helper then
        banger.ui.info("root helper: " .. u.helper)
      end
    end, "update")
  end,
}
