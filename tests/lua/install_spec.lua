-- An installed banger finds its bundled stdlib and recipes beside itself.
describe("installed layout", function()
  it("cmake --install gives a banger that uses share/banger/lua", function()
    local prefix = t.tmpdir()
    local build = assert(os.getenv("BANGER_BUILD_DIR"), "BANGER_BUILD_DIR")
    local r = banger.proc.run({ "cmake", "--install", build, "--prefix", prefix, "--component", "Unspecified" })
    t.eq(r.code, 0, r.stderr)
    local bin = prefix .. "/bin/banger"
    t.truthy(banger.fs.exists(prefix .. "/share/banger/lua/stdlib/banger/main.lua"), "stdlib installed")
    -- A recipe that only exists in the installed tree proves which tree is used.
    t.write(prefix .. "/share/banger/lua/recipes/probe.lua",
      'return { summary = "probe", run = function() print("installed tree") end }\n')
    local home = t.tmpdir()
    local out = banger.proc.run({ bin, "probe", env = t.env(home), cwd = home })
    t.eq(out.code, 0, out.stderr)
    t.eq(out.stdout, "installed tree\n")
    local list = banger.proc.run({ bin, "vm", "list", "--json", env = t.env(home), cwd = home })
    t.eq(list.stdout, "[]\n")
    -- the completion scripts are installed with the stdlib
    local bash = banger.proc.run({ bin, "completion", "bash", env = t.env(home), cwd = home })
    t.eq(bash.code, 0, bash.stderr)
    t.contains(bash.stdout, "complete -F _banger banger")
  end)
end)

describe("logging", function()
  it("writes JSON lines to the per-user log file, 0600", function()
    local home = t.tmpdir()
    local r = t.banger({ "nosuch" }, { home = home })
    t.eq(r.code, 2)
    local path = home .. "/.local/state/banger/banger.log"
    t.eq(banger.fs.stat(path).mode, tonumber("600", 8))
    local last
    for line in t.read(path):gmatch("[^\n]+") do
      last = banger.json.decode(line)
    end
    t.eq(last.level, "error")
    t.eq(last.component, "main")
    t.contains(last.msg, "unknown command 'nosuch'")
    t.eq(last.code, "ENOENT")
    t.truthy(math.type(last.pid) == "integer")
  end)
end)
