-- The real banger-helper binary, as root in a namespace of its own, serving
-- a non-root owner (uid 65534) whose banger runs through setpriv: the owner
-- gets bridges and taps made (the tap owned by the owner), a stranger gets
-- nothing, attacks change nothing, and the socket is never reachable by
-- others, even while it is being created.
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

local OWNER, STRANGER = 65534, 65533

local function helper_bin()
  return assert(os.getenv("BANGER_BUILD_DIR"), "BANGER_BUILD_DIR") .. "/banger-helper"
end

local function wait_for(path)
  t.wait_for(function() return banger.fs.exists(path) end, 30000, "a socket at " .. path)
end

-- A directory every uid can traverse, for the socket's parent.
local function open_dir()
  local d = t.tmpdir()
  banger.proc.run({ "chmod", "0755", d })
  return d
end

local function start_helper(ns, sock)
  local c = t.spawn({ "ip", "netns", "exec", ns, helper_bin(), "--socket", sock, "--owner", OWNER .. ":" .. OWNER,
    stderr = "pipe" })
  wait_for(sock)
  return c
end

local function stop_helper(c)
  c:kill(15)
  local st = c:wait(10000)
  t.eq(st.code, 0, "helper exit: " .. c:read_all("stderr"))
end

-- A home owned by `uid` whose config points at the helper's socket.
local function home_for(uid, sock)
  local home = open_dir()
  t.write(home .. "/.config/banger/config.lua",
    string.format('return { network = { mode = "on" }, helper = { socket = %q } }\n', sock))
  t.env(home)
  banger.proc.run({ "chown", "-R", uid .. ":" .. uid, home })
  return home
end

local function call_as(uid, ns, home, op, params)
  local r = netns.run(ns, { "setpriv", "--reuid=" .. uid, "--regid=" .. uid, "--clear-groups", t.bin(), "run",
    t.source_dir() .. "/tests/lua/fixtures/priv_call.lua", op, banger.json.encode(params) },
    { env = t.env(home), cwd = home })
  t.eq(r.code, 0, r.stderr)
  return banger.json.decode(r.stdout)
end

describe("banger-helper", function()
  after_each(function()
    netns.cleanup()
  end)

  it("serves its owner: bridge and tap made, the tap owned by the owner", function()
    local ns = netns.new("helper")
    local sock = open_dir() .. "/run/helper.sock"
    local helper = start_helper(ns, sock)
    local st = banger.fs.lstat(sock)
    t.eq({ st.type, st.mode, st.uid }, { "socket", tonumber("600", 8), OWNER })
    local d = banger.fs.lstat(sock:match("^(.*)/"))
    t.eq({ d.mode, d.uid }, { tonumber("700", 8), OWNER })

    local home = home_for(OWNER, sock)
    t.truthy(call_as(OWNER, ns, home, "ensure_bridge", { bridge = "br-fc", ip = "172.30.0.1", prefix = 24 }).ok)
    t.truthy(call_as(OWNER, ns, home, "create_tap", { tap = "bgtapowned", bridge = "br-fc", home = "0123456789abcdef" }).ok)
    local link = netns.run(ns, { "ip", "-d", "link", "show", "bgtapowned" }).stdout
    t.truthy(link:find("user nobody", 1, true) or link:find("user 65534", 1, true), link)

    local before = netns.run(ns, { "ip", "-o", "link", "show" }).stdout
    local bad = call_as(OWNER, ns, home, "ensure_bridge", { bridge = "eth0", ip = "172.30.0.1", prefix = 24 })
    t.eq(bad.error, "EINVAL")
    t.eq(call_as(OWNER, ns, home, "delete_tap", { tap = "lo" }).error, "EINVAL")
    t.eq(call_as(OWNER, ns, home, "mount", { what = "/" }).error, "ENOSYS")
    t.eq(netns.run(ns, { "ip", "-o", "link", "show" }).stdout, before, "nothing changed")
    stop_helper(helper)
    t.falsy(banger.fs.exists(sock), "the socket is removed on exit")
  end)

  for _, sig in ipairs({ { "SIGTERM", 15 }, { "SIGINT", 2 } }) do
    -- (an idle connection's thread ending too: priv_server_test.cpp, [signal])
    it(sig[1] .. " stops it within 1 s: exit 0 (a clean stop of a service), socket removed", function()
      local sock = open_dir() .. "/run/helper.sock"
      local err = t.tmpdir() .. "/helper.err"
      local helper = t.spawn({ helper_bin(), "--socket", sock, "--owner", OWNER .. ":" .. OWNER,
        stderr = { file = err, append = false } })
      wait_for(sock)
      local start = banger.sys.monotonic_ms()
      helper:kill(sig[2])
      local st = helper:wait(10000)
      local ms = banger.sys.monotonic_ms() - start
      t.eq({ st.exited, st.code }, { true, 0 }, t.read(err))
      t.truthy(ms < 1000, "exit took " .. ms .. " ms")
      t.falsy(banger.fs.exists(sock), "the socket is removed")
      t.contains(t.read(err), "stopped by " .. sig[1])
    end)
  end

  it("refuses a stranger", function()
    local ns = netns.new("stranger")
    local sock = open_dir() .. "/run/helper.sock"
    local helper = start_helper(ns, sock)
    local home = home_for(STRANGER, sock)
    local res = call_as(STRANGER, ns, home, "ensure_bridge", { bridge = "br-fc", ip = "172.30.0.1", prefix = 24 })
    t.eq(res.error, "EACCES", res.message)
    t.eq(netns.run(ns, { "ip", "link", "show", "br-fc" }).code ~= 0, true, "no bridge was made")
    stop_helper(helper)
  end)

  it("never exposes its directory or socket to others, even while creating them", function()
    local ns = netns.new("race")
    local parent = open_dir()
    local dir, sock = parent .. "/run", parent .. "/run/helper.sock"
    local watcher = t.spawn({ t.bin(), "run", t.source_dir() .. "/tests/lua/fixtures/watch_modes.lua", dir, sock,
      "4000", stdout = "pipe", env = t.env(t.tmpdir()) })
    for _ = 1, 8 do
      stop_helper(start_helper(ns, sock))
      banger.proc.run({ "rm", "-rf", dir })
    end
    t.eq(watcher:wait(20000).code, 0)
    local out = watcher:read_all("stdout")
    local observed, violations = out:match("observed=(%d+) violations=(%d+)")
    t.eq(tonumber(violations), 0, out)
    t.truthy(tonumber(observed) > 0, "the watcher saw the objects at all: " .. out)
  end)
end)
