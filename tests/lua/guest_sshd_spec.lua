-- Which package manager installs an SSH server in a container image, from
-- its /etc/os-release.
describe("guest sshd dispatch", function()
  it("picks the family by ID, then ID_LIKE", function()
    local cases = {
      { 'ID=debian\nVERSION_ID="12"\n', "debian" },
      { 'ID=ubuntu\nID_LIKE=debian\n', "debian" },
      { 'ID=linuxmint\nID_LIKE="ubuntu debian"\n', "debian" },
      { 'ID=alpine\n', "alpine" },
      { 'ID="fedora"\n', "fedora" },
      { 'ID="rocky"\nID_LIKE="rhel centos fedora"\n', "fedora" },
      { 'ID=arch\n', "arch" },
      { 'ID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\n', "suse" },
      { 'ID=bangerbox\n', nil },
      { '', nil },
    }
    local home = t.tmpdir()
    local script = home .. "/f.lua"
    local lines = {}
    for _, c in ipairs(cases) do
      lines[#lines + 1] = string.format("print(tostring(banger.guest_sshd.family(%q)))", c[1])
    end
    t.write(script, table.concat(lines, "\n"))
    local r = t.banger({ "run", script }, { home = home })
    t.eq(r.code, 0, r.stderr)
    local got = {}
    for l in r.stdout:gmatch("[^\n]+") do
      got[#got + 1] = l
    end
    for i, c in ipairs(cases) do
      t.eq(got[i], tostring(c[2]), cases[i][1])
    end
  end)

  it("writes banger's sshd drop-in and starts sshd after installing", function()
    local home = t.tmpdir()
    t.write(home .. "/s.lua", 'io.write(banger.guest_sshd.script("alpine"))')
    local r = t.banger({ "run", home .. "/s.lua" }, { home = home })
    t.contains(r.stdout, "apk add --no-cache openssh-server")
    t.contains(r.stdout, "ssh-keygen -A")
    t.contains(r.stdout, "PermitRootLogin prohibit-password")
    t.contains(r.stdout, "PasswordAuthentication no")
    t.contains(r.stdout, "/usr/sbin/sshd")
    -- the script is valid shell
    t.write(home .. "/script.sh", r.stdout)
    t.eq(banger.proc.run({ "sh", "-n", home .. "/script.sh" }).code, 0)
  end)
end)
