-- kill -9 of `vm snapshot`, `vm create --from` and `vm fork` right after
-- each of their stage stamps (hostenv.lua: ui.stages() logs them with the
-- pid), then `vm list`: no paused or orphaned QEMU, no overlay or snapshot
-- file without a row, no half-switched disk, no tap of a VM that is gone,
-- and the source VM running (its agent answers) or cleanly stopped. Real
-- kernel and QEMU (TCG), real taps in a namespace of the test's own.
local hostenv = assert(loadfile(t.source_dir() .. "/tests/lua/hostenv.lua", "t", _ENV))()
local e2e = hostenv.e2e

local RESTORE = { "allocate", "disks", "kernel args", "network", "launch", "started", "resume", "re-identify" }
local POINTS = {
  { "snapshot", { "vm", "snapshot", "SRC", "--name", "SNAP" }, { "snapshot", "snapshot saved", "resume source" } },
  { "restore", { "vm", "create", "--from", "BASE", "NEW" }, RESTORE },
  { "fork", { "vm", "fork", "SRC", "--count", "1", "--name", "NEW" },
    { "snapshot", "snapshot saved", "resume source", "allocate", "launch", "resume", "re-identify" } },
}

-- Everything on the host is accounted for, with `src` running or stopped.
local function check(h, prefix, src, where)
  local vms = h:vms() -- the next command: it reconciles
  local rows = h:rows()
  local ids = {}
  for _, r in ipairs(rows) do
    ids[r.id] = r
    t.truthy(r.state ~= "creating" and r.state ~= "starting", where .. ": " .. r.name .. " is still " .. r.state)
  end
  for _, id in ipairs(e2e.list(h:state() .. "/vms")) do
    t.truthy(ids[id], where .. ": VM directory " .. id .. " has no row")
    for _, f in ipairs(e2e.list(h:state() .. "/vms/" .. id)) do
      t.truthy(not f:find("%.next%.qcow2$"), where .. ": a half-switched disk " .. f .. " is left")
    end
  end
  local db <close> = banger.store.open(h:state() .. "/banger.db")
  local snaps = {}
  for _, s in ipairs(db:query("SELECT id, name, state FROM snapshots")) do
    t.eq(s.state, "ready", where .. ": snapshot " .. s.name .. " is still " .. s.state)
    snaps[s.id] = true
  end
  db:close()
  for _, id in ipairs(e2e.list(h:state() .. "/snapshots")) do
    t.truthy(snaps[id], where .. ": snapshot directory " .. id .. " (RAM file, layers) has no row")
  end
  local s = vms[src]
  t.truthy(s and (s.state == "running" or s.state == "stopped"), where .. ": the source is " .. tostring(s and s.state))
  if s.state == "running" then
    local r = h:banger({ "vm", "exec", src, "--", "true" }, 60000)
    t.eq(r.code, 0, where .. ": the source's agent does not answer (paused?): " .. r.stderr)
  end
  local running = 0
  for _, v in pairs(vms) do
    if v.alive then
      running = running + 1
    end
  end
  local procs = 0
  for _ in e2e.processes("banger-" .. prefix):gmatch("%d+") do
    procs = procs + 1
  end
  t.eq(procs, running, where .. ": hypervisors without a running VM")
  local taps = 0
  for _ in h:links():gmatch("bgtap") do
    taps = taps + 1
  end
  t.eq(taps, running, where .. ": taps without a running VM")
end

describe("kill -9 during snapshot, restore and fork", function()
  local h
  after_each(function()
    if h then
      h:close()
    end
    hostenv.kill_leftovers("snapcrash" .. banger.sys.getpid())
    hostenv.netns.cleanup()
    h = nil
  end)

  it("leaves nothing behind, and the source running or cleanly stopped", function()
    h = hostenv.new("root")
    local prefix = "snapcrash" .. banger.sys.getpid()
    local src = prefix .. "src"
    local c = h:banger({ "vm", "create", src, "--image", "tiny", "--memory", "256MiB" }, 180000)
    t.eq(c.code, 0, c.stderr)
    local base = h:banger({ "vm", "snapshot", src, "--name", prefix .. "base" }, 60000)
    t.eq(base.code, 0, base.stderr)
    local n = 0
    for _, point in ipairs(POINTS) do
      local what, template, stages = point[1], point[2], point[3]
      for _, stage in ipairs(stages) do
        n = n + 1
        local args = {}
        for i, a in ipairs(template) do
          args[i] = a == "SRC" and src or a == "SNAP" and (prefix .. "s" .. n) or a == "BASE" and (prefix .. "base")
            or a == "NEW" and (prefix .. "n" .. n) or a
        end
        local where = string.format("kill -9 of %s after '%s'", what, stage)
        if h:vms()[src].state ~= "running" then
          local s = h:banger({ "vm", "start", src }, 180000)
          t.eq(s.code, 0, where .. ": restarting the source: " .. s.stderr)
        end
        local from = h:log_size()
        local child = t.spawn(h:argv(args, { stdout = "null", stderr = "pipe" }))
        if not h:wait_stage(child, child:pid(), stage, from) then
          error(where .. ": the command ended before that stage: " .. child:read_all("stderr"))
        end
        child:kill(9)
        child:wait()
        check(h, prefix, src, where)
      end
    end
    -- everything goes, and then nothing at all is left
    for name, v in pairs(h:vms()) do
      t.eq(h:banger({ "vm", "delete", "-f", name }).code, 0, "deleting " .. name .. " (" .. v.state .. ")")
    end
    local p = h:banger({ "snapshot", "prune", "--json" })
    t.eq(p.code, 0, p.stderr)
    t.eq(e2e.list(h:state() .. "/snapshots"), {})
    -- snapshot files no row accounts for (left by hand, or an older banger) are an orphan the census removes
    banger.fs.mkdir(h:state() .. "/snapshots/0123456789ab", 448, true)
    t.write(h:state() .. "/snapshots/0123456789ab/ram", "x")
    local o = h:banger({ "vm", "prune", "--orphans", "-f", "--json" })
    t.eq(o.code, 0, o.stderr)
    t.eq(banger.json.decode(o.stdout).removed[1].kind, "snapshot_dir")
    t.eq(e2e.list(h:state() .. "/snapshots"), {})
    h:check_clean(prefix, "after deleting everything")
  end)
end)
