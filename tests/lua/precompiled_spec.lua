-- The stdlib is compiled to bytecode at build time (engine/lua/precompiled.hpp):
-- a module loads from it only while its file is the one it was built from,
-- under the file's own name, so errors and tracebacks read as before and an
-- edited file is never shadowed by stale bytecode.
local searcher = package.searchers[2]

local function line_of(text, needle)
  local n = 1
  for line in (text .. "\n"):gmatch("(.-)\n") do
    if line:find(needle, 1, true) then
      return n
    end
    n = n + 1
  end
  error("no line with " .. needle)
end

-- Runs a script in a child banger whose stdlib is `lua_dir`; returns its stdout.
local function run_with(lua_dir, script)
  local r = t.banger({ "run", "-" }, { input = script, env = { BANGER_LUA_DIR = lua_dir } })
  t.eq(r.code, 0, r.stderr)
  return r.stdout
end

describe("precompiled stdlib", function()
  it("loads a stdlib module from bytecode, under its file's path and lines", function()
    local path = banger.sys.lua_dir() .. "/stdlib/banger/vms.lua"
    local loader, found = searcher("banger.vms")
    t.eq(type(loader), "function", "the precompiled searcher has banger.vms")
    t.eq(found, path)
    local info = debug.getinfo(require("banger.vms").list, "S")
    t.eq(info.source, "@" .. path)
    t.eq(info.linedefined, line_of(t.read(path), "function M.list()"))
  end)

  it("declines what it has no chunk for, leaving require's message as it was", function()
    t.eq(select("#", searcher("banger.no_such_module")), 0)
    local ok, msg = pcall(require, "banger.no_such_module")
    t.falsy(ok)
    t.not_contains(msg, "precompiled")
    t.contains(msg, "no file '" .. banger.sys.lua_dir() .. "/stdlib/banger/no_such_module.lua'")
  end)

  it("an error raised inside a precompiled module names its file and line", function()
    local path = banger.sys.lua_dir() .. "/stdlib/banger/vms.lua"
    local out = run_with(banger.sys.lua_dir(), 'print(select(2, pcall(require("banger.vms").dir, nil)))')
    t.contains(out, path .. ":" .. line_of(t.read(path), 'return state.layout().state .. "/vms/" .. id') .. ":")
    t.contains(out, "attempt to concatenate")
  end)

  it("an edited stdlib file is compiled from its text, never shadowed by the build's bytecode", function()
    local copy = t.tmpdir() .. "/lua"
    t.eq(banger.proc.run({ "cp", "-r", banger.sys.lua_dir(), copy }).code, 0)
    local units = copy .. "/stdlib/banger/units.lua"
    local text = t.read(units)
    t.write(units, (text:gsub("\nreturn M%s*$", "\nM.edited = true\nreturn M\n")))
    local out = run_with(copy, [[
      local s = package.searchers[2]
      print(require("banger.units").edited, select("#", s("banger.units")), (select(2, s("banger.vms"))))
      print(debug.getinfo(require("banger.vms").list, "S").source)
    ]])
    t.eq(out, "true\t0\t" .. copy .. "/stdlib/banger/vms.lua\n@" .. copy .. "/stdlib/banger/vms.lua\n")
  end)
end)
