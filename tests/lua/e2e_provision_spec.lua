-- Provisioning at every start, on a real guest (kernel under QEMU TCG, the
-- tiny image with dropbear) with a tap on a bridge in a network namespace
-- of its own: a file_sync change (a changed file, an added entry) and a
-- changed git identity made while the VM is stopped reach the guest at
-- the next `vm start`, without undoing what the guest changed itself; a
-- VM that was killed has its journal replayed before the disk is written;
-- `vm ssh` and an interactive `vm run` end with the "still running"
-- reminder.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

local function features(path)
  local r = banger.proc.run({ "dumpe2fs", "-h", path })
  t.eq(r.code, 0, r.stderr)
  return r.stdout:match("Filesystem features:([^\n]*)")
end

describe("provisioning at every start on a real guest", function()
  after_each(function()
    netns.cleanup()
  end)

  it("file_sync, the git identity and the SSH key are written again at each start; ssh and shells remind", function()
    local ns = netns.new("prov")
    local home = e2e.home()
    e2e.ssh_image(home)
    local function config(entries)
      t.write(home .. "/.config/banger/config.lua",
        'return { network = { mode = "on" }, file_sync = {\n' .. entries .. "} }\n")
    end
    t.write(home .. "/a.txt", "first\n")
    t.write(home .. "/.gitconfig", "[user]\n\tname = First\n\temail = first@example.com\n")
    config('{ host = "~/a.txt", guest = "~/a.txt" },\n')
    local run = netns.banger(ns, home)
    local function in_ns(args, input)
      local argv = { t.bin() }
      table.move(args, 1, #args, 2, argv)
      return netns.run(ns, argv, { env = t.env(home), cwd = home, timeout_ms = 300000, input = input })
    end
    local function guest(cmd)
      local r = run({ "vm", "exec", "pv", "--", "sh", "-c", cmd })
      t.eq(r.code, 0, cmd .. ": " .. r.stderr)
      return r.stdout
    end

    local c = run({ "vm", "create", "pv", "--image", "tiny-ssh", "--memory", "256MiB", "--work-disk", "64MiB" })
    t.eq(c.code, 0, c.stderr)
    t.eq(guest("cat /root/a.txt"), "first\n")
    -- what the guest changes itself, which a refresh keeps
    guest("echo 'ssh-rsa AAAAguestkey guest@vm' >> /root/.ssh/authorized_keys"
      .. " && printf '[core]\\n\\teditor = vi\\n' >> /root/.gitconfig")

    -- stopped: the file changes, an entry is added, the identity changes
    t.eq(run({ "vm", "stop", "pv" }).code, 0)
    t.write(home .. "/a.txt", "second\n")
    t.write(home .. "/b.conf", "added\n")
    config('{ host = "~/a.txt", guest = "~/a.txt" },\n{ host = "~/b.conf", guest = "~/.config/b.conf", mode = "0640" },\n')
    t.write(home .. "/.gitconfig", "[user]\n\tname = Second\n\temail = second@example.com\n")
    local s = run({ "vm", "start", "pv" })
    t.eq(s.code, 0, s.stderr)
    t.eq(guest("cat /root/a.txt"), "second\n")
    t.eq(guest("cat /root/.config/b.conf"), "added\n")
    t.eq(guest("stat -c %a /root/.config/b.conf"), "640\n")
    local gitconfig = guest("cat /root/.gitconfig")
    t.contains(gitconfig, "name = Second")
    t.contains(gitconfig, "email = second@example.com")
    t.contains(gitconfig, "editor = vi", "the guest's own setting stays")
    t.not_contains(gitconfig, "First")
    local keys = guest("cat /root/.ssh/authorized_keys")
    t.eq(select(2, keys:gsub(" banger\n", "")), 1, "banger's key once: " .. keys)
    t.contains(keys, "ssh-rsa AAAAguestkey guest@vm\n", "the guest's own key stays")

    -- vm ssh with banger's key (written again at the start): a shell ends
    -- with the reminder, a command does not. The SSH server may start
    -- after the agent answers.
    e2e.wait_for(function()
      return run({ "vm", "ssh", "pv", "--", "true" }).code == 0
    end, 60000, "the guest's SSH server")
    local cmd = run({ "vm", "ssh", "pv", "--", "cat", "/root/a.txt" })
    t.eq({ cmd.code, cmd.stdout }, { 0, "second\n" }, cmd.stderr)
    t.not_contains(cmd.stderr, "still running")
    local sh = in_ns({ "vm", "ssh", "pv" }, "cat /root/.config/b.conf\nexit 0\n")
    t.eq(sh.code, 0, sh.stderr)
    t.contains(sh.stdout, "added\n")
    t.contains(sh.stderr, "VM pv is still running ('banger vm stop pv' stops it, 'banger vm delete -f pv' removes it)")

    -- killed: the guest's journal is left unreplayed; the start replays it
    -- before writing, so what it writes is what the guest mounts
    local vm = banger.json.decode(run({ "vm", "show", "pv", "--json" }).stdout)
    t.eq(run({ "vm", "kill", "pv" }).code, 0)
    local work = vm.dir .. "/work.ext4"
    t.contains(features(work), "needs_recovery", "a killed guest leaves its journal to replay")
    t.write(home .. "/a.txt", "third\n")
    local k = run({ "vm", "start", "pv" })
    t.eq(k.code, 0, k.stderr)
    t.eq(guest("cat /root/a.txt /root/.config/b.conf"), "third\nadded\n")
    t.eq(run({ "vm", "stop", "pv" }).code, 0)
    local fsck = banger.proc.run({ "e2fsck", "-fn", work })
    t.eq(fsck.code, 0, fsck.stdout .. fsck.stderr)
    t.eq(run({ "vm", "delete", "pv" }).code, 0)
    -- the pin vm ssh's system ssh made went with the VM (not hashed), so
    -- the next VM at the same address is not refused as a changed host
    local pins = t.read(home .. "/.local/state/banger/ssh/known_hosts") or ""
    t.falsy(pins:match("\n?[^#\n][^\n]*"), "known_hosts keeps no pin: " .. pins)

    -- vm run without a command: a shell over SSH, and the reminder after it
    local shell = in_ns({ "vm", "run", "--name", "sh1", "--image", "tiny-ssh", "--memory", "256MiB" },
      "echo in-run-shell\nexit 0\n")
    t.eq(shell.code, 0, shell.stderr)
    t.contains(shell.stdout, "in-run-shell\n")
    t.contains(shell.stderr, "VM sh1 is still running")
    t.eq(run({ "vm", "delete", "-f", "sh1" }).code, 0)
    t.eq(e2e.processes(home .. "/run/banger"), "")
  end)
end)
