-- Wraps `banger vm run` with one step before and one after, keeping its
-- flags, its orchestration and its exit code. Drop it into
-- ./.banger/recipes/vm/run.lua (then `banger trust`) or
-- ~/.config/banger/recipes/vm/run.lua.
local base = banger.recipes.super()  -- the vm run this file replaces

return {
  summary = base.summary .. " (timed)",
  args = base.args,
  flags = base.flags,
  examples = base.examples,
  run = function(opts, ctx)
    banger.ui.info("vm run: " .. table.concat(opts.command, " "))
    local t0 = banger.sys.monotonic_ms()
    local code = base.run(opts, ctx)
    banger.ui.info(string.format("vm run: exit %d after %.1f s", code, (banger.sys.monotonic_ms() - t0) / 1000))
    return code
  end,
}
