-- Warm `vm run` end to end (real kernel, QEMU under TCG): the first run
-- boots and leaves a snapshot taken before any workspace was attached; the
-- next run restores it and still sees exactly the repository as it is now,
-- on a hot-plugged disk, and nothing the first run left. A changed image
-- makes a new snapshot; the cache keeps vm.warm_snapshots of them.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()

local function log_lines(home, from)
  local text = t.read(home .. "/.local/state/banger/banger.log") or ""
  return text:sub(from + 1)
end

describe("warm vm run", function()
  it("restores the warm snapshot, with the repository as it is now and nothing from the run before", function()
    local home = e2e.home()
    t.write(home .. "/.config/banger/config.lua", 'return { network = { mode = "off" }, vm = { warm_snapshots = 1 } }\n')
    local dir = home .. "/proj"
    banger.fs.mkdir(dir, 493, true)
    for _, args in ipairs({ { "init", "-q" }, { "config", "user.email", "t@example.com" }, { "config", "user.name", "t" } }) do
      banger.proc.run({ "git", "-C", dir, table.unpack(args) })
    end
    t.write(dir .. "/data.txt", "one\n")
    t.write(dir .. "/run.sh", "#!/bin/sh\npwd\ncat data.txt\nls\necho leftover > left.txt\nexit 4\n", tonumber("755", 8))
    banger.proc.run({ "git", "-C", dir, "add", "." })
    banger.proc.run({ "git", "-C", dir, "commit", "-q", "-m", "init" })
    local function vm_run(extra)
      local args = { "vm", "run", "--rm", "--image", "tiny", "--memory", "256MiB" }
      for _, a in ipairs(extra or {}) do
        args[#args + 1] = a
      end
      args[#args + 1] = "--"
      args[#args + 1] = "./run.sh"
      local from = #(t.read(home .. "/.local/state/banger/banger.log") or "")
      local r = t.banger(args, { home = home, cwd = dir, timeout_ms = 240000 })
      return r, log_lines(home, from)
    end

    local first, log1 = vm_run()
    t.eq(first.code, 4, first.stderr)
    t.eq(first.stdout, "/root/proj\none\ndata.txt\nrun.sh\n")
    t.contains(log1, "no warm snapshot yet")
    local snaps = banger.json.decode(t.banger({ "snapshot", "list", "--json" }, { home = home }).stdout)
    t.eq(#snaps, 1)
    t.eq(snaps[1].kind, "warm")
    t.eq(snaps[1].used_by_vms, {}, "the first run's VM is gone (--rm)")

    t.write(dir .. "/data.txt", "two\n") -- changed, not committed: the working tree is what is copied
    local second, log2 = vm_run()
    t.eq(second.code, 4, second.stderr)
    t.eq(second.stdout, "/root/proj\ntwo\ndata.txt\nrun.sh\n", "the current files, and no left.txt")
    t.contains(log2, "restoring warm snapshot")
    t.contains(log2, '"msg":"restored"')
    t.eq(e2e.vms(home), {})

    local cold, log3 = vm_run({ "--cold" })
    t.eq(cold.code, 4, cold.stderr)
    t.eq(cold.stdout, "/root/proj\ntwo\ndata.txt\nrun.sh\n")
    t.contains(log3, "cold boot")
    t.not_contains(log3, "restoring warm snapshot")

    -- a changed image gives a new machine: boot, new snapshot, the old one pruned (warm_snapshots = 1)
    local image = banger.json.decode(t.banger({ "image", "show", "tiny", "--json" }, { home = home }).stdout).rootfs_path
    t.eq(banger.proc.run({ "touch", "-d", "2001-01-01", image }).code, 0)
    local fourth, log4 = vm_run()
    t.eq(fourth.code, 4, fourth.stderr)
    t.contains(log4, "no warm snapshot yet")
    local after = banger.json.decode(t.banger({ "snapshot", "list", "--json" }, { home = home }).stdout)
    t.eq(#after, 1)
    t.truthy(after[1].name ~= snaps[1].name, "the stale snapshot was replaced")
    t.eq(e2e.processes(home .. "/"), "", "no hypervisor of this home is left")
  end)
end)
