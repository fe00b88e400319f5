-- The runner's leak check (tests/lua/leaks.lua) and its skips, on a spec
-- that leaks on purpose (fixtures/leaky_spec.lua), run in a network
-- namespace of its own so its taps and NAT rules stay off the host.
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

-- argv running the runner on `spec` in a home of its own.
local function runner(spec)
  return { t.bin(), "run", t.source_dir() .. "/tests/lua/runner.lua", spec,
    env = t.env(t.tmpdir(), { BANGER_BIN = t.bin(), BANGER_SOURCE_DIR = t.source_dir() }), timeout_ms = 120000 }
end

describe("the runner", function()
  after_each(function() netns.cleanup() end)

  it("fails each test that leaves something behind, naming it, and removes it", function()
    local ns = netns.new("leaky")
    local argv = runner(t.source_dir() .. "/tests/lua/fixtures/leaky_spec.lua")
    local r = netns.run(ns, argv, { env = argv.env, timeout_ms = argv.timeout_ms })
    t.eq(r.code, 1, r.stdout .. r.stderr)
    local out = r.stdout
    t.contains(out, "not ok - leaky / leaves a child running\n    test left objects behind:\n    "
      .. "  leaked process ")
    t.contains(out, "): a child of the test process")
    t.contains(out, "not ok - leaky / leaves a socket in its home's runtime directory")
    t.contains(out, "/run/banger/vms/x/left.sock")
    t.contains(out, "not ok - leaky / leaves a tap with its home's mark and a NAT rule for it")
    t.contains(out, "leaked tap bgtapleak01 of home ")
    t.contains(out, 'leaked NAT rule nftables ip banger postrouting: oifname "eth0" masquerade comment "bgtapleak01"')
    t.contains(out, "ok - leaky / leaves another home's tap alone\n")
    t.contains(out, "not ok - leaky / leaves a network namespace")
    t.contains(out, "leaked network namespace bgt-leak-")
    -- Not a child: found once the file is over, by the directory it works in.
    t.contains(out, "ok - leaky / leaves a process using its directory, not its child\n")
    t.contains(out, "(sleep 600 ): it works in /")
    t.contains(out, "(by test: leaky / leaves a process using its directory, not its child)")
    t.contains(out, "skip - leaky / is skipped # SKIP a skip says why\n")
    t.contains(out, "2 passed, 5 failed, 1 skipped\n")
    -- Everything it left was removed, but the other home's tap.
    local links = netns.run(ns, { "ip", "-o", "link", "show" }).stdout
    t.not_contains(links, "bgtapleak01")
    t.contains(links, "bgtapother1")
    t.not_contains(netns.run(ns, { "nft", "list", "ruleset" }).stdout, "bgtapleak01")
    t.eq(banger.proc.run({ "pgrep", "-f", "^sleep 600$" }).stdout, "")
  end)

  it("exits 77 when a test is skipped and none failed (ctest: Skipped)", function()
    local d = t.tmpdir()
    t.write(d .. "/skip_spec.lua", 'it("runs", function() t.eq(1, 1) end)\npending("waits", "not here")\n')
    local r = banger.proc.run(runner(d .. "/skip_spec.lua"))
    t.eq(r.code, 77, r.stdout .. r.stderr)
    t.contains(r.stdout, "skip - waits # SKIP not here\n1 passed, 0 failed, 1 skipped\n")
  end)

  it("refuses a skip that does not say why", function()
    local d = t.tmpdir()
    t.write(d .. "/mute_spec.lua", 'pending("waits")\n')
    local r = banger.proc.run(runner(d .. "/mute_spec.lua"))
    t.truthy(r.code ~= 0 and r.code ~= 77, "exit " .. tostring(r.code))
    t.contains(r.stdout .. r.stderr, "pending(waits): say why the test does not run")
  end)
end)
