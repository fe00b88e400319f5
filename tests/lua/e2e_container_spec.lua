-- A container image with no init and no sshd, pulled from a real registry,
-- boots as a VM: banger puts its agent and banger-init into the image, and
-- vm run executes through the agent with banger-init as PID 1.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local fixtures = t.source_dir() .. "/tests/fixtures"

describe("container images", function()
  it("an init-less image boots with banger-init and runs commands through the agent", function()
    local dir = t.tmpdir()
    local r = banger.proc.run({ fixtures .. "/registry.sh", "start", dir, timeout_ms = 60000 })
    t.eq(r.code, 0, r.stderr)
    local addr = r.stdout:gsub("%s+$", "")
    local ok, err = pcall(function()
      local img = banger.proc.run({ fixtures .. "/make-box-image.sh", dir .. "/work", addr, "banger/box",
        timeout_ms = 120000 })
      t.eq(img.code, 0, img.stderr)
      local home = e2e.home()
      local pull = t.banger({ "image", "pull", addr .. "/banger/box:v1", "--name", "box", "--kernel", "debian-cloud" },
        { home = home, timeout_ms = 120000 })
      t.eq(pull.code, 0, pull.stderr)
      t.contains(pull.stderr, "banger-init")
      local show = banger.json.decode(t.banger({ "image", "show", "box", "--json" }, { home = home }).stdout)
      t.eq(show.init, "/usr/local/libexec/banger/banger-init")

      local run = t.banger({ "vm", "run", "--name", "boxvm", "--image", "box", "--memory", "256MiB", "--", "sh", "-c",
        "cat /etc/os-release; echo pid1=$(cat /proc/1/comm); hostname" }, { home = home, timeout_ms = 180000 })
      t.eq(run.code, 0, run.stderr)
      t.contains(run.stdout, "ID=bangerbox")
      t.contains(run.stdout, "pid1=banger-init")
      t.contains(run.stdout, "boxvm")
      -- a clean stop goes through banger-init's poweroff
      local stop = t.banger({ "vm", "stop", "boxvm" }, { home = home, timeout_ms = 60000 })
      t.eq(stop.code, 0, stop.stderr)
      t.eq(e2e.vms(home).boxvm.state, "stopped")
      t.contains(t.read(home .. "/.local/state/banger/vms/" .. e2e.vms(home).boxvm.id .. "/console.log"),
        "banger-init: powering off")
      t.eq(t.banger({ "vm", "delete", "boxvm" }, { home = home }).code, 0)
    end)
    banger.proc.run({ fixtures .. "/registry.sh", "stop", dir })
    if not ok then
      error(err, 0)
    end
  end)
end)
