-- The trust gate: nothing of a project directory (.banger/recipes/**,
-- banger.lua) runs on the host before the user trusted that exact content.
-- The hostile fixture below is the attack of issue 12: a cloned repository
-- whose recipe and banger.lua touch files in $HOME the moment they run.

local function git_repo(home)
  local repo = home .. "/repo"
  banger.fs.mkdir(repo, 493, true)
  t.eq(banger.proc.run({ "git", "-C", repo, "init", "-q" }).code, 0)
  return repo
end

-- Every way a Lua file could act on the host, each leaving its own mark.
local function hostile(home, repo)
  local mark = function(name)
    return string.format('os.execute("touch %s/pwned-%s")\n', home, name)
  end
  t.write(repo .. "/.banger/recipes/x/y.lua",
    mark("recipe") .. 'return { summary = "evil", run = function() ' .. mark("recipe-run") .. ' end }\n')
  t.write(repo .. "/.banger/recipes/vm/list.lua",
    mark("list") .. 'return { summary = "evil list", run = function() ' .. mark("list-run") .. ' end }\n')
  t.write(repo .. "/banger.lua", mark("banger-lua") .. 'vm = { vcpus = 1 }\nfunction provision(vm) ' .. mark("provision") .. ' end\n')
end

local function marks(home)
  local out = {}
  for _, name in ipairs(banger.fs.list(home)) do
    if name:match("^pwned") then
      out[#out + 1] = name
    end
  end
  table.sort(out)
  return out
end

local function trust(home, cwd, args)
  local argv = { "trust" }
  for _, a in ipairs(args or {}) do
    argv[#argv + 1] = a
  end
  return t.banger(argv, { home = home, cwd = cwd })
end

describe("an untrusted project", function()
  it("runs nothing of the repository for help, vm list, vm run --dry-run and vm run", function()
    local home = t.tmpdir()
    local repo = git_repo(home)
    hostile(home, repo)
    banger.fs.mkdir(repo .. "/src/deep", 493, true)
    for _, cwd in ipairs({ repo, repo .. "/src/deep" }) do
      local h = t.banger({ "help" }, { home = home, cwd = cwd })
      t.eq(h.code, 0, h.stderr)
      t.contains(h.stdout, "vm run")
      t.not_contains(h.stdout, "evil")
      t.contains(h.stdout, "note: this project's recipes in " .. repo .. "/.banger/recipes are ignored until you trust them ('banger trust')")

      -- vm list is overridden by the project: refused, naming the file and the way out
      local l = t.banger({ "vm", "list" }, { home = home, cwd = cwd })
      t.eq(l.code, 77, l.stderr)
      t.contains(l.stderr, repo .. "/.banger/recipes/vm/list.lua: project code (this project is not trusted)")
      t.contains(l.stderr, "banger trust " .. repo)
      t.eq(select(2, l.stderr:gsub("\n", "")), 1, "one line")

      local new_cmd = t.banger({ "x", "y" }, { home = home, cwd = cwd })
      t.eq(new_cmd.code, 77, new_cmd.stderr)

      local dry = t.banger({ "vm", "run", "--dry-run" }, { home = home, cwd = cwd })
      t.eq(dry.code, 77, dry.stderr)
      t.contains(dry.stderr, repo .. "/banger.lua:1: attempt to index a nil value (global 'os')")

      local run = t.banger({ "vm", "run", "--", "true" }, { home = home, cwd = cwd })
      t.eq(run.code, 77, run.stderr)
    end
    t.eq(marks(home), {}, "no hostile code ran")
    local vms = t.banger({ "--no-project", "vm", "list", "--json" }, { home = home, cwd = repo })
    t.eq(vms.stdout, "[]\n", "nothing was created")
  end)

  it("listing its files runs nothing from the repository's own .git/config", function()
    local home = t.tmpdir()
    local repo = git_repo(home)
    t.write(repo .. "/tracked.txt", "x\n")
    banger.proc.run({ "git", "-C", repo, "add", "tracked.txt" })
    -- what an archived repository (not a clone) can carry
    banger.proc.run({ "git", "-C", repo, "config", "core.fsmonitor", "touch " .. home .. "/pwned-fsmonitor; false" })
    local r = t.banger({ "vm", "run", "--dry-run" }, { home = home, cwd = repo })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stdout, "tracked.txt")
    t.eq(marks(home), {})
  end)

  it("--no-project runs every command without the project", function()
    local home = t.tmpdir()
    local repo = git_repo(home)
    hostile(home, repo)
    local before = t.banger({ "--no-project", "vm", "list", "--json" }, { home = home, cwd = repo })
    t.eq(before.code, 0, before.stderr)
    local after = t.banger({ "vm", "list", "--no-project", "--json" }, { home = home, cwd = repo })
    t.eq(after.code, 0, after.stderr)
    t.eq(after.stdout, "[]\n")
    local h = t.banger({ "help", "--no-project" }, { home = home, cwd = repo })
    t.not_contains(h.stdout, "note:")
    local env = t.banger({ "vm", "list", "--json" }, { home = home, cwd = repo, env = { BANGER_NO_PROJECT = "1" } })
    t.eq(env.code, 0, env.stderr)
    t.eq(marks(home), {})
  end)

  it("a broken recipe of a trusted project can be bypassed with --no-project", function()
    local home = t.tmpdir()
    local repo = git_repo(home)
    t.write(repo .. "/.banger/recipes/vm/list.lua", "return {{{\n")
    t.eq(trust(home, repo).code, 0)
    t.eq(t.banger({ "vm", "list" }, { home = home, cwd = repo }).code, 1)
    local r = t.banger({ "vm", "list", "--no-project", "--json" }, { home = home, cwd = repo })
    t.eq(r.code, 0, r.stderr)
    t.eq(r.stdout, "[]\n")
  end)
end)

describe("banger trust", function()
  it("shows the files and hashes, records them 0600 in a 0700 dir, and the override runs", function()
    local home = t.tmpdir()
    local repo = git_repo(home)
    hostile(home, repo)
    local dry = trust(home, repo, { "--dry-run" })
    t.eq(dry.code, 1, "not trusted yet")
    t.contains(dry.stdout, "project " .. repo .. " (untrusted)")
    t.eq(banger.fs.exists(home .. "/.local/state/banger/trust/projects.json"), false, "--dry-run records nothing")

    local r = trust(home, repo .. "/.banger") -- from inside the project: its root is found
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stdout, ".banger/recipes/x/y.lua")
    t.contains(r.stdout, "banger.lua")
    t.contains(r.stdout, "sha256:" .. banger.sys.sha256(t.read(repo .. "/banger.lua")))
    local dir = banger.fs.stat(home .. "/.local/state/banger/trust")
    t.eq(dir.mode, tonumber("700", 8))
    t.eq(banger.fs.stat(home .. "/.local/state/banger/trust/projects.json").mode, tonumber("600", 8))
    t.eq(marks(home), {}, "trusting runs nothing")

    local y = t.banger({ "x", "y" }, { home = home, cwd = repo })
    t.eq(y.code, 0, y.stderr)
    t.eq(marks(home), { "pwned-recipe", "pwned-recipe-run" }, "the trusted override runs")
    local h = t.banger({ "help" }, { home = home, cwd = repo })
    t.contains(h.stdout, "evil [project]")
    t.not_contains(h.stdout, "note:")
  end)

  it("a one-byte change, a new file or a removed file makes the project untrusted again", function()
    local home = t.tmpdir()
    local repo = git_repo(home)
    t.write(repo .. "/.banger/recipes/hi.lua", 'return { summary = "hi", run = function() print("hi") end }\n')
    t.write(repo .. "/.banger/recipes/other.lua", 'return { summary = "o", run = function() end }\n')
    t.eq(trust(home, repo).code, 0)
    t.eq(t.banger({ "hi" }, { home = home, cwd = repo }).stdout, "hi\n")

    local function refused(what)
      local r = t.banger({ "hi" }, { home = home, cwd = repo })
      t.eq(r.code, 77, what .. ": " .. r.stderr)
      t.contains(r.stderr, "has changed since you trusted it", what)
      t.eq(r.stdout, "", what)
      t.eq(trust(home, repo).code, 0)
    end
    t.write(repo .. "/.banger/recipes/hi.lua", 'return { summary = "hi", run = function() print("hI") end }\n')
    refused("one byte changed")
    t.write(repo .. "/.banger/recipes/added.lua", "-- new\n")
    refused("a file added")
    banger.fs.remove(repo .. "/.banger/recipes/other.lua")
    refused("a file removed")
    banger.fs.symlink("/etc/passwd", repo .. "/.banger/recipes/link.lua")
    refused("a symlink added")
    t.eq(t.banger({ "hi" }, { home = home, cwd = repo }).stdout, "hI\n")
    local link = t.banger({ "link" }, { home = home, cwd = repo })
    t.eq(link.code, 77, "a symlinked recipe is never loaded, even in a trusted project")
  end)

  it("--list, --revoke and --json", function()
    local home = t.tmpdir()
    local a, b = git_repo(home), home .. "/b"
    t.write(a .. "/banger.lua", "vm = { vcpus = 1 }\n")
    t.write(b .. "/banger.lua", "vm = { vcpus = 2 }\n")
    local j = t.banger({ "trust", "--json", a }, { home = home })
    t.eq(j.code, 0, j.stderr)
    local doc = banger.json.decode(j.stdout)
    t.eq(doc.root, a)
    t.eq(doc.trusted, true)
    t.eq(doc.files, { { path = "banger.lua", kind = "file", sha256 = banger.sys.sha256(t.read(a .. "/banger.lua")) } })
    t.eq(trust(home, b).code, 0)
    t.write(b .. "/banger.lua", "vm = { vcpus = 3 }\n")
    local list = banger.json.decode(t.banger({ "trust", "--list", "--json" }, { home = home }).stdout)
    t.eq(#list, 2)
    t.eq({ list[1].root, list[1].status }, { b, "changed" }, "sorted by root")
    t.eq({ list[2].root, list[2].status }, { a, "trusted" })
    local text = t.banger({ "trust", "--list" }, { home = home }).stdout
    t.contains(text, "STATUS")
    t.contains(text, b)
    local rv = trust(home, a, { "--revoke" })
    t.eq(rv.code, 0)
    t.contains(rv.stdout, "no longer trusted: " .. a)
    t.eq(#banger.json.decode(t.banger({ "trust", "--list", "--json" }, { home = home }).stdout), 1)
    t.contains(trust(home, a, { "--revoke" }).stdout, "was not trusted")
    local none = t.banger({ "trust", home .. "/nowhere" }, { home = home })
    t.eq(none.code, 1)
    t.contains(none.stderr, "is not in a project")
  end)

  it("cannot be overridden by the project it is about", function()
    local home = t.tmpdir()
    local repo = git_repo(home)
    t.write(repo .. "/.banger/recipes/trust.lua", 'return { summary = "fake", run = function() print("fake") end }\n')
    local r = trust(home, repo)
    t.eq(r.code, 0, r.stderr)
    t.not_contains(r.stdout, "fake\n")
    t.not_contains(t.banger({ "help" }, { home = home, cwd = repo }).stdout, "fake")
  end)

  it("an untrusted banger.lua with only VM settings is used as data", function()
    local home = t.tmpdir()
    local repo = git_repo(home)
    t.write(repo .. "/banger.lua", 'vm = { vcpus = 3, memory = "300MiB" }\n')
    t.write(repo .. "/file.txt", "x\n")
    banger.proc.run({ "git", "-C", repo, "add", "file.txt" })
    local r = t.banger({ "vm", "run", "--dry-run" }, { home = home, cwd = repo })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stdout, "file.txt")
    t.write(repo .. "/banger.lua", 'vm = { vcpus = 3, nat = true }\n')
    local nat = t.banger({ "vm", "run", "--dry-run" }, { home = home, cwd = repo })
    t.eq(nat.code, 77)
    t.contains(nat.stderr, repo .. "/banger.lua:1: vm.nat gives the VM outbound network access")
    t.eq(t.banger({ "vm", "run", "--dry-run", "--nat" }, { home = home, cwd = repo }).code, 0)
  end)

  it("an endless or greedy banger.lua cannot hang or exhaust banger", function()
    local home = t.tmpdir()
    local repo = git_repo(home)
    for _, text in ipairs({ "while true do end\n", "local t = {}\nwhile true do t[#t + 1] = {} end\n",
      "local s = 'x'\nwhile true do s = s .. s end\n" }) do
      t.write(repo .. "/banger.lua", text)
      local started = banger.sys.monotonic_ms()
      local r = t.banger({ "vm", "run", "--dry-run" }, { home = home, cwd = repo, timeout_ms = 30000 })
      t.eq(r.code, 77, r.stderr)
      t.truthy(r.stderr:find("instruction limit exceeded", 1, true) or r.stderr:find("MiB of memory", 1, true), r.stderr)
      t.truthy(banger.sys.monotonic_ms() - started < 30000)
    end
  end)
end)

describe("the user's recipe directory", function()
  local recipe = 'return { summary = "mine", run = function() print("mine") end }\n'

  it("is used when only its owner can write it", function()
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/recipes/mine.lua", recipe)
    local r = t.banger({ "mine" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.eq(r.stdout, "mine\n")
  end)

  it("is refused when group or world can write it, or it is someone else's", function()
    local home = t.tmpdir()
    local dir = home .. "/.config/banger/recipes"
    t.write(dir .. "/mine.lua", recipe)
    local cases = {
      { dir, "777", "writable by everyone" },
      { dir, "775", "writable by its group" },
      { dir .. "/mine.lua", "666", "writable by everyone" },
      { home .. "/.config/banger", "777", "writable by everyone" },
    }
    for _, c in ipairs(cases) do
      banger.fs.chmod(c[1], tonumber(c[2], 8))
      local r = t.banger({ "mine" }, { home = home })
      t.eq(r.code, 77, c[1] .. " " .. c[2] .. ": " .. r.stderr)
      t.contains(r.stderr, c[3])
      t.eq(r.stdout, "")
      local h = t.banger({ "help" }, { home = home })
      if c[1]:match("%.lua$") then
        t.contains(h.stdout, "(cannot load: refusing your recipe " .. c[1])
      else
        t.contains(h.stdout, "note: your recipes in " .. dir .. " are ignored")
        t.not_contains(h.stdout, "mine")
      end
      banger.fs.chmod(c[1], tonumber(c[1]:match("%.lua$") and "644" or "755", 8))
    end
    t.eq(banger.proc.run({ "chown", "65534", dir .. "/mine.lua" }).code, 0)
    local foreign = t.banger({ "mine" }, { home = home })
    t.eq(foreign.code, 77)
    t.contains(foreign.stderr, "belongs to uid 65534")
  end)
end)
