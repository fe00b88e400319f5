-- install.sh from a channel served over HTTP (busybox httpd in a network
-- namespace of the test's own): relative and absolute artifact urls, and a
-- manifest signed by another key refused over the wire too.
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()
local src = t.source_dir()
local build = assert(os.getenv("BANGER_BUILD_DIR"), "BANGER_BUILD_DIR")

local function ok(argv)
  argv.timeout_ms = argv.timeout_ms or 600000
  local r = banger.proc.run(argv)
  t.eq(r.code, 0, table.concat(argv, " ") .. ": " .. r.stderr)
  return r.stdout
end

local version = banger.json.decode(ok({ t.bin(), "version", "--json" })).version
local port = "127.0.0.1:8080"
local base = "http://" .. port

-- A channel released from the built tree with a key made here, served by
-- httpd inside namespace `ns`; `extra` are more scripts/release arguments.
local function served_channel(ns, extra)
  local dir = t.tmpdir()
  ok({ "openssl", "genpkey", "-algorithm", "ed25519", "-out", dir .. "/key.pem" })
  local argv = { src .. "/scripts/release", "--key", dir .. "/key.pem", "--build-dir", build, "--no-build",
    "--zstd-level", "3", "--out", dir .. "/out", "--channel", dir .. "/channel" }
  for _, a in ipairs(extra or {}) do
    argv[#argv + 1] = a
  end
  ok(argv)
  local httpd = t.spawn({ "ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p", port, "-h", dir .. "/channel" })
  t.wait_for(function() return netns.fetch(ns, base .. "/latest.json") ~= nil end, 30000, "busybox httpd in " .. ns)
  return dir, httpd
end

local function stop(httpd)
  httpd:kill(9)
  httpd:wait()
end

describe("install.sh over HTTP", function()
  after_each(function() netns.cleanup() end)

  it("installs from an http channel with a relative bundle url", function()
    local ns = netns.new("rel")
    local dir, httpd = served_channel(ns)
    local prefix = t.tmpdir() .. "/prefix"
    local r = netns.run(ns, { "sh", dir .. "/channel/install.sh", "--channel", base, "--prefix", prefix },
      { timeout_ms = 300000 })
    stop(httpd)
    t.eq(r.code, 0, r.stderr)
    t.eq(banger.fs.readlink(prefix .. "/lib/banger/current"), "versions/" .. version)
    local home = t.tmpdir()
    local v = banger.proc.run({ prefix .. "/bin/banger", "version", "--json", env = t.env(home), cwd = home })
    t.eq(v.code, 0, v.stderr)
    t.eq(banger.json.decode(v.stdout).version, version)
  end)

  it("follows an absolute bundle url written with --base-url", function()
    local ns = netns.new("rel")
    local dir, httpd = served_channel(ns, { "--base-url", base .. "/mirror" })
    local m = banger.json.decode(t.read(dir .. "/channel/latest.json"))
    local name = m.artifacts[1].name
    t.eq(m.artifacts[1].url, base .. "/mirror/" .. version .. "/" .. name)
    -- The bundle is only where the absolute url says, not beside the manifest.
    ok({ "mkdir", "-p", dir .. "/channel/mirror/" .. version })
    ok({ "mv", dir .. "/channel/" .. version .. "/" .. name, dir .. "/channel/mirror/" .. version .. "/" })
    local prefix = t.tmpdir() .. "/prefix"
    local r = netns.run(ns, { "sh", dir .. "/channel/install.sh", "--channel", base, "--version", version,
      "--prefix", prefix }, { timeout_ms = 300000 })
    stop(httpd)
    t.eq(r.code, 0, r.stderr)
    t.eq(banger.fs.readlink(prefix .. "/bin/banger"), "../lib/banger/current/bin/banger")
    t.truthy(banger.fs.exists(prefix .. "/lib/banger/versions/" .. version .. "/bin/banger"))
  end)

  it("refuses an http channel signed by a key it does not trust, touching nothing", function()
    local ns = netns.new("rel")
    local dir, httpd = served_channel(ns)
    local prefix = t.tmpdir() .. "/prefix"
    -- dist/install.sh trusts the project's key, not the one this channel was signed with
    local r = netns.run(ns, { "sh", src .. "/dist/install.sh", "--channel", base, "--prefix", prefix },
      { timeout_ms = 300000 })
    stop(httpd)
    t.eq(r.code, 1, r.stderr)
    t.contains(r.stderr, "does not verify")
    t.falsy(banger.fs.exists(prefix), "nothing written")
    t.truthy(banger.fs.exists(dir .. "/channel/latest.json"))
  end)
end)
