-- banger.native.agent's reidentify and mount methods against the real agent
-- on a Unix socket: arguments checked like every native's (bad ones raise),
-- the agent's own validation and its refusal to reidentify a host come back
-- as nil, message, code. Inside a guest: e2e_reidentify_spec.lua.
local agent = require("banger.native.agent")

local function start_agent()
  local dir = t.tmpdir()
  local sock = dir .. "/agent.sock"
  local bin = assert(os.getenv("BANGER_BUILD_DIR"), "BANGER_BUILD_DIR") .. "/cli/banger-agent/banger-agent"
  local child = t.spawn({ bin, "--unix", sock })
  local c = assert(agent.connect({ kind = "unix", path = sock, wait = true, timeout_ms = 10000 }))
  return c, child
end

local function stop(child)
  child:kill(9)
  child:wait(5000)
end

local function request(overrides)
  local r = {
    generation = "5f0c1c6e-8d0b-4f4e-9a51-0d7f4b2c9e11",
    hostname = "fork-1",
    machine_id = "0123456789abcdef0123456789abcdef",
    net = { dev = "eth0", mac = "02:aa:bb:cc:dd:ee", address = "172.30.0.7", prefix = 24, gateway = "172.30.0.1" },
    dns = { "172.30.0.1" },
    ssh_host_keys = true,
  }
  for k, v in pairs(overrides or {}) do
    r[k] = v
  end
  return r
end

describe("agent reidentify and mount from Lua", function()
  it("raises on bad arguments before anything is sent", function()
    local c, child = start_agent()
    t.raises(function() c:reidentify() end, "table expected")
    t.raises(function() c:reidentify({}) end, "bad option 'generation' (string expected, got no value)")
    t.raises(function() c:reidentify(request({ generation = 5 })) end, "bad option 'generation' (string expected, got number)")
    t.raises(function() c:reidentify(request({ hostname = false })) end, "bad option 'hostname'")
    t.raises(function() c:reidentify(request({ time_ns = 1.5 })) end, "bad option 'time_ns' (integer expected, got a fraction)")
    t.raises(function() c:reidentify(request({ entropy = string.rep("x", 31) })) end,
      "bad option 'entropy' (at least 32 bytes expected, got 31)")
    t.raises(function() c:reidentify(request({ net = "eth0" })) end, "bad option 'net' (table expected, got string)")
    t.raises(function() c:reidentify(request({ net = { address = "172.30.0.7", prefix = 24 } })) end, "bad option 'mac'")
    t.raises(function() c:reidentify(request({ net = { mac = "02:aa:bb:cc:dd:ee", address = "172.30.0.7" } })) end,
      "bad option 'prefix'")
    t.raises(function() c:reidentify(request({ dns = { 1 } })) end, "must be a string")
    t.raises(function() c:reidentify(request({ ssh_host_keys = "yes" })) end, "bad option 'ssh_host_keys' (boolean expected")
    t.raises(function() c:mount() end, "table expected")
    t.raises(function() c:mount({ target = "/root/repo" }) end, "bad option 'serial'")
    t.raises(function() c:mount({ serial = "banger-ws", target = 5 }) end, "bad option 'target'")
    t.raises(function() c:mount({ serial = "banger-ws", target = "/root/repo", timeout_ms = "soon" }) end,
      "bad option 'timeout_ms'")
    t.eq(c:ping(), true)  -- nothing reached the agent that broke the session
    c:close()
    t.raises(function() c:reidentify(request()) end, "attempt to use a closed banger.agent.client")
    stop(child)
  end)

  it("returns the agent's validation and its refusal on a host as nil, message, code", function()
    local c, child = start_agent()
    local hostname = banger.sys.hostname()
    local ok, msg, code = c:reidentify(request({ machine_id = "xyz" }))
    t.eq(ok, nil)
    t.eq(code, "EINVAL")
    t.contains(msg, "machine_id must be 32 lowercase hex digits")
    ok, msg, code = c:reidentify(request({ net = { mac = "02:aa:bb:cc:dd:ee", address = "10.0.0.300", prefix = 24 } }))
    t.eq(code, "EINVAL")
    t.contains(msg, "address '10.0.0.300' is not an IPv4 address")
    ok, msg, code = c:reidentify(request({ entropy = string.rep("\0", 32), time_ns = 1764000000000000000 }))
    t.eq(ok, nil)
    t.eq(code, "EPERM")
    t.contains(msg, "not a banger guest")
    t.eq(banger.sys.hostname(), hostname)
    ok, msg, code = c:mount({ serial = "banger-nosuch", target = t.tmpdir() .. "/repo", timeout_ms = 200 })
    t.eq(ok, nil)
    t.eq(code, "ENODEV")
    t.contains(msg, "no virtio disk with serial 'banger-nosuch' appeared within 200 ms")
    ok, msg, code = c:mount({ serial = "bad,serial", target = "/root/repo" })
    t.eq(code, "EINVAL")
    t.contains(msg, "serial must be")
    c:close()
    stop(child)
  end)
end)
