-- The command line as users see it: dispatch, errors, overrides, help.
describe("banger dispatch", function()
  it("vm list --json prints [] on empty state", function()
    local r = t.banger({ "vm", "list", "--json" })
    t.eq(r.code, 0, r.stderr)
    t.eq(r.stdout, "[]\n")
  end)

  it("accepts the ls alias", function()
    local r = t.banger({ "vm", "ls", "--json" })
    t.eq(r.code, 0, r.stderr)
    t.eq(r.stdout, "[]\n")
  end)

  it("an unknown command exits non-zero with one line and no traceback", function()
    local r = t.banger({ "nosuch" })
    t.eq(r.code, 2)
    t.eq(r.stdout, "")
    t.eq(r.stderr, "banger: unknown command 'nosuch' (see 'banger help')\n")
  end)

  it("an unknown flag is a usage error naming the command", function()
    local r = t.banger({ "vm", "list", "--bogus" })
    t.eq(r.code, 2)
    t.eq(r.stderr, "banger: unknown flag --bogus (see 'banger vm list --help')\n")
  end)

  it("help lists commands with the recipes' summaries", function()
    local r = t.banger({ "help" })
    t.eq(r.code, 0)
    t.contains(r.stdout, "vm list")
    t.contains(r.stdout, "list VMs")
    t.contains(r.stdout, "version")
  end)

  it("<cmd> --help shows the recipe's flags", function()
    local r = t.banger({ "vm", "list", "--help" })
    t.eq(r.code, 0)
    t.contains(r.stdout, "Usage: banger vm list [flags]")
    t.contains(r.stdout, "--json")
    local r2 = t.banger({ "help", "vm", "list" })
    t.eq(r2.stdout, r.stdout)
  end)

  it("version prints version, commit and build time, also as JSON", function()
    local r = t.banger({ "version", "--json" })
    t.eq(r.code, 0, r.stderr)
    local v = banger.json.decode(r.stdout)
    t.truthy(v.version:match("^%d+%.%d+%.%d+$"), "version " .. tostring(v.version))
    t.truthy(v.commit ~= "", "commit")
    t.truthy(v.built_at:match("^%d%d%d%d%-%d%d%-%d%dT"), "built_at " .. tostring(v.built_at))
    local plain = t.banger({ "version" })
    t.contains(plain.stdout, "banger " .. v.version)
  end)

  it("banger run runs a script with arguments and the full API", function()
    local r = t.banger({ "run", t.source_dir() .. "/examples/hello.lua", "world" })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stdout, "hello")
  end)

  it("a script's return value and os.exit become the exit code", function()
    local home = t.tmpdir()
    t.write(home .. "/ret.lua", "return 5\n")
    t.write(home .. "/exit.lua", "os.exit(9)\n")
    t.eq(t.banger({ "run", home .. "/ret.lua" }, { home = home }).code, 5)
    t.eq(t.banger({ "run", home .. "/exit.lua" }, { home = home }).code, 9)
  end)

  it("prints a Lua traceback only with --debug", function()
    local home = t.tmpdir()
    t.write(home .. "/boom.lua", "local function f() error('kaboom') end\nf()\n")
    local r = t.banger({ "run", home .. "/boom.lua" }, { home = home })
    t.eq(r.code, 1)
    t.contains(r.stderr, "kaboom")
    t.not_contains(r.stderr, "stack traceback")
    local d = t.banger({ "--debug", "run", home .. "/boom.lua" }, { home = home })
    t.eq(d.code, 1)
    t.contains(d.stderr, "stack traceback")
  end)

  it("structured errors from natives reach the user as one line", function()
    local home = t.tmpdir()
    t.write(home .. "/missing.lua", "banger.fs.read('/nonexistent/file')\n")
    local r = t.banger({ "run", home .. "/missing.lua" }, { home = home })
    t.eq(r.code, 1)
    t.eq(r.stderr, "banger: open: No such file or directory: /nonexistent/file\n")
  end)
end)

describe("recipe overrides", function()
  local override = [[
return {
  summary = "list VMs (project override)",
  json = true,
  run = function(opts) print("project list") end,
}
]]

  it("./.banger/recipes/vm/list.lua replaces the bundled vm list", function()
    local home = t.tmpdir()
    local project = home .. "/project"
    t.write(project .. "/.banger/recipes/vm/list.lua", override)
    t.eq(t.banger({ "trust" }, { home = home, cwd = project }).code, 0)
    local r = t.banger({ "vm", "list" }, { home = home, cwd = project })
    t.eq(r.code, 0, r.stderr)
    t.eq(r.stdout, "project list\n")
    local h = t.banger({ "help" }, { home = home, cwd = project })
    t.contains(h.stdout, "list VMs (project override) [project]")
    -- outside the project the bundled recipe is back
    local b = t.banger({ "vm", "list", "--json" }, { home = home })
    t.eq(b.stdout, "[]\n")
  end)

  it("$XDG_CONFIG_HOME/banger/recipes comes after the project", function()
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/recipes/vm/list.lua", (override:gsub("project list", "user list")))
    t.eq(t.banger({ "vm", "list" }, { home = home }).stdout, "user list\n")
    t.write(home .. "/p/.banger/recipes/vm/list.lua", override)
    t.eq(t.banger({ "trust" }, { home = home, cwd = home .. "/p" }).code, 0)
    t.eq(t.banger({ "vm", "list" }, { home = home, cwd = home .. "/p" }).stdout, "project list\n")
  end)

  it("a user recipe adds a new command group", function()
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/recipes/greet/hello.lua", [[
return {
  summary = "say hello",
  args = { { "who", required = true } },
  run = function(opts) print("hello " .. opts.who) return 3 end,
}
]])
    local r = t.banger({ "greet", "hello", "you" }, { home = home })
    t.eq(r.stdout, "hello you\n")
    t.eq(r.code, 3)
    local m = t.banger({ "greet", "hello" }, { home = home })
    t.eq(m.code, 2)
    t.contains(m.stderr, "missing argument <who>")
  end)

  it("a broken recipe is reported, not a crash", function()
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/recipes/bad.lua", "return {\n")
    local r = t.banger({ "bad" }, { home = home })
    t.eq(r.code, 1)
    t.contains(r.stderr, "bad.lua:2:")
  end)

  it("recipes cannot leak globals into each other", function()
    local home = t.tmpdir()
    t.write(home .. "/g.lua", "leaked = 1\nreturn rawget(_G, 'leaked') == nil and 0 or 1\n")
    t.eq(t.banger({ "run", home .. "/g.lua" }, { home = home }).code, 0)
  end)
end)

describe("interrupts", function()
  it("Ctrl-C runs <close> cleanups and exits 130", function()
    local home = t.tmpdir()
    local marker, ready = home .. "/cleaned", home .. "/ready"
    t.write(home .. "/slow.lua", string.format([[
local guard <close> = setmetatable({}, { __close = function()
  local f = assert(io.open(%q, "w")); f:write("yes"); f:close()
end })
local f = assert(io.open(%q, "w")); f:close()
banger.sys.sleep_ms(30000)
]], marker, ready))
    local child = t.spawn({ t.bin(), "run", home .. "/slow.lua", env = t.env(home), stderr = "pipe" })
    t.wait_for(function() return banger.fs.exists(ready) end, 30000, "the script to start")
    child:kill(2)
    local st = child:wait(10000)
    t.eq(st.code, 130)
    t.eq(t.read(marker), "yes")
    t.eq(child:read_all("stderr"), "banger: interrupted\n")
  end)
end)
