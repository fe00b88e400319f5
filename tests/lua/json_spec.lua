-- The Lua <-> JSON bridge (engine/lua/json_value.cpp) on the inputs that once
-- corrupted memory: deep nesting (a segfault at ~34 objects or ~70 arrays),
-- cyclic tables (an abort, or under pcall a process spinning at 100% CPU).
-- Each crash case also runs in a child process, whose exit must be clean.
local json = banger.json

local function nest(n, as_array)
  local root = {}
  local cur = root
  for _ = 1, n - 1 do
    local nxt = {}
    if as_array then
      cur[1] = nxt
    else
      cur.k = nxt
    end
    cur = nxt
  end
  if as_array then
    cur[1] = true
  else
    cur.k = true
  end
  return root
end

-- Runs `code` in a child banger; returns {code, stdout, stderr}.
local function child(code)
  local dir = t.tmpdir()
  t.write(dir .. "/s.lua", code)
  return t.banger({ "run", dir .. "/s.lua" }, { home = dir, timeout_ms = 20000 })
end

describe("json bridge", function()
  it("encodes nesting up to 200 deep, objects and arrays, and refuses 201 with the caller's line", function()
    for _, as_array in ipairs({ false, true }) do
      for _, n in ipairs({ 34, 35, 70, 71, 199, 200 }) do
        local text = json.encode(nest(n, as_array))
        t.eq(select(2, text:gsub(as_array and "%[" or "{", "")), n)
      end
      local ok, err = pcall(json.encode, nest(201, as_array))
      t.falsy(ok)
      t.contains(err, "json_spec.lua:")
      t.contains(err, "json: nesting deeper than 200")
    end
  end)

  it("refuses cyclic tables, direct and indirect, and keeps shared ones", function()
    local direct = {}
    direct.self = direct
    local a, b = {}, {}
    a[1], b[1] = b, a
    for _, v in ipairs({ direct, a, { x = { y = direct } } }) do
      local ok, err = pcall(json.encode, v)
      t.falsy(ok)
      t.contains(err, "json: cannot encode a cyclic table")
    end
    local shared = { n = 1 }
    t.eq(json.encode({ shared, shared, { shared } }), '[{"n":1},{"n":1},[{"n":1}]]')
  end)

  it("a cycle or deep table in a real process: a clean error, no abort, no spinning", function()
    local r = child("local c = {}; c[1] = c; banger.json.encode(c)\n")
    t.eq(r.code, 1, r.stderr)
    t.contains(r.stderr, "cannot encode a cyclic table")
    r = child([[
local c = { k = {} }; c.k.back = c
for _ = 1, 3 do print(pcall(banger.json.encode, c)) end
local deep = {}; local cur = deep
for _ = 1, 5000 do cur.k = {}; cur = cur.k end
print(pcall(banger.json.encode, deep))
print("done")
]])
    t.eq(r.code, 0, r.stderr)
    t.eq(select(2, r.stdout:gsub("cyclic table", "")), 3)
    t.contains(r.stdout, "nesting deeper than 200")
    t.contains(r.stdout, "done\n")
  end)

  it("decodes up to 200 deep and refuses deeper documents, however deep", function()
    t.eq(json.encode(json.decode(string.rep("[", 200) .. string.rep("]", 200))),
      string.rep("[", 200) .. string.rep("]", 200))
    for _, doc in ipairs({ string.rep("[", 201) .. string.rep("]", 201), string.rep('{"a":', 201) .. "1" .. string.rep("}", 201),
      string.rep("[", 1000000) }) do
      local ok, err = pcall(json.decode, doc)
      t.falsy(ok)
      t.contains(tostring(err), "json: nesting deeper than 200")
    end
    t.raises(function() json.decode("[1,") end, "invalid document")
  end)

  it("reads tables raw: metamethods never run during encoding", function()
    local ran = false
    local mt = {
      __index = function() ran = true; error("boom") end,
      __len = function() ran = true; error("len") end,
      __pairs = function() ran = true; error("pairs") end,
    }
    t.eq(json.encode(setmetatable({ 1, 2 }, mt)), "[1,2]")
    t.eq(json.encode(setmetatable({}, { __jsontype = "array", __len = mt.__len })), "[]")
    t.falsy(ran)
  end)

  it("keeps keys and strings with NUL bytes", function()
    local v = json.decode(json.encode({ ["a\0b"] = "x\0y" }))
    t.eq(v["a\0b"], "x\0y")
  end)
end)
