-- banger run examples/hello.lua [name]
-- A script gets the same `banger` API as the bundled recipes.
local who = arg[1] or os.getenv("USER") or "world"
local build = banger.sys.build()
local layout = banger.state.layout()

print(string.format("hello %s, from Lua inside banger %s (%s)", who, build.version, _VERSION))
print("state lives in " .. layout.state)
print(string.format("%d VM(s) known", #banger.state.db():query("SELECT name FROM vms")))
