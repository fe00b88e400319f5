-- docs/lua-api.md and docs/lua-api/*.md against the running binary, like luv's doc
-- coverage check: every public stdlib function and field, every native and
-- every handle method is documented; nothing documented is missing from
-- the code; every example runs; lua/types/banger.lua is what the docs
-- generate.
local api_doc = assert(loadfile(t.source_dir() .. "/tests/lua/api_doc.lua", "t", _ENV))()

-- Handle types that no native makes when its module loads: their metatable
-- appears with the first handle, so their methods are read from the source.
local lazy_handles = {
  ["banger.priv.fd"] = { sources = { "engine/lua/fd_handle.hpp", "engine/lua/fd_handle.cpp" }, methods = { "close", "fileno" } },
}

-- A stdlib module's public names: keys without a leading underscore.
local function stdlib_modules()
  local mods = {}
  for _, f in ipairs(banger.fs.list(t.source_dir() .. "/lua/stdlib/banger")) do
    local name = f:match("^(.-)%.lua$")
    if name and name ~= "init" then
      mods[#mods + 1] = name
    end
  end
  table.sort(mods)
  return mods
end

local function public_keys(tbl)
  local keys = {}
  for k in pairs(tbl) do
    if type(k) == "string" and not k:match("^_") then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys)
  return keys
end

-- Every name the code exposes: { [name] = "function" | "value" }.
local function actual_surface()
  local names = {}
  for _, mod in ipairs(stdlib_modules()) do
    local m = require("banger." .. mod)
    if type(m) == "table" then
      for _, k in ipairs(public_keys(m)) do
        names["banger." .. mod .. "." .. k] = type(m[k]) == "function" and "function" or "value"
      end
    end
  end
  local natives = {}
  for k in pairs(package.preload) do
    if k:match("^banger%.native%.") then
      natives[#natives + 1] = k
    end
  end
  table.sort(natives)
  for _, k in ipairs(natives) do
    local m = require(k)
    for _, f in ipairs(public_keys(m)) do
      names[k .. "." .. f] = type(m[f]) == "function" and "function" or "value"
    end
  end
  -- Handle metatables (luaL_newmetatable: __name, methods in __index, __close).
  for k, v in pairs(debug.getregistry()) do
    if type(k) == "string" and k:match("^banger%.") and type(v) == "table" and v.__name == k and v.__close
        and type(v.__index) == "table" then
      for _, m in ipairs(public_keys(v.__index)) do
        names[k .. ":" .. m] = "function"
      end
    end
  end
  for name, lazy in pairs(lazy_handles) do
    for _, m in ipairs(lazy.methods) do
      names[name .. ":" .. m] = "function"
    end
  end
  return names
end

local function listing(title, items)
  table.sort(items)
  return title .. " (" .. #items .. "):\n  " .. table.concat(items, "\n  ")
end

describe("docs/lua-api.md", function()
  it("parses: every heading is one typed signature, none twice", function()
    local doc = api_doc.parse()
    t.eq(doc.errors, {}, "malformed API headings")
    t.truthy(#doc.entries > 0, "no entries found")
  end)

  it("documents every public stdlib function, native and handle method", function()
    local doc = api_doc.parse()
    local missing = {}
    for name in pairs(actual_surface()) do
      if not doc.by_name[name] and not doc.internal[name] then
        missing[#missing + 1] = name
      end
    end
    t.truthy(#missing == 0, listing("undocumented (add a heading to docs/lua-api/, or list it under ## Internal)", missing))
  end)

  it("documents nothing that does not exist", function()
    local doc = api_doc.parse()
    local surface = actual_surface()
    local stale, wrong_kind = {}, {}
    for _, e in ipairs(doc.entries) do
      if not surface[e.name] then
        stale[#stale + 1] = e.name .. " (" .. e.file .. ":" .. e.line .. ")"
      elseif surface[e.name] ~= e.kind then
        wrong_kind[#wrong_kind + 1] = e.name .. " is a " .. surface[e.name] .. ", documented as a " .. e.kind
      end
    end
    for name, where in pairs(doc.internal) do
      if not surface[name] then
        stale[#stale + 1] = name .. " (internal, " .. where.file .. ":" .. where.line .. ")"
      elseif doc.by_name[name] then
        stale[#stale + 1] = name .. " is both documented and listed as internal"
      end
    end
    t.truthy(#stale == 0, listing("documented but not in the code", stale))
    t.truthy(#wrong_kind == 0, listing("documented as the wrong kind", wrong_kind))
  end)

  it("names only types it defines: modules, handle types and ## Types", function()
    local doc = api_doc.parse()
    local known = {}
    for name in pairs(doc.type_names) do
      known[name] = true
    end
    for _, e in ipairs(doc.entries) do
      known[e.name:match("^(.*)[.:][%w_]+$")] = true -- its module or handle type
    end
    local dangling = {}
    for _, e in ipairs(doc.entries) do
      local types = { e.type }
      for _, p in ipairs(e.params or {}) do
        types[#types + 1] = p.type
      end
      for _, r in ipairs(e.returns or {}) do
        types[#types + 1] = r
      end
      for _, ty in ipairs(types) do
        for name in ty:gmatch("banger%.[%w_.]*[%w_]") do
          if not known[name] then
            dangling[#dangling + 1] = name .. " in " .. e.name .. " (" .. e.file .. ":" .. e.line .. ")"
          end
        end
      end
    end
    t.truthy(#dangling == 0, listing("types used but not defined", dangling))
  end)

  it("reads lazily made handle types' methods from their source", function()
    for name, lazy in pairs(lazy_handles) do
      t.eq(debug.getregistry()[name], nil, name .. " now exists at load: drop it from lazy_handles")
      local src = ""
      for _, f in ipairs(lazy.sources) do
        src = src .. t.read(t.source_dir() .. "/" .. f)
      end
      t.contains(src, '"' .. name .. '"')
      for _, m in ipairs(lazy.methods) do
        if m ~= "close" then
          t.contains(src, '{"' .. m .. '",', name .. ":" .. m)
        end
      end
    end
  end)

  it("runs every example in a fresh home", function()
    local doc = api_doc.parse()
    t.truthy(#doc.examples > 0, "no examples")
    local failures = {}
    local compiled_only = 0
    -- A few banger processes at once: each is mostly start-up and waiting.
    local running, parallel = {}, 4
    local base = t.tmpdir() -- one home per example below it
    local function finish(job)
      local st = job.child:wait(120000)
      if st.code ~= 0 then
        failures[#failures + 1] = string.format("%s:%d (%s): exit %d: %s", job.ex.file, job.ex.line,
          job.ex.entry or "-", st.code, (t.read(job.stderr):gsub("\n", " | ")))
      end
    end
    for i, ex in ipairs(doc.examples) do
      if ex.needs then
        local _, err = load(ex.code, "=" .. ex.file .. ":" .. ex.line, "t", {})
        if err then
          failures[#failures + 1] = string.format("%s:%d (%s): does not compile: %s", ex.file, ex.line, ex.entry or "-", err)
        end
        compiled_only = compiled_only + 1
      else
        local home = string.format("%s/%03d", base, i)
        banger.fs.mkdir(home .. "/tmp", 448, true)
        t.write(home .. "/example.lua", ex.code)
        local env = t.env(home, { TMPDIR = home .. "/tmp" })
        local child = t.spawn({ t.bin(), "run", home .. "/example.lua", env = env, cwd = home, stdin = "null",
          stdout = "null", stderr = { file = home .. "/stderr", append = false } })
        running[#running + 1] = { child = child, ex = ex, stderr = home .. "/stderr", index = i }
        if #running >= parallel then
          finish(table.remove(running, 1))
        end
      end
    end
    for _, job in ipairs(running) do
      finish(job)
    end
    -- Visible in the log: how many examples need a VM or a registry and
    -- were only compiled here (their flows run in the e2e specs they name).
    print(string.format("# %d examples run, %d compiled only (they name what they need)", #doc.examples - compiled_only,
      compiled_only))
    t.truthy(#failures == 0, listing("examples that failed", failures))
  end)

  it("lua/types/ is what the docs generate (scripts/api-types.lua)", function()
    local out = t.tmpdir() .. "/types"
    local r = t.banger({ "run", t.source_dir() .. "/scripts/api-types.lua", out },
      { env = { BANGER_SOURCE_DIR = t.source_dir() } })
    t.eq(r.code, 0, r.stderr)
    local committed = t.source_dir() .. "/lua/types"
    local stale = {}
    for _, name in ipairs(banger.fs.list(out)) do
      assert(load(t.read(out .. "/" .. name), "=" .. name, "t", {}))
      if not banger.fs.exists(committed .. "/" .. name) or t.read(committed .. "/" .. name) ~= t.read(out .. "/" .. name) then
        stale[#stale + 1] = name
      end
    end
    for _, name in ipairs(banger.fs.list(committed)) do
      if not banger.fs.exists(out .. "/" .. name) then
        stale[#stale + 1] = name .. " (no longer generated)"
      end
    end
    t.truthy(#stale == 0, listing("lua/types/ is out of date: rm lua/types/*.lua && "
      .. "BANGER_SOURCE_DIR=. banger run scripts/api-types.lua lua/types", stale))
  end)
end)
