-- The Lua test runner: runs one spec file inside the real banger binary, so
-- specs exercise the real bindings. Prints one line per test and a closing
-- "N passed, N failed, N skipped" line; exits 1 on any failure, else 77
-- when a test was skipped (ctest's SKIP_RETURN_CODE: reported as skipped,
-- never as passed), else 0. A skip always says why.
--
-- After each test, and once more after the whole file, the runner fails on
-- anything the test left behind (tests/lua/leaks.lua: processes, taps, NAT
-- rules, sockets, network namespaces of its own), naming each object.
--
-- A spec uses describe/it/pending/before_each/after_each and the helpers in
-- tests/lua/helpers.lua (available as the global `t`).
local spec_path = arg[1]
if not spec_path then
  io.stderr:write("usage: banger run tests/lua/runner.lua SPEC.lua\n")
  return 2
end

local source_dir = os.getenv("BANGER_SOURCE_DIR") or "."
local helpers = assert(loadfile(source_dir .. "/tests/lua/helpers.lua", "t", _ENV))()

local root = { name = nil, children = {}, before = {}, after = {} }
local current = root
local passed, failed, skipped = 0, 0, 0

local env = setmetatable({ banger = banger, t = helpers }, { __index = _G })

function env.describe(name, fn)
  local node = { name = name, children = {}, before = {}, after = {}, parent = current }
  table.insert(current.children, node)
  local saved = current
  current = node
  fn()
  current = saved
end

function env.it(name, fn)
  table.insert(current.children, { name = name, fn = fn, parent = current })
end

function env.pending(name, reason)
  assert(type(reason) == "string" and reason ~= "", "pending(" .. name .. "): say why the test does not run")
  table.insert(current.children, { name = name, pending = reason, parent = current })
end

function env.before_each(fn)
  table.insert(current.before, fn)
end

function env.after_each(fn)
  table.insert(current.after, fn)
end

local chunk, err = loadfile(spec_path, "t", env)
if not chunk then
  io.stderr:write(err, "\n")
  return 1
end
chunk()

local function full_name(node)
  local parts = {}
  while node and node.name do
    table.insert(parts, 1, node.name)
    node = node.parent
  end
  return table.concat(parts, " / ")
end

local function hooks(node, field)
  local chain = {}
  while node do
    table.insert(chain, 1, node)
    node = node.parent
  end
  local out = {}
  for _, n in ipairs(chain) do
    for _, h in ipairs(n[field]) do
      out[#out + 1] = h
    end
  end
  return out
end

local function message_of(e)
  if type(e) == "table" and e.message then
    return (e.code and (e.code .. ": ") or "") .. tostring(e.message)
  end
  return tostring(e)
end

local function run_test(node)
  local name = full_name(node)
  local skip = node.pending
  if not skip and helpers._requires_root and banger.sys.geteuid() ~= 0 then
    skip = "needs root: " .. helpers._requires_root
  end
  if skip then
    skipped = skipped + 1
    print("skip - " .. name .. " # SKIP " .. skip)
    return
  end
  helpers._begin(name)
  local ok, e = xpcall(function()
    for _, h in ipairs(hooks(node.parent, "before")) do
      h()
    end
    node.fn()
  end, function(x)
    return message_of(x) .. "\n" .. debug.traceback("", 2)
  end)
  local after = hooks(node.parent, "after")
  for i = #after, 1, -1 do
    local aok, ae = pcall(after[i])
    if not aok and ok then
      ok, e = false, "after_each: " .. message_of(ae)
    end
  end
  local leak = helpers._finish()
  if ok and leak then
    ok, e = false, leak
  end
  if ok then
    passed = passed + 1
    print("ok - " .. name)
  else
    failed = failed + 1
    print("not ok - " .. name)
    io.stdout:write("    ", (tostring(e):gsub("\n", "\n    ")), "\n")
  end
end

local function walk(node)
  for _, child in ipairs(node.children) do
    if child.children then
      walk(child)
    else
      run_test(child)
    end
  end
end

walk(root)
local leak = helpers._finish_file()
if leak then
  failed = failed + 1
  print("not ok - " .. spec_path .. " (after its last test)")
  io.stdout:write("    ", (leak:gsub("\n", "\n    ")), "\n")
end
print(string.format("%d passed, %d failed, %d skipped", passed, failed, skipped))
if failed > 0 then
  return 1
end
return skipped > 0 and 77 or 0
