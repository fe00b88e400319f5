-- banger vm run end to end: a real kernel under QEMU, the repository copied
-- onto the work disk, the command's output and exit code coming back.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()

describe("vm run", function()
  it("runs the command in a copy of the repository and returns its exit code", function()
    local home = e2e.home()
    local dir = home .. "/proj"
    banger.fs.mkdir(dir, 493, true)
    for _, args in ipairs({ { "init", "-q" }, { "config", "user.email", "t@example.com" }, { "config", "user.name", "t" } }) do
      banger.proc.run({ "git", "-C", dir, table.unpack(args) })
    end
    t.write(dir .. "/check.sh", "#!/bin/sh\necho \"in $(pwd)\"\ncat data.txt\nls\nexit 3\n", tonumber("755", 8))
    t.write(dir .. "/data.txt", "tracked data\n")
    banger.proc.run({ "git", "-C", dir, "add", "." })
    banger.proc.run({ "git", "-C", dir, "commit", "-q", "-m", "init" })
    t.write(dir .. "/untracked.txt", "u\n")

    local r = t.banger({ "vm", "run", "--rm", "--image", "tiny", "--memory", "256MiB", "--", "./check.sh" },
      { home = home, cwd = dir, timeout_ms = 180000 })
    t.eq(r.code, 3, r.stderr)
    t.eq(r.stdout, "in /root/proj\ntracked data\ncheck.sh\ndata.txt\n")
    t.contains(r.stderr, "note: 1 untracked file(s) not copied")
    t.eq(e2e.vms(home), {}, "--rm deleted the VM")
    t.eq(e2e.processes(home .. "/run/banger"), "")

    local u = t.banger({ "vm", "run", "--name", "keep", "--image", "tiny", "--include-untracked", "--", "cat", "untracked.txt" },
      { home = home, cwd = dir, timeout_ms = 180000 })
    t.eq(u.code, 0, u.stderr)
    t.eq(u.stdout, "u\n")
    t.contains(u.stderr, "VM keep is still running")
    t.eq(e2e.vms(home).keep.state, "running")
    t.eq(t.banger({ "vm", "delete", "-f", "keep" }, { home = home }).code, 0)
  end)

  it("driver.isolate as root: QEMU runs as a VMM uid, exec's output and exit code come back, delete kills it", function()
    local home = e2e.home()
    t.write(home .. "/.config/banger/config.lua", 'return { network = { mode = "off" }, driver = { isolate = true } }\n')
    local c = t.banger({ "vm", "create", "isorun", "--image", "tiny", "--memory", "256MiB" }, { home = home, timeout_ms = 180000 })
    t.eq(c.code, 0, c.stderr)
    local shown = banger.json.decode(t.banger({ "vm", "show", "isorun", "--json" }, { home = home }).stdout)
    t.eq(shown.isolated, true)
    local uid = tonumber(t.read("/proc/" .. shown.pid .. "/status"):match("\nUid:%s+(%d+)"))
    t.truthy(uid >= 0x7e000000 and uid < 0x7e000000 + 4096, "uid " .. uid)
    local r = t.banger({ "vm", "exec", "isorun", "--", "sh", "-c", "echo from-isolated; exit 5" }, { home = home })
    t.eq(r.code, 5, r.stderr)
    t.eq(r.stdout, "from-isolated\n")
    t.eq(t.banger({ "vm", "delete", "-f", "isorun" }, { home = home }).code, 0)
    t.eq(e2e.processes("banger-isorun"), "", "delete killed the isolated QEMU (in-process signal_vmm)")
  end)

  it("a trusted project's override wraps the bundled vm run (docs/scripting.md's example); --no-nat beats vm.nat", function()
    local home = e2e.home()
    t.write(home .. "/.config/banger/config.lua", 'return { network = { mode = "off" }, vm = { nat = true } }\n')
    local dir = home .. "/proj"
    banger.fs.mkdir(dir, 493, true)
    banger.proc.run({ "git", "-C", dir, "init", "-q" })
    t.write(dir .. "/data.txt", "tracked data\n")
    banger.proc.run({ "git", "-C", dir, "add", "data.txt" })
    t.write(dir .. "/.banger/recipes/vm/run.lua", t.read(t.source_dir() .. "/examples/recipes/vm/run.lua"))
    t.eq(t.banger({ "trust" }, { home = home, cwd = dir }).code, 0)
    local help = t.banger({ "vm", "run", "--help" }, { home = home, cwd = dir })
    t.contains(help.stdout, "(timed)")
    t.contains(help.stdout, "--[no-]nat")
    t.contains(help.stdout, "--include-untracked")

    local r = t.banger({ "vm", "run", "--name", "wrapped", "--no-nat", "--image", "tiny", "--memory", "256MiB", "--",
      "sh", "-c", "cat data.txt; exit 4" }, { home = home, cwd = dir, timeout_ms = 180000 })
    t.eq(r.code, 4, r.stderr)
    t.eq(r.stdout, "tracked data\n", "the bundled run copied the repository and ran the command")
    local before = r.stderr:find("vm run: sh -c cat data.txt; exit 4\n", 1, true)
    local after = r.stderr:find("vm run: exit 4 after %d+%.%d s\n")
    t.truthy(before and after and before < after, r.stderr)
    local shown = banger.json.decode(t.banger({ "vm", "show", "wrapped", "--json" }, { home = home }).stdout)
    t.eq(shown.nat, false, "--no-nat over the config's vm.nat = true")
    t.eq(t.banger({ "vm", "delete", "-f", "wrapped" }, { home = home }).code, 0)

    -- vm create: --no-nat, --nat and neither, over vm.nat = true
    for _, c in ipairs({ { "n1", "--no-nat", false }, { "n2", "--nat", true }, { "n3", nil, true } }) do
      local argv = { "vm", "create", c[1], "--image", "tiny", "--no-start", "--json" }
      if c[2] then
        argv[#argv + 1] = c[2]
      end
      local cr = t.banger(argv, { home = home })
      t.eq(cr.code, 0, cr.stderr)
      t.eq(banger.json.decode(cr.stdout).nat, c[3], c[1])
      t.eq(t.banger({ "vm", "delete", c[1] }, { home = home }).code, 0)
    end
    local from = t.banger({ "vm", "create", "--from", "x", "--no-nat" }, { home = home })
    t.eq(from.code, 2)
    t.contains(from.stderr, "--nat cannot be combined")
  end)

  it("the per-call hook example (docs/scripting.md, examples/vm-hooks.lua) runs as the page says", function()
    local home = e2e.home()
    local r = t.banger({ "run", t.source_dir() .. "/examples/vm-hooks.lua", "tiny" }, { home = home, timeout_ms = 180000 })
    t.eq(r.code, 0, r.stderr)
    t.truthy(r.stdout:match("^written by a hook before vm%-%x+ booted\n$"), r.stdout)
    t.truthy(r.stderr:match("vm%-%x+ is up\n"), r.stderr)
    t.eq(e2e.vms(home), {}, "the example deleted its VM")
  end)

  it("without a command explains what is missing", function()
    local r = t.banger({ "vm", "run" }, { cwd = t.tmpdir() })
    t.eq(r.code, 2)
    t.contains(r.stderr, "pass a command")
  end)
end)
