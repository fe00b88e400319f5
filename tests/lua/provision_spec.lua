-- What a VM's work disk gets before it boots, written with the ext4 engine.
local provision = require("banger.provision")

local function disk()
  local path = t.tmpdir() .. "/work.ext4"
  return banger.ext4.create(path, 32 * 1024 * 1024), path
end

describe("work disk provisioning", function()
  it("authorized_keys, .hushlogin and modes sshd's StrictModes accepts", function()
    local img <close> = disk()
    provision.work_disk(img, { public_key = "ssh-ed25519 AAAAtest banger\n", file_sync = {} })
    t.eq(img:read("/.ssh/authorized_keys"), "ssh-ed25519 AAAAtest banger\n")
    local ak, ssh, root = img:stat("/.ssh/authorized_keys"), img:stat("/.ssh"), img:stat("/")
    t.eq(ak.mode, tonumber("600", 8))
    t.eq(ssh.mode, tonumber("700", 8))
    t.eq(root.mode, tonumber("700", 8))
    t.eq({ ak.uid, ak.gid, ssh.uid, root.uid }, { 0, 0, 0, 0 })
    t.truthy(img:exists("/.hushlogin"))
  end)

  it("file_sync copies files (0600 by default), directories with their modes, skips symlinks and missing paths", function()
    local home = t.tmpdir()
    t.write(home .. "/token", "secret")
    t.write(home .. "/bin/tool", "#!/bin/sh\n", tonumber("755", 8))
    t.write(home .. "/.aws/credentials", "[default]\n", tonumber("600", 8))
    t.write(home .. "/.aws/config", "region\n", tonumber("644", 8))
    t.write(home .. "/elsewhere/secret", "do not copy")
    banger.fs.symlink(home .. "/elsewhere", home .. "/.aws/link-out")
    banger.fs.symlink(home .. "/elsewhere/secret", home .. "/.aws/file-link")
    local warnings = {}
    local img <close> = disk()
    provision.file_sync(img, {
      { host = home .. "/token", guest = "~/.config/app/token" },
      { host = home .. "/bin/tool", guest = "/root/bin/tool", mode = "0755" },
      { host = home .. "/.aws", guest = "~/.aws" },
      { host = home .. "/missing", guest = "~/missing" },
    }, function(w) warnings[#warnings + 1] = w end)
    t.eq(img:read("/.config/app/token"), "secret")
    t.eq(img:stat("/.config/app/token").mode, tonumber("600", 8))
    t.eq(img:stat("/bin/tool").mode, tonumber("755", 8))
    t.eq(img:stat("/.aws/credentials").mode, tonumber("600", 8))
    t.eq(img:stat("/.aws/config").mode, tonumber("644", 8))
    t.falsy(img:exists("/.aws/link-out"), "a symlinked directory inside a synced tree is not followed")
    t.falsy(img:exists("/.aws/file-link"))
    t.falsy(img:exists("/missing"))
    local all = table.concat(warnings, "\n")
    t.contains(all, "skipped the symlink " .. home .. "/.aws/link-out")
    t.contains(all, "skipped the symlink " .. home .. "/.aws/file-link")
    t.contains(all, home .. "/missing does not exist")
  end)

  it("generates banger's SSH key once, private in a 0700 directory", function()
    local home = t.tmpdir()
    local script = home .. "/key.lua"
    t.write(script, "local k = require('banger.provision').ssh_key(); io.write(k.private, '\\n', k.public_text)")
    local a = t.banger({ "run", script }, { home = home })
    t.eq(a.code, 0, a.stderr)
    local b = t.banger({ "run", script }, { home = home })
    t.eq(a.stdout, b.stdout, "the same key the second time")
    local priv = a.stdout:match("^([^\n]+)")
    t.eq(priv, home .. "/.local/state/banger/ssh/id_ed25519")
    t.eq(banger.fs.stat(priv).mode, tonumber("600", 8))
    t.eq(banger.fs.stat(home .. "/.local/state/banger/ssh").mode, tonumber("700", 8))
    t.contains(a.stdout, "ssh-ed25519 ")
  end)
end)
