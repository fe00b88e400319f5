-- banger's SSH client against a real OpenSSH server on 127.0.0.1: trust on
-- first use in banger's own known_hosts, a changed host key refused as a
-- possible MITM before anything runs, exec and upload; and the managed
-- ~/.ssh/config block.
local function keygen(path, type)
  local r = banger.proc.run({ "ssh-keygen", "-q", "-t", type or "ed25519", "-N", "", "-f", path })
  t.eq(r.code, 0, r.stderr)
end

local function free_port()
  local s = require("banger.native.dns").listen("127.0.0.1", 0)  -- any free port number will do for TCP too
  local p = s:port()
  s:close()
  return p
end

-- A real sshd serving only `client_pub`, with host key `hostkey`.
local function sshd(dir, port, hostkey, client_pub)
  banger.fs.mkdir("/run/sshd", 493, true)
  t.write(dir .. "/authorized_keys", t.read(client_pub), tonumber("600", 8))
  t.write(dir .. "/sshd_config", table.concat({
    "ListenAddress 127.0.0.1", "Port " .. port, "HostKey " .. hostkey, "PermitRootLogin prohibit-password",
    "AuthorizedKeysFile " .. dir .. "/authorized_keys", "StrictModes no", "UsePAM no", "PasswordAuthentication no",
    "KbdInteractiveAuthentication no", "PidFile none", "",
  }, "\n"))
  local c = t.spawn({ "/usr/sbin/sshd", "-D", "-e", "-f", dir .. "/sshd_config", stderr = "pipe" })
  local ok = pcall(t.wait_for, function()
    return banger.proc.run({ "ssh-keyscan", "-p", tostring(port), "-T", "1", "127.0.0.1" }).stdout ~= ""
  end, 30000, "sshd")
  if ok then
    return c
  end
  error("sshd did not start: " .. c:read_all("stderr"))
end

local function stop(c)
  c:kill(15)
  c:wait(5000)
end

local function probe(home, port, kh, command, stdin, env)
  local argv = { "run", t.source_dir() .. "/tests/lua/fixtures/ssh_probe.lua", tostring(port), home .. "/id", kh }
  if command then
    argv[#argv + 1] = command
    argv[#argv + 1] = stdin
  end
  local r = t.banger(argv, { home = home, env = env })
  t.eq(r.code, 0, r.stderr)
  return banger.json.decode(r.stdout)
end

describe("ssh client", function()
  it("pins on first use, matches later, refuses a changed key, runs and uploads", function()
    local home = t.tmpdir()
    keygen(home .. "/id")
    keygen(home .. "/host1")
    keygen(home .. "/host2")
    local port = free_port()
    local kh = home .. "/state/ssh/known_hosts"
    local server = sshd(home, port, home .. "/host1", home .. "/id.pub")

    local first = probe(home, port, kh)
    t.eq(first.pinned_now, true, banger.json.encode(first))
    local pins = t.read(kh)
    local host1 = t.read(home .. "/host1.pub"):match("^(%S+ %S+)")
    t.contains(pins, "[127.0.0.1]:" .. port .. ",probe.vm " .. host1)
    t.eq(banger.fs.stat(kh).mode, tonumber("600", 8))
    t.eq(banger.fs.stat(home .. "/state/ssh").mode, tonumber("700", 8))
    local fp = banger.proc.run({ "ssh-keygen", "-l", "-f", home .. "/host1.pub" }).stdout:match("(SHA256:%S+)")
    t.eq(first.fingerprint, fp)

    local again = probe(home, port, kh, "echo out; echo err >&2; cat; exit 3", "from stdin\n",
      { PROBE_UPLOAD = home .. "/uploaded.txt" })
    t.eq(again.pinned_now, false)
    t.eq(again.exec.code, 3)
    t.eq(again.exec.stdout, "out\nfrom stdin\n")
    t.eq(again.exec.stderr, "err\n")
    t.eq(t.read(home .. "/uploaded.txt"), "uploaded by banger\n")
    t.eq(banger.fs.stat(home .. "/uploaded.txt").mode, tonumber("640", 8))
    t.eq(t.read(kh), pins, "a matching key changes nothing")

    -- the server is re-keyed: refused before authenticating or running anything
    stop(server)
    server = sshd(home, port, home .. "/host2", home .. "/id.pub")
    local mitm = probe(home, port, kh, "touch " .. home .. "/ran")
    t.eq(mitm.error, "EHOSTKEY")
    t.contains(mitm.message, "POSSIBLE MAN-IN-THE-MIDDLE")
    t.contains(mitm.message, fp)
    t.falsy(banger.fs.exists(home .. "/ran"), "nothing ran")
    t.eq(t.read(kh), pins, "the pin is not replaced")

    -- forgetting the pin (what vm delete does) lets the new key be pinned
    t.write(home .. "/forget.lua", string.format("print(require('banger.native.ssh').forget(%q, { %q, 'probe.vm' }))",
      kh, "[127.0.0.1]:" .. port))
    t.eq(t.banger({ "run", home .. "/forget.lua" }, { home = home }).stdout, "2\n")
    t.eq(probe(home, port, kh).pinned_now, true)
    stop(server)
    t.falsy(banger.fs.exists(home .. "/.ssh/known_hosts"), "the user's known_hosts is never touched")
  end)

  it("forwards Ctrl-C to the remote command's process group before unwinding", function()
    local home = t.tmpdir()
    keygen(home .. "/id")
    keygen(home .. "/host1")
    local port = free_port()
    local server = sshd(home, port, home .. "/host1", home .. "/id.pub")
    local kh = home .. "/kh"
    local script = string.format("trap 'echo got-int > %s/int; kill $!; exit 5' INT; echo ready > %s/ready; sleep 30 >/dev/null 2>&1 & wait",
      home, home)
    local probe_child = t.spawn({ t.bin(), "run", t.source_dir() .. "/tests/lua/fixtures/ssh_probe.lua", tostring(port),
      home .. "/id", kh, script, "", env = t.env(home), cwd = home, stdout = "pipe", stderr = "pipe" })
    t.wait_for(function() return banger.fs.exists(home .. "/ready") end, 30000, "the remote command to start")
    probe_child:kill(2)
    -- banger unwinds with 130 once the command has ended; the command's
    -- INT trap ran first (the exec waited for it)
    t.eq(probe_child:wait(20000).code, 130)
    t.contains(probe_child:read_all("stderr"), "interrupted")
    t.eq(t.read(home .. "/int"), "got-int\n")
    stop(server)
  end)

  it("kills a remote command that outlives its timeout, and says so", function()
    local home = t.tmpdir()
    keygen(home .. "/id")
    keygen(home .. "/host1")
    local port = free_port()
    local server = sshd(home, port, home .. "/host1", home .. "/id.pub")
    -- the remote shell records its pid; after the timeout that process is gone
    local r = probe(home, port, home .. "/kh", "echo $$ > " .. home .. "/pid; echo before; exec sleep 600", "",
      { PROBE_TIMEOUT_MS = "1500" })
    t.eq(r.exec.timed_out, true, banger.json.encode(r))
    t.eq(r.exec.signal, "KILL")
    t.eq(r.exec.stdout, "before\n")
    t.truthy(r.took_ms >= 1500 and r.took_ms < 30000, r.took_ms)
    local pid = tonumber(t.read(home .. "/pid"))
    t.falsy(banger.fs.exists("/proc/" .. pid .. "/stat") and
      not (banger.fs.read("/proc/" .. pid .. "/stat") or ""):match("^%d+ %(.-%) Z"), "the remote command is gone")
    local quick = probe(home, port, home .. "/kh", "echo fast", "", { PROBE_TIMEOUT_MS = "20000" })
    t.eq(quick.exec.timed_out, nil)
    t.eq(quick.exec.stdout, "fast\n")
    stop(server)
  end)

  it("refuses a known_hosts that is a symlink", function()
    local home = t.tmpdir()
    keygen(home .. "/id")
    keygen(home .. "/host1")
    local port = free_port()
    local server = sshd(home, port, home .. "/host1", home .. "/id.pub")
    banger.fs.mkdir(home .. "/state/ssh", 448, true)
    t.write(home .. "/elsewhere", "")
    banger.fs.symlink(home .. "/elsewhere", home .. "/state/ssh/known_hosts")
    local r = probe(home, port, home .. "/state/ssh/known_hosts")
    t.eq(r.error, "ELOOP")
    t.eq(t.read(home .. "/elsewhere"), "")
    stop(server)
  end)
end)

describe("ssh-config", function()
  it("adds one Include block first, keeps the rest byte for byte, and removes exactly it", function()
    local home = t.tmpdir()
    local original = "Host work\n  HostName work.example.com\n  User me\n\nHost *\n  ServerAliveInterval 30\n"
    t.write(home .. "/.ssh/config", original, tonumber("600", 8))
    local r = t.banger({ "ssh-config", "install" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    local cfg = t.read(home .. "/.ssh/config")
    t.eq(cfg:find("# >>> banger", 1, true), 1, "the block comes first")
    t.contains(cfg, "Include " .. home .. "/.config/banger/ssh_config\n")
    t.eq(cfg:sub(-#original), original)
    t.eq(banger.fs.stat(home .. "/.ssh/config").mode, tonumber("600", 8))
    local inc = t.read(home .. "/.config/banger/ssh_config")
    t.contains(inc, "Host *.vm")
    t.contains(inc, "UserKnownHostsFile " .. home .. "/.local/state/banger/ssh/known_hosts")
    t.contains(inc, "StrictHostKeyChecking accept-new")
    t.contains(inc, "HashKnownHosts no")
    -- idempotent
    t.eq(t.banger({ "ssh-config", "install" }, { home = home }).code, 0)
    t.eq(t.read(home .. "/.ssh/config"), cfg)
    -- OpenSSH itself accepts the result
    local g = banger.proc.run({ "ssh", "-F", home .. "/.ssh/config", "-G", "web.vm" })
    t.eq(g.code, 0, g.stderr)
    t.contains(g.stdout, "user root")
    t.contains(g.stdout, "stricthostkeychecking accept-new")

    t.eq(t.banger({ "ssh-config", "uninstall" }, { home = home }).code, 0)
    t.eq(t.read(home .. "/.ssh/config"), original)
    t.falsy(banger.fs.exists(home .. "/.config/banger/ssh_config"))
  end)

  it("edits the target of a symlinked ~/.ssh/config and keeps the link", function()
    local home = t.tmpdir()
    t.write(home .. "/dotfiles/ssh_config", "Host a\n  User b\n", tonumber("600", 8))
    banger.fs.mkdir(home .. "/.ssh", 448, true)
    banger.fs.symlink(home .. "/dotfiles/ssh_config", home .. "/.ssh/config")
    t.eq(t.banger({ "ssh-config", "install" }, { home = home }).code, 0)
    t.eq(banger.fs.lstat(home .. "/.ssh/config").type, "symlink")
    t.contains(t.read(home .. "/dotfiles/ssh_config"), "Include ")
    t.eq(t.banger({ "ssh-config", "uninstall" }, { home = home }).code, 0)
    t.eq(t.read(home .. "/dotfiles/ssh_config"), "Host a\n  User b\n")
  end)
end)

describe("vm ssh", function()
  it("runs the system ssh with banger's key, known_hosts and accept-new", function()
    local home = t.tmpdir()
    t.write(home .. "/argv.lua", [[
local row = { name = "web", ip = "172.30.0.9", state = "running" }
print(table.concat(banger.ssh.ssh_argv(row, { "ls", "-l", "my dir" }), "\n"))
]])
    local r = t.banger({ "run", home .. "/argv.lua" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    local key = home .. "/.local/state/banger/ssh/id_ed25519"
    t.eq(r.stdout, table.concat({ "ssh", "-i", key, "-o", "IdentitiesOnly=yes",
      "-o", "UserKnownHostsFile=" .. home .. "/.local/state/banger/ssh/known_hosts",
      "-o", "StrictHostKeyChecking=accept-new", "-o", "GlobalKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
      "-o", "HashKnownHosts=no", "root@172.30.0.9", "--", "ls -l 'my dir'", "" }, "\n"))
  end)
end)
