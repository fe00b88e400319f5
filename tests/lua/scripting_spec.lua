-- docs/scripting.md's worked example is real: the page quotes the example
-- file verbatim and the steps it describes work.
describe("docs/scripting.md worked example", function()
  local example = t.read(t.source_dir() .. "/examples/recipes/vm/count.lua")

  it("the page shows the example file verbatim", function()
    t.contains(t.read(t.source_dir() .. "/docs/scripting.md"), "```lua\n" .. example .. "```")
  end)

  it("runs as a project recipe", function()
    local home = t.tmpdir()
    local project = home .. "/proj"
    t.write(project .. "/.banger/recipes/vm/count.lua", example)
    t.eq(t.banger({ "trust" }, { home = home, cwd = project }).code, 0)
    local r = t.banger({ "vm", "count", "--json" }, { home = home, cwd = project })
    t.eq(r.code, 0, r.stderr)
    t.eq(banger.json.decode(r.stdout).total, 0)
    local h = t.banger({ "help" }, { home = home, cwd = project })
    t.contains(h.stdout, "count VMs, optionally in one state [project]")
    local help = t.banger({ "vm", "count", "--help" }, { home = home, cwd = project })
    t.contains(help.stdout, "--state VALUE")
  end)

  it("counts rows written to the state store", function()
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/recipes/vm/count.lua", example)
    t.eq(t.banger({ "run", t.source_dir() .. "/tests/lua/fixtures/store_writer.lua", "1", "3" }, { home = home }).code, 0)
    local r = t.banger({ "vm", "count", "--json", "--state", "created" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.eq(banger.json.decode(r.stdout).total, 3)
    local plain = t.banger({ "vm", "count" }, { home = home })
    t.contains(plain.stdout, "3 VM(s)")
  end)
end)
