-- `banger run` and `banger repl`: scripts with banger's API, as a user meets them.

local function script(home, name, text)
  local path = home .. "/" .. name
  t.write(path, text)
  return path
end

describe("os.exit in a script", function()
  it("keeps Lua's meaning of its argument", function()
    local home = t.tmpdir()
    for _, c in ipairs({ { "os.exit(true)", 0 }, { "os.exit(false)", 1 }, { "os.exit()", 0 }, { "os.exit(3)", 3 },
      { "os.exit(0)", 0 } }) do
      local r = t.banger({ "run", script(home, "exit.lua", c[1] .. "\n") }, { home = home })
      t.eq(r.code, c[2], c[1] .. ": " .. r.stderr)
      t.eq(r.stderr, "", c[1])
    end
    local bad = t.banger({ "run", script(home, "bad.lua", "os.exit(1.5)\n") }, { home = home })
    t.eq(bad.code, 1)
    t.contains(bad.stderr, "bad argument #1 to 'exit'")
  end)

  it("runs <close> handlers before exiting", function()
    local home = t.tmpdir()
    local r = t.banger({ "run", script(home, "c.lua", [[
local x <close> = setmetatable({}, { __close = function() io.stdout:write("closed\n") end })
os.exit(false)
]]) }, { home = home })
    t.eq(r.code, 1)
    t.eq(r.stdout, "closed\n")
  end)
end)

describe("banger run", function()
  it("without a script and without a terminal points to a help that works", function()
    local home = t.tmpdir()
    local r = t.banger({ "run" }, { home = home, input = "" })
    t.eq(r.code, 2)
    t.contains(r.stderr, "see 'banger run --help'")
    local h = t.banger({ "run", "--help" }, { home = home })
    t.eq(h.code, 0, h.stderr)
    t.contains(h.stdout, "Usage: banger run SCRIPT.lua [args...]")
    t.eq(t.banger({ "help", "run" }, { home = home }).stdout, h.stdout)
  end)

  it("'-' reads the script from standard input, with its arguments", function()
    local home = t.tmpdir()
    local r = t.banger({ "run", "-", "a", "b" }, { home = home,
      input = "print(arg[0], banger.units.format_bytes(2048), ...)\nreturn 4\n" })
    t.eq(r.code, 4, r.stderr)
    t.eq(r.stdout, "-\t2.0 KiB\ta\tb\n")
  end)

  it("require finds modules next to the script, never instead of banger's own", function()
    local home = t.tmpdir()
    local dir = home .. "/scripts"
    script(dir, "helper.lua", "return { twice = function(x) return 2 * x end }\n")
    script(dir .. "/banger", "units.lua", "return { shadowed = true }\n")
    local main = script(dir, "main.lua", [[
local helper = require("helper")
local units = require("banger.units")
print(helper.twice(21), units.shadowed == nil and type(units.parse_size))
]])
    local r = t.banger({ "run", main }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.eq(r.stdout, "42\tfunction\n")
  end)

  it("a missing script is one clear line", function()
    local r = t.banger({ "run", "/nonexistent/x.lua" })
    t.eq(r.code, 66)
    t.contains(r.stderr, "banger: /nonexistent/x.lua: No such file or directory")
  end)
end)

describe("banger repl", function()
  it("prints expressions, runs statements, continues unfinished chunks, survives errors", function()
    local home = t.tmpdir()
    local r = t.banger({ "repl" }, { home = home, input = table.concat({
      "1 + 1",
      "x = 20",
      "function f(a)",
      "  return a + x",
      "end",
      "f(1), 'two'",
      "error('boom')",
      "nil + 1 +",
      "1",
      "banger.units.parse_size('1GiB')",
      "",
    }, "\n") })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stdout, "> 2\n")
    t.contains(r.stdout, "21\t\"two\"\n")
    t.contains(r.stdout, "1073741824\n")
    t.contains(r.stderr, "boom")
    t.contains(r.stderr, "attempt to perform arithmetic on a nil value")
  end)

  it("os.exit leaves the prompt with its status", function()
    local r = t.banger({ "repl" }, { input = "os.exit(5)\nprint('not reached')\n" })
    t.eq(r.code, 5)
    t.not_contains(r.stdout, "not reached")
  end)
end)
