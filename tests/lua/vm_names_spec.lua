-- Names from the command line are checked before they reach a path, and a
-- VM's lock file exists only while the VM does.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()

local function tree(dir)
  return banger.proc.run({ "find", dir, "-mindepth", "1", "-printf", "%P\n" }).stdout
end

local function locks(home)
  local dir = home .. "/.local/state/banger/locks"
  return banger.fs.exists(dir) and table.concat(banger.fs.list(dir), " ") or ""
end

describe("names that reach paths", function()
  it("every command taking a VM name refuses '../x' and touches no file", function()
    local home = t.tmpdir()
    t.eq(t.banger({ "vm", "list" }, { home = home }).code, 0)
    local before = tree(home)
    local commands = {
      { "vm", "delete", "../x" }, { "vm", "delete", "-f", "../../x" }, { "vm", "stop", "../x" },
      { "vm", "kill", "../x" }, { "vm", "start", "../x" }, { "vm", "restart", "../x" }, { "vm", "show", "../x" },
      { "vm", "exec", "../x", "--", "true" }, { "vm", "logs", "../x" }, { "vm", "ssh", "../x" },
      { "vm", "ssh", "--forget", "../x" }, { "vm", "workspace", "export", "../x" },
      { "vm", "create", "--no-start", "../x" },
    }
    for _, argv in ipairs(commands) do
      local r = t.banger(argv, { home = home })
      t.truthy(r.code ~= 0, table.concat(argv, " ") .. " succeeded")
      t.contains(r.stderr, "invalid VM name '../", table.concat(argv, " "))
    end
    -- the repository's workspace prepare takes a VM name too
    local repo = t.tmpdir()
    banger.proc.run({ "git", "-C", repo, "init", "-q" })
    local r = t.banger({ "vm", "workspace", "prepare", "../x" }, { home = home, cwd = repo })
    t.contains(r.stderr, "invalid VM name '../x'")
    t.eq(tree(home), before, "no file was created or removed")
  end)

  it("image and kernel names are checked before any lookup", function()
    local home = t.tmpdir()
    for _, argv in ipairs({ { "image", "show", "../x" }, { "image", "delete", "../x" } }) do
      local r = t.banger(argv, { home = home })
      t.eq(r.code, 1)
      t.contains(r.stderr, "invalid image name '../x'")
    end
    for _, argv in ipairs({ { "kernel", "show", "../x" }, { "kernel", "delete", "../x" } }) do
      local r = t.banger(argv, { home = home })
      t.eq(r.code, 1)
      t.contains(r.stderr, "invalid kernel name '../x'")
    end
    local e = t.raises(function() banger.kernels.require("../../etc") end, "EINVAL")
    t.contains(e.message, "invalid kernel name")
  end)
end)

describe("VM lock files", function()
  it("a command on a VM that does not exist leaves no lock file", function()
    local home = t.tmpdir()
    for _, argv in ipairs({ { "vm", "stop", "nope" }, { "vm", "kill", "nope" }, { "vm", "start", "nope" },
      { "vm", "delete", "nope" }, { "vm", "restart", "nope" } }) do
      local r = t.banger(argv, { home = home })
      t.eq(r.code, 1)
      t.contains(r.stderr, "no VM named 'nope'")
    end
    t.eq(locks(home), "")
  end)

  it("lives as long as its VM: kept after a create, removed by delete and by a failed create", function()
    local home = e2e.home()
    local r = t.banger({ "vm", "create", "--no-start", "--image", "tiny", "box" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.eq(locks(home), "vm-box.lock")
    r = t.banger({ "vm", "delete", "box" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.eq(locks(home), "")
    -- a create that fails after its row was inserted (the hypervisor cannot be started)
    t.write(home .. "/.config/banger/config.lua",
      'return { network = { mode = "off" }, driver = { name = "qemu", qemu_bin = "/nonexistent/qemu" } }\n')
    r = t.banger({ "vm", "create", "--image", "tiny", "--accel", "tcg", "box" }, { home = home })
    t.eq(r.code, 1)
    t.contains(r.stderr, "/nonexistent/qemu")
    t.eq(e2e.vms(home).box, nil, "the half-made VM is gone")
    t.eq(locks(home), "")
  end)
end)
