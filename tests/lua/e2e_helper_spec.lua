-- The non-root path end to end: banger running as an ordinary uid, with no
-- privilege of its own, boots a real guest with networking and NAT through
-- the root helper, and leaves nothing behind. The helper runs as root in a
-- namespace the test made; the owner's banger runs in it through setpriv.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

local OWNER = 65534

describe("a non-root owner through the root helper", function()
  local world, helper
  after_each(function()
    if helper then
      helper:kill(15)
      helper:wait(10000)
      helper = nil
    end
    netns.cleanup(world)
    world = nil
  end)

  it("vm run --nat boots, reaches the outside, and cleans up", function()
    world = netns.world("hello non-root\n")
    local parent = t.tmpdir()
    banger.proc.run({ "chmod", "0755", parent })
    local sock = parent .. "/run/helper.sock"
    helper = t.spawn({ "ip", "netns", "exec", world.host, os.getenv("BANGER_BUILD_DIR") .. "/banger-helper",
      "--socket", sock, "--owner", OWNER .. ":" .. OWNER, stderr = "pipe" })
    for _ = 1, 100 do
      if banger.fs.exists(sock) then
        break
      end
      banger.sys.sleep_ms(50)
    end

    local home = e2e.home()
    banger.proc.run({ "chmod", "0755", home })
    t.write(home .. "/.config/banger/config.lua",
      string.format('return { network = { mode = "on", nameservers = { "10.200.0.2" } }, helper = { socket = %q } }\n', sock))
    t.env(home)
    banger.proc.run({ "chown", "-R", OWNER .. ":" .. OWNER, home })

    local r = netns.run(world.host, { "setpriv", "--reuid=" .. OWNER, "--regid=" .. OWNER, "--clear-groups", t.bin(),
      "vm", "run", "--rm", "--nat", "--image", "tiny", "--memory", "256MiB", "--", "sh", "-c",
      "id -u; printf 'GET /probe HTTP/1.0\\r\\n\\r\\n' | busybox nc 10.200.0.2 8080 | tail -n 1" },
      { env = t.env(home), cwd = home, timeout_ms = 240000 })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stdout, "hello non-root")

    t.not_contains(netns.run(world.host, { "ip", "-o", "link", "show" }).stdout, "bgtap")
    t.eq(netns.run(world.host, { "nft", "list", "table", "ip", "banger" }).code ~= 0, true, "NAT table removed")
    t.eq(e2e.processes(home .. "/run/banger"), "")
  end)
end)
