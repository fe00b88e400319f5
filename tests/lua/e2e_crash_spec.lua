-- kill -9 of `vm create`, `vm start` and `vm run` right after each stage
-- stamp (ui.stages() logs every stage to banger.log as JSON with the pid;
-- the test polls it), then one other command, which must leave no tap, NAT
-- or Docker accept rule, hypervisor, runtime socket or overlay that no row
-- accounts for. As root, and as a non-root owner through the real root
-- helper with QEMU isolated by it (driver.isolate) and without. Real
-- kernel and QEMU (TCG), real taps and nftables in a namespace of the
-- test's own. Every kill lands before the guest has booted, so each point
-- costs about a second.
local hostenv = assert(loadfile(t.source_dir() .. "/tests/lua/hostenv.lua", "t", _ENV))()

local STAGES = {
  create = { "allocate", "disks", "kernel args", "network", "launch", "started", "wait for agent" },
  start = { "provision", "kernel args", "network", "launch", "started", "wait for agent" },
  run = { "allocate", "disks", "kernel args", "network", "launch", "started", "wait for agent" },
}
-- The command after each kill rotates so that every one of them follows
-- every one of create, start and run (each has at least four stages).
local NEXT = { { "vm", "list" }, { "vm", "show", "NAME" }, { "image", "list" }, { "vm", "prune", "-f" } }
local OFFSET = { create = 0, start = 1, run = 2 }

local function matrix(h, tag, commands, stages)
  local prefix = "crash" .. banger.sys.getpid() .. tag
  stages = stages or STAGES
  for _, cmd in ipairs(commands or { "create", "start", "run" }) do
    for i, stage in ipairs(stages[cmd]) do
      local name = prefix .. cmd:sub(1, 1) .. i
      local args
      if cmd == "create" then
        args = { "vm", "create", name, "--nat", "--image", "tiny", "--memory", "256MiB" }
      elseif cmd == "start" then
        name = prefix .. "s"
        if not h:vms()[name] then
          local c = h:banger({ "vm", "create", name, "--nat", "--image", "tiny", "--memory", "256MiB", "--no-start" })
          t.eq(c.code, 0, c.stderr)
        end
        args = { "vm", "start", name }
      else
        args = { "vm", "run", "--nat", "--name", name, "--image", "tiny", "--memory", "256MiB", "--", "true" }
      end
      local next_cmd = {}
      for j, w in ipairs(NEXT[(i - 1 + OFFSET[cmd]) % #NEXT + 1]) do
        next_cmd[j] = w == "NAME" and name or w
      end
      local where = string.format("%s (%s): kill -9 of vm %s after '%s', then %s", tag, h.owner, cmd, stage,
        table.concat(next_cmd, " "))

      local from = h:log_size()
      local child = t.spawn(h:argv(args, { stdout = "null", stderr = "pipe" }))
      local reached = h:wait_stage(child, child:pid(), stage, from)
      if not reached then
        error(where .. ": the command ended before that stage: " .. child:read_all("stderr"))
      end
      child:kill(9)
      child:wait()

      local r = h:banger(next_cmd)
      t.truthy(r.code == 0 or (next_cmd[2] == "show" and r.stderr:find("no VM named", 1, true)),
        where .. ": " .. r.stderr)
      h:check_clean(prefix, where)
    end
    if cmd == "start" then
      -- The VM whose starts were killed starts again, and goes cleanly.
      local s = h:banger({ "vm", "start", prefix .. "s", "--no-wait" })
      t.eq(s.code, 0, s.stderr)
      local d = h:banger({ "vm", "delete", "-f", prefix .. "s" })
      t.eq(d.code, 0, d.stderr)
      h:check_clean(prefix, tag .. ": after deleting the restarted VM")
    end
  end
end

describe("kill -9 at every stage boundary, then any command", function()
  local h
  after_each(function()
    if h then
      h:close()
    end
    hostenv.kill_leftovers("crash" .. banger.sys.getpid())
    hostenv.netns.cleanup()
    h = nil
  end)

  it("as root, QEMU run by banger itself", function()
    h = hostenv.new("root")
    matrix(h, "r")
  end)

  it("firecracker (the fake): its own stages, its tap made by create_tap, found by its sockets", function()
    h = hostenv.new("root", string.format("driver = { name = 'firecracker', firecracker_bin = %q }",
      os.getenv("BANGER_BUILD_DIR") .. "/tests/fake-firecracker/fake-firecracker"))
    -- The guest's agent socket accepts and never answers, so 'wait for
    -- agent' lasts until the kill: a real agent answered so fast that the
    -- kill after that stage could land after the create had finished.
    local sock = h.home .. "/agent.sock"
    local agent = t.spawn({ "python3", "-c", "import socket, sys\ns = socket.socket(socket.AF_UNIX)\n"
      .. "s.bind(sys.argv[1])\ns.listen(64)\nheld = []\nwhile True:\n    held.append(s.accept()[0])\n", sock })
    hostenv.e2e.wait_for(function() return banger.fs.exists(sock) end, 5000, "the agent socket")
    h.env = { FAKE_FC_VSOCK_BACKEND = sock }
    matrix(h, "f", { "create" }, { create = { "allocate", "disks", "kernel args", "network", "launch", "configure",
      "start", "wait for agent" } })
    agent:kill(9)
    agent:wait()
  end)

  it("as a non-root owner through the root helper, QEMU isolated by the helper and not", function()
    h = hostenv.new("user", "driver = { isolate = true }")
    matrix(h, "i")
    h:configure()
    matrix(h, "u")
  end)
end)
