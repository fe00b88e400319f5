-- SSH end to end on a real guest running Debian's dropbear: vm run goes over
-- SSH and pins the host key on first connect; re-keying the guest makes the
-- next connection fail as a possible MITM; vm delete drops the pins. The VM
-- has a real network, in a namespace the test made.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

describe("ssh into a real guest", function()
  local world
  after_each(function()
    netns.cleanup(world)
    world = nil
  end)

  it("vm run over SSH pins the key; a re-keyed guest is refused; delete forgets", function()
    world = netns.world("unused\n")
    local home = e2e.home()
    e2e.ssh_image(home)
    local banger_in_ns = netns.banger(world.host, home)

    local r = banger_in_ns({ "vm", "run", "--name", "sshvm", "--image", "tiny-ssh", "--memory", "256MiB", "--",
      "cat", "/etc/hostname", "/proc/sys/kernel/hostname" })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stdout, "sshvm")
    local kh = home .. "/.local/state/banger/ssh/known_hosts"
    local pins = t.read(kh)
    t.truthy(pins and pins:find("172.30.0.2,sshvm.vm ", 1, true), "pinned on first connect: " .. tostring(pins))

    -- the system ssh (vm ssh) trusts the same pin
    local s = banger_in_ns({ "vm", "ssh", "sshvm", "--", "echo", "via system ssh" }, 60000)
    t.eq(s.code, 0, s.stderr)
    t.eq(s.stdout, "via system ssh\n")

    -- re-key the guest: new host keys on the next connection
    local rekey = banger_in_ns({ "vm", "exec", "sshvm", "--", "sh", "-c",
      "rm -f /etc/dropbear/*_host_key && kill $(pidof dropbear)" }, 60000)
    t.eq(rekey.code, 0, rekey.stderr)
    t.write(home .. "/connect.lua", [[
local row = banger.vms.require("sshvm")
local ok, err = pcall(banger.ssh.wait_connect, row, 20000)
print(ok and "connected" or (err.code .. ": " .. err.message))
]])
    local c = banger_in_ns({ "run", home .. "/connect.lua" }, 60000)
    t.contains(c.stdout, "EHOSTKEY: host key of VM sshvm changed: POSSIBLE MAN-IN-THE-MIDDLE ATTACK")
    t.eq(t.read(kh), pins, "the pin was not replaced")
    local sys_ssh = banger_in_ns({ "vm", "ssh", "sshvm", "--", "true" }, 60000)
    t.eq(sys_ssh.code ~= 0, true, "the system ssh refuses too")

    t.eq(banger_in_ns({ "vm", "delete", "-f", "sshvm" }).code, 0)
    t.not_contains(t.read(kh) or "", "sshvm.vm")
    t.not_contains(t.read(kh) or "", "172.30.0.2")
  end)
end)
