-- Helpers for Lua specs (the global `t`): assertions that say what differed,
-- temporary directories removed after each test, and a way to run the real
-- banger binary in an isolated HOME/XDG environment.
local fs = banger.fs
local proc = banger.proc
local json = banger.json

local leaks = assert(loadfile((os.getenv("BANGER_SOURCE_DIR") or ".") .. "/tests/lua/leaks.lua", "t", _ENV))()

local t = {}
local tmpdirs = {}
local children = {}
-- The banger homes a test used, and the VM ids they held: what the leak
-- census attributes taps and NAT rules by.
local homes, vm_ids = {}, {}
-- Every temporary directory of the file's tests, and the test that made it.
local file_dirs, dir_test = {}, {}
local current_test

local function show(v)
  if type(v) == "string" then
    return string.format("%q", v)
  end
  if type(v) == "table" then
    local ok, s = pcall(json.encode, v)
    if ok then
      return s
    end
  end
  return tostring(v)
end

local function deep_eq(a, b)
  if a == b then
    return true
  end
  if type(a) ~= "table" or type(b) ~= "table" then
    return false
  end
  for k, v in pairs(a) do
    if not deep_eq(v, b[k]) then
      return false
    end
  end
  for k in pairs(b) do
    if a[k] == nil then
      return false
    end
  end
  return true
end

local function fail(msg, level)
  error(msg, (level or 1) + 2)
end

function t.eq(actual, expected, msg)
  if not deep_eq(actual, expected) then
    fail((msg and (msg .. ": ") or "") .. "expected " .. show(expected) .. ", got " .. show(actual))
  end
end

function t.truthy(v, msg)
  if not v then
    fail(msg or ("expected a true value, got " .. show(v)))
  end
  return v
end

function t.falsy(v, msg)
  if v then
    fail(msg or ("expected a false value, got " .. show(v)))
  end
end

function t.contains(haystack, needle, msg)
  if type(haystack) ~= "string" or not haystack:find(needle, 1, true) then
    fail((msg and (msg .. ": ") or "") .. "expected " .. show(haystack) .. " to contain " .. show(needle))
  end
end

function t.not_contains(haystack, needle, msg)
  if type(haystack) == "string" and haystack:find(needle, 1, true) then
    fail((msg and (msg .. ": ") or "") .. "expected " .. show(haystack) .. " not to contain " .. show(needle))
  end
end

--- fn must raise; `expect` is a code ("EINVAL") or a plain substring of the message.
function t.raises(fn, expect)
  local ok, e = pcall(fn)
  if ok then
    fail("expected an error" .. (expect and (" (" .. expect .. ")") or ""))
  end
  local msg = type(e) == "table" and tostring(e.message) or tostring(e)
  local code = type(e) == "table" and e.code or nil
  if expect and code ~= expect and not msg:find(expect, 1, true) then
    fail("expected error " .. show(expect) .. ", got " .. show((code and (code .. ": ") or "") .. msg))
  end
  return e
end

function t.tmpdir()
  local d = fs.mkdtemp("banger-test-")
  tmpdirs[#tmpdirs + 1] = d
  file_dirs[#file_dirs + 1] = d
  dir_test[d] = current_test
  return d
end

function t.write(path, content, mode)
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then
    fs.mkdir(dir, 493, true)
  end
  fs.write_atomic(path, content, mode or 420)
end

function t.read(path)
  return fs.read(path)
end

--- An isolated environment for a banger child: HOME and every XDG dir under `home`.
function t.env(home, extra)
  if not homes[home] then
    homes[home] = true
    homes[#homes + 1] = home
  end
  local env = {
    "HOME=" .. home,
    "XDG_CONFIG_HOME=" .. home .. "/.config",
    "XDG_STATE_HOME=" .. home .. "/.local/state",
    "XDG_CACHE_HOME=" .. home .. "/.cache",
    "XDG_RUNTIME_DIR=" .. home .. "/run",
    "PATH=" .. (os.getenv("PATH") or "/usr/bin:/bin"),
  }
  for k, v in pairs(extra or {}) do
    env[#env + 1] = k .. "=" .. v
  end
  fs.mkdir(home .. "/run", 448, true)
  -- Test homes keep VMs off the network unless a spec says otherwise, so no
  -- test touches the host's own network namespace; network specs opt in
  -- inside a namespace of their own (net_spec.lua).
  local cfg = home .. "/.config/banger/config.lua"
  if not pcall(fs.stat, cfg) then
    t.write(cfg, 'return { network = { mode = "off" } }\n')
  end
  return env
end

function t.bin()
  return (assert(os.getenv("BANGER_BIN"), "BANGER_BIN is not set (run specs through ctest)"))
end

function t.source_dir()
  return os.getenv("BANGER_SOURCE_DIR") or "."
end

--- Runs banger with args in an isolated home; returns {code, stdout, stderr}.
-- opts: home, cwd, input, env (table of extra vars), timeout_ms
function t.banger(args, opts)
  opts = opts or {}
  local home = opts.home or t.tmpdir()
  local argv = { t.bin() }
  for _, a in ipairs(args) do
    argv[#argv + 1] = a
  end
  argv.env = t.env(home, opts.env)
  argv.cwd = opts.cwd or home
  argv.input = opts.input
  argv.timeout_ms = opts.timeout_ms or 60000
  local r = proc.run(argv)
  t.note_vms(home)
  return { code = r.code, stdout = r.stdout, stderr = r.stderr, home = home }
end

--- Polls pred() until it returns a true value (returned) or `timeout_ms`
-- passes (then raises, naming `what`): synchronisation by state, never by
-- a fixed sleep. Deadlines are generous: the suite runs on loaded machines.
function t.wait_for(pred, timeout_ms, what)
  local deadline = banger.sys.monotonic_ms() + (timeout_ms or 60000)
  repeat
    local v = pred()
    if v then
      return v
    end
    banger.sys.sleep_ms(20)
  until banger.sys.monotonic_ms() >= deadline
  local v = pred()
  if v then
    return v
  end
  error("timed out after " .. (timeout_ms or 60000) .. " ms waiting for " .. (what or "a condition"), 2)
end

--- Starts a child that the test must wait for; a child left running fails the test.
function t.spawn(spec)
  local c = proc.spawn(spec)
  children[#children + 1] = c
  return c
end

--- Remembers the VMs `home` has now, so a NAT rule one of them leaves
-- after it is deleted is still known to be this test's.
function t.note_vms(home)
  for _, id in ipairs(leaks.vm_ids(home)) do
    vm_ids[id] = true
  end
end

--- Marks the spec file as needing root: without it, each of its tests is
-- reported as skipped with `why` (the runner exits 77, ctest says Skipped).
function t.requires_root(why)
  t._requires_root = t._requires_root or why
end

function t._begin(name)
  current_test = name
end

--- Fails with every object of the test's own still on the host (and
-- removes it, so one leak does not spill into the next test); nil if clean.
-- deep: also look for processes by the directories they use (slow: once per file).
function t._census(dirs, deep)
  for _, h in ipairs(homes) do
    t.note_vms(h)
  end
  local ids = {}
  for id in pairs(vm_ids) do
    ids[#ids + 1] = id
  end
  -- A process about to end by itself is not a leak: a child whose handle
  -- was closed without waiting (`true` still starting), a daemon that
  -- notices its state is gone (the DNS responder). They get a deadline.
  pcall(t.wait_for, function() return #leaks.processes(dirs, deep) == 0 end, deep and 10000 or 5000)
  local found = leaks.census(dirs, homes, ids, deep)
  if #found == 0 then
    return nil
  end
  local lines = {}
  for _, obj in ipairs(found) do
    local d = obj.what:match("(/%S*banger%-test%-%w+)")
    local by = d and dir_test[d] and (" (by test: " .. dir_test[d] .. ")") or ""
    lines[#lines + 1] = "  leaked " .. obj.what .. by
    pcall(obj.reap)
  end
  return "test left objects behind:\n" .. table.concat(lines, "\n")
end

function t._finish()
  local leak
  for _, c in ipairs(children) do
    local ok, st = pcall(c.wait, c, 0)
    if not ok or not st then
      leak = leak or ("test left a child process running: " .. tostring(c))
      pcall(c.kill, c, 9)
      pcall(c.wait, c)
    end
  end
  children = {}
  local census = t._census(tmpdirs)
  if census then
    leak = leak and (leak .. "\n" .. census) or census
  end
  for _, d in ipairs(tmpdirs) do
    pcall(fs.remove_tree, d)
  end
  tmpdirs = {}
  homes, vm_ids = {}, {}
  current_test = nil
  return leak
end

--- After the file's last test: what its top level left (children, network
-- namespaces) and any process still using one of its tests' directories.
function t._finish_file()
  return t._census(file_dirs, true)
end

return t
