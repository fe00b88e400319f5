-- One extension model: per-call hooks and checks (nothing registered in a
-- module), and banger.recipes.super() for a recipe that overrides another.
-- The VM hooks themselves run against a real guest in e2e_hooks_spec.lua.

local function git_repo(home)
  local repo = home .. "/repo"
  banger.fs.mkdir(repo, 493, true)
  t.eq(banger.proc.run({ "git", "-C", repo, "init", "-q" }).code, 0)
  return repo
end

-- An override of `banger version` that prints a line, then runs the one it replaces.
local function wrapper(label)
  return string.format([[
local base = banger.recipes.super()
return {
  summary = base.summary .. " [%s]",
  json = base.json,
  run = function(opts, ctx)
    banger.ui.print("%s before")
    base.run(opts, ctx)
    banger.ui.print("%s after")
  end,
}
]], label, label, label)
end

describe("banger.recipes.super", function()
  it("chains a trusted project's override to the user's and the user's to the bundled recipe", function()
    local home = t.tmpdir()
    local repo = git_repo(home)
    t.write(home .. "/.config/banger/recipes/version.lua", wrapper("user"))
    t.write(repo .. "/.banger/recipes/version.lua", wrapper("project"))
    t.eq(t.banger({ "trust" }, { home = home, cwd = repo }).code, 0)
    local r = t.banger({ "version" }, { home = home, cwd = repo })
    t.eq(r.code, 0, r.stderr)
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do
      lines[#lines + 1] = l
    end
    t.eq(#lines, 5, r.stdout)
    t.eq({ lines[1], lines[2], lines[4], lines[5] }, { "project before", "user before", "user after", "project after" })
    t.truthy(lines[3]:match("^banger %S+ %(commit"), lines[3])
    local h = t.banger({ "help" }, { home = home, cwd = repo })
    t.contains(h.stdout, "print banger's version, commit and build time [user] [project] [project]")
    -- without the project: the user's, over the bundled one
    local u = t.banger({ "--no-project", "version" }, { home = home, cwd = repo })
    t.eq(u.code, 0, u.stderr)
    t.truthy(u.stdout:match("^user before\nbanger .*\nuser after\n$"), u.stdout)
  end)

  it("never reaches past the trust gate: an untrusted project runs nothing, an unsafe user recipe is refused", function()
    local home = t.tmpdir()
    local repo = git_repo(home)
    t.write(repo .. "/.banger/recipes/version.lua",
      string.format('os.execute("touch %s/pwned")\n', home) .. wrapper("project"))
    local r = t.banger({ "version" }, { home = home, cwd = repo })
    t.eq(r.code, 77, r.stderr)
    t.falsy(banger.fs.exists(home .. "/pwned"))

    banger.fs.remove(repo .. "/.banger/recipes/version.lua")
    t.write(repo .. "/.banger/recipes/version.lua", wrapper("project"))
    t.write(home .. "/.config/banger/recipes/version.lua", wrapper("user"))
    t.eq(t.banger({ "trust" }, { home = home, cwd = repo }).code, 0)
    banger.fs.chmod(home .. "/.config/banger/recipes/version.lua", tonumber("666", 8))
    local unsafe = t.banger({ "version" }, { home = home, cwd = repo })
    t.eq(unsafe.code, 77, unsafe.stderr)
    t.contains(unsafe.stderr, "refusing your recipe " .. home .. "/.config/banger/recipes/version.lua")
    t.eq(unsafe.stdout, "")
  end)

  it("names what is missing: no recipe below, or not called from a recipe file", function()
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/recipes/vm/nothing.lua", wrapper("user"))
    local r = t.banger({ "vm", "nothing" }, { home = home })
    t.eq(r.code, 1)
    t.contains(r.stderr, "banger.recipes.super(): no recipe 'vm nothing' below this one to override")
    local s = t.banger({ "run", "-" }, { home = home, input = "banger.recipes.super()\n" })
    t.eq(s.code, 1)
    t.contains(s.stderr, "banger.recipes.super() is called at the top of a recipe file")
  end)
end)

describe("per-call extension points", function()
  it("doctor runs the checks it is given (after the config's); its defaults are a copy", function()
    local home = t.tmpdir()
    local r = t.banger({ "run", "-" }, { home = home, input = [[
local mine = { name = "mine", needed_for = "this test", run = function() return { status = "warn", detail = "d", fix = "f" } end }
local only = banger.doctor.run({ checks = { mine } })
local list = banger.doctor.default_checks()
local n = #list
list[#list + 1] = mine
print(#only.checks, only.checks[1].name, only.checks[2].name, only.checks[2].status,
  #banger.doctor.default_checks() == n, n > 5)
]] })
    t.eq(r.code, 0, r.stderr)
    t.eq(r.stdout, "2\tconfig\tmine\twarn\ttrue\ttrue\n", "the config's own check, then only the one given")
  end)

  it("a work disk gets the call's extra file_sync after the config's, and no other disk does", function()
    local home = t.tmpdir()
    t.write(home .. "/a.txt", "from config\n")
    t.write(home .. "/b.txt", "from the call\n")
    t.write(home .. "/.config/banger/config.lua", string.format(
      'return { network = { mode = "off" }, file_sync = { { host = %q, guest = "~/a.txt" } } }\n', home .. "/a.txt"))
    local r = t.banger({ "run", "-" }, { home = home, input = string.format([[
local p = require("banger.provision")
local function disk(name, opts)
  local img <close> = banger.ext4.create(%q .. "/" .. name, 32 * 1024 * 1024)
  p.work_disk(img, opts)
  return (img:exists("/a.txt") and "a" or "-") .. (img:exists("/b.txt") and "b" or "-")
end
print(disk("one", { public_key = "k", extra_file_sync = { { host = %q, guest = "~/b.txt" } } }), disk("two", { public_key = "k" }))
]], home, home .. "/b.txt") })
    t.eq(r.code, 0, r.stderr)
    t.eq(r.stdout, "ab\ta-\n")
  end)

  it("banger.vm.hooks_for refuses unknown hooks and non-functions; the stdlib installs no hook slot", function()
    local r = t.banger({ "run", "-" }, { input = [[
local ok, e = pcall(banger.vm.hooks_for, { before_stopp = print })
print(ok, e.code, banger.vm.hooks == nil, banger.provision.extra_file_sync == nil, banger.doctor.checks == nil)
local h = banger.vm.hooks_for({ after_boot = print })
print(h.after_boot == print, type(h.wait_ready), banger.vm.hooks_for(nil).after_boot ~= print)
]] })
    t.eq(r.code, 0, r.stderr)
    t.eq(r.stdout, "false\tEINVAL\ttrue\ttrue\ttrue\ntrue\tfunction\ttrue\n")
  end)
end)
