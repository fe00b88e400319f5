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

  it("a work disk carries a one-boot seed for the guest's random pool", function()
    local img <close> = disk()
    provision.work_disk(img, { public_key = "ssh-ed25519 AAAAtest banger\n", file_sync = {} })
    local seed = img:read("/.banger-rng-seed")
    t.eq(#seed, 64)
    t.eq(img:stat("/.banger-rng-seed").mode, tonumber("600", 8))
    local other <close> = disk()
    provision.work_disk(other, { public_key = "ssh-ed25519 AAAAtest banger\n", file_sync = {} })
    t.truthy(other:read("/.banger-rng-seed") ~= seed, "each work disk gets its own bytes")
  end)

  it("the git identity comes from git once, then from its cache until the config changes", function()
    local home = t.tmpdir()
    local script = home .. "/id.lua"
    t.write(script, "io.write(table.concat({ require('banger.provision').git_identity() }, '|'))")
    local function identity()
      local r = t.banger({ "run", script }, { home = home })
      t.eq(r.code, 0, r.stderr)
      return r.stdout
    end
    local function git_says()
      local out = {}
      for _, key in ipairs({ "user.name", "user.email" }) do
        local argv = { "git", "config", "--global", "--includes", "--get", key, env = t.env(home), cwd = "/" }
        out[#out + 1] = (banger.proc.run(argv).stdout:gsub("%s+$", ""))
      end
      return table.concat(out, "|")
    end
    t.eq(identity(), "|", "no git config: no identity")
    t.write(home .. "/.gitconfig", "[user]\n\tname = Ada Lovelace\n\temail = ada@example.org\n")
    t.eq(identity(), "Ada Lovelace|ada@example.org")
    local cache = home .. "/.local/state/banger/git-identity.json"
    local kept = banger.json.decode(banger.fs.read(cache))
    t.eq(kept.name, "Ada Lovelace")
    -- The cache answers while the files are the same (git would say Ada).
    kept.name = "From The Cache"
    banger.fs.write_atomic(cache, banger.json.encode(kept))
    t.eq(identity(), "From The Cache|ada@example.org")
    -- Any change to a file git reads sends the question to git again.
    t.write(home .. "/.config/git/config", "[user]\n\tname = Xdg Name\n\temail = ada@xdg.example.org\n")
    t.eq(identity(), git_says())
    t.write(home .. "/.gitconfig", "[user]\n\tname = Grace Hopper\n")
    t.eq(identity(), git_says())
    t.contains(identity(), "Grace Hopper|")
    banger.fs.remove(home .. "/.gitconfig")
    t.eq(identity(), "Xdg Name|ada@xdg.example.org")

    -- An included file can change without the including one changing: never cached.
    t.write(home .. "/.gitconfig", "[include]\n\tpath = ~/.gitconfig.d/user\n")
    t.write(home .. "/.gitconfig.d/user", "[user]\n\tname = Included One\n")
    t.contains(identity(), "Included One|")
    t.write(home .. "/.gitconfig.d/user", "[user]\n\tname = Included Two\n")
    t.contains(identity(), "Included Two|")
    t.eq(identity(), git_says())
  end)
end)

-- provision.refresh in a banger process of its own, with `home` as HOME
-- (the git identity comes from there); the image at `path` is refreshed with
-- public key `key` and the config's file_sync `entries`.
local function refresh_in(home, path, key, entries)
  t.write(home .. "/refresh.lua", string.format([[
local img <close> = banger.ext4.open(%q, { write = true })
require("banger.provision").refresh(img, { public_key = %q, file_sync = %s })
]], path, key, entries or "{}"))
  local r = t.banger({ "run", home .. "/refresh.lua" }, { home = home })
  t.eq(r.code, 0, r.stderr)
  return r
end

describe("work disk refresh (every start)", function()
  it("authorized_keys: the current key first, an old banger key dropped, the guest's own keys kept", function()
    local home = t.tmpdir()
    local path = home .. "/work.ext4"
    do
      local img <close> = banger.ext4.create(path, 16 * 1024 * 1024)
      provision.work_disk(img, { public_key = "ssh-ed25519 AAAAold banger\n", file_sync = {} })
      img:write("/.ssh/authorized_keys", img:read("/.ssh/authorized_keys")
        .. "ssh-rsa AAAAguest me@laptop\ncommand=\"uptime\" ssh-ed25519 AAAAopt banger-ops\n", { mode = 384 })
    end
    refresh_in(home, path, "ssh-ed25519 AAAAnew banger\n")
    local img <close> = banger.ext4.open(path)
    t.eq(img:read("/.ssh/authorized_keys"),
      "ssh-ed25519 AAAAnew banger\nssh-rsa AAAAguest me@laptop\ncommand=\"uptime\" ssh-ed25519 AAAAopt banger-ops\n")
    t.eq(img:stat("/.ssh/authorized_keys").mode, tonumber("600", 8))
    img:close()
    -- nothing to change: nothing written (an old mtime stays)
    do
      local w <close> = banger.ext4.open(path, { write = true })
      w:write("/.ssh/authorized_keys", w:read("/.ssh/authorized_keys"), { mode = 384, mtime = 1000 })
    end
    refresh_in(home, path, "ssh-ed25519 AAAAnew banger\n")
    local again <close> = banger.ext4.open(path)
    t.eq(again:stat("/.ssh/authorized_keys").mtime, 1000)
  end)

  it("~/.gitconfig: only user.name and user.email change; none on the host leaves the guest's as it is", function()
    local home = t.tmpdir()
    local path = home .. "/work.ext4"
    do
      local img <close> = banger.ext4.create(path, 16 * 1024 * 1024)
      img:write("/.gitconfig", "[user]\n\tname = Old\n\temail = old@example.org\n[core]\n\teditor = vi\n",
        { mode = tonumber("640", 8) })
    end
    refresh_in(home, path, "ssh-ed25519 AAAAk banger\n")
    do
      local img <close> = banger.ext4.open(path)
      t.eq(img:read("/.gitconfig"), "[user]\n\tname = Old\n\temail = old@example.org\n[core]\n\teditor = vi\n",
        "the host has no identity")
    end
    t.write(home .. "/.gitconfig", "[user]\n\tname = Ada Lovelace\n\temail = ada@example.org\n")
    refresh_in(home, path, "ssh-ed25519 AAAAk banger\n")
    local img <close> = banger.ext4.open(path)
    local text = img:read("/.gitconfig")
    t.contains(text, "name = Ada Lovelace")
    t.contains(text, "email = ada@example.org")
    t.contains(text, "editor = vi")
    t.not_contains(text, "Old")
    t.eq(img:stat("/.gitconfig").mode, tonumber("640", 8), "the guest's mode stays")
  end)

  it("file_sync: changed files are written again, new entries added, a removed entry's files left in place", function()
    local home = t.tmpdir()
    local path = home .. "/work.ext4"
    t.write(home .. "/a", "one")
    t.write(home .. "/b", "bee")
    do
      local img <close> = banger.ext4.create(path, 16 * 1024 * 1024)
      provision.work_disk(img, { public_key = "ssh-ed25519 AAAAk banger\n",
        file_sync = { { host = home .. "/a", guest = "~/a" }, { host = home .. "/b", guest = "~/b" } } })
    end
    t.write(home .. "/a", "two")
    t.write(home .. "/c", "sea")
    refresh_in(home, path, "ssh-ed25519 AAAAk banger\n",
      string.format("{ { host = %q, guest = '~/a' }, { host = %q, guest = '~/sub/c', mode = '0640' } }",
        home .. "/a", home .. "/c"))
    local img <close> = banger.ext4.open(path)
    t.eq({ img:read("/a"), img:read("/sub/c"), img:read("/b") }, { "two", "sea", "bee" })
    t.eq(img:stat("/sub/c").mode, tonumber("640", 8))
    img:close()
    t.eq(banger.proc.run({ "e2fsck", "-fn", path }).code, 0)
  end)

  -- The guest owns its disk and may be hostile: what it leaves where banger
  -- writes must not reach host memory in bulk, nor redirect the writes.
  it("attack: a huge file, a symlink and a non-directory where banger writes are replaced, not followed or read", function()
    local home = t.tmpdir()
    local path = home .. "/work.ext4"
    t.write(home .. "/.gitconfig", "[user]\n\tname = Ada\n\temail = ada@example.org\n")
    do
      local img <close> = banger.ext4.create(path, 32 * 1024 * 1024)
      img:write("/.ssh", "a file where the directory belongs")
      img:write("/target", "the guest's own file\n")
      img:symlink("/target", "/.gitconfig")
    end
    refresh_in(home, path, "ssh-ed25519 AAAAk banger\n")
    do
      local img <close> = banger.ext4.open(path)
      t.eq(img:stat("/.ssh").type, "directory")
      t.eq(img:stat("/.ssh").mode, tonumber("700", 8))
      t.eq(img:read("/.ssh/authorized_keys"), "ssh-ed25519 AAAAk banger\n")
      t.eq(img:stat("/.gitconfig").type, "file")
      t.eq(img:read("/.gitconfig"), "[user]\n\tname = Ada\n\temail = ada@example.org\n")
      t.eq(img:read("/target"), "the guest's own file\n", "the symlink's target is untouched")
    end
    do
      local img <close> = banger.ext4.open(path, { write = true })
      img:write("/.ssh/authorized_keys", string.rep("ssh-rsa AAAAjunk x\n", 1024 * 1024 // 18))
      img:write("/.gitconfig", "[user]\n" .. string.rep("#", 1024 * 1024) .. "\n")
    end
    refresh_in(home, path, "ssh-ed25519 AAAAk banger\n")
    local img <close> = banger.ext4.open(path)
    t.eq(img:read("/.ssh/authorized_keys"), "ssh-ed25519 AAAAk banger\n", "an oversized file is not kept")
    t.eq(img:read("/.gitconfig"), "[user]\n\tname = Ada\n\temail = ada@example.org\n")
    img:close()
    t.eq(banger.proc.run({ "e2fsck", "-fn", path }).code, 0)
    -- a ~/.gitconfig git cannot parse does not stop the start: left as it is, with a warning
    do
      local w <close> = banger.ext4.open(path, { write = true })
      w:write("/.gitconfig", "[user\n\tname = broken\n")
    end
    local r = refresh_in(home, path, "ssh-ed25519 AAAAk banger\n")
    t.contains(r.stderr, "could not set the git identity in the VM's ~/.gitconfig (")
    local after <close> = banger.ext4.open(path)
    t.eq(after:read("/.gitconfig"), "[user\n\tname = broken\n")
  end)

  it("refresh_disk replays a journal left to recover before writing; a qcow2 overlay is skipped", function()
    local home = t.tmpdir()
    local path = home .. "/work.ext4"
    banger.ext4.create(path, 16 * 1024 * 1024):close()
    -- what a killed guest leaves: the journal marked as needing recovery
    t.eq(banger.proc.run({ "debugfs", "-w", "-R", "feature needs_recovery", path }).code, 0)
    t.contains(banger.proc.run({ "dumpe2fs", "-h", path }).stdout, "needs_recovery")
    t.write(home .. "/f", "synced")
    t.write(home .. "/disk.lua", string.format([[
local p = require("banger.provision")
local entries = { { host = %q, guest = "~/f" } }
print(p.refresh_disk({ name = "box" }, { path = %q, format = "raw" }, { public_key = "ssh-ed25519 AAAAk banger\\n", file_sync = entries }))
print(p.refresh_disk({ name = "box" }, { path = %q, format = "qcow2" }, { public_key = "ssh-ed25519 AAAAk banger\\n", file_sync = entries }))
]], home .. "/f", path, path))
    local r = t.banger({ "run", home .. "/disk.lua" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.eq(r.stdout, "true\nfalse\n")
    t.not_contains(banger.proc.run({ "dumpe2fs", "-h", path }).stdout, "needs_recovery")
    t.eq(banger.proc.run({ "e2fsck", "-fn", path }).code, 0)
    local img <close> = banger.ext4.open(path)
    t.eq(img:read("/f"), "synced")
    t.contains(t.read(home .. "/.local/state/banger/banger.log"), "replaying the work disk's journal")
    t.contains(t.read(home .. "/.local/state/banger/banger.log"), "work disk not refreshed: it is a qcow2 overlay")
    t.falsy(banger.fs.exists(path .. ".refreshing"), "a finished refresh leaves no marker")

    -- ext3 (a work disk banger did not make): the engine writes extent-mapped files only
    local ext3 = home .. "/ext3.img"
    t.eq(banger.proc.run({ "truncate", "-s", "16M", ext3 }).code, 0)
    t.eq(banger.proc.run({ "mkfs.ext3", "-F", "-q", ext3 }).code, 0)
    t.write(home .. "/ext3.lua", string.format([[
print(require("banger.provision").refresh_disk({ name = "box" }, { path = %q, format = "raw" }, { file_sync = {} }))
]], ext3))
    local e = t.banger({ "run", home .. "/ext3.lua" }, { home = home })
    t.eq({ e.code, e.stdout }, { 0, "false\n" }, e.stderr)
    t.contains(t.read(home .. "/.local/state/banger/banger.log"),
      "work disk not refreshed: it is a filesystem without extents (ext2/ext3, not made by banger)")
    t.eq(banger.proc.run({ "e2fsck", "-fn", ext3 }).code, 0)
  end)

  it("refresh_disk after a refresh that did not finish: e2fsck -f -p repairs the disk first", function()
    local home = t.tmpdir()
    local path = home .. "/work.ext4"
    do
      local img <close> = banger.ext4.create(path, 16 * 1024 * 1024)
      img:write("/data", string.rep("d", 100000))
    end
    -- what a banger killed half-way through its writes can leave: a block
    -- in use that the bitmap calls free, and its marker beside the disk
    local block = banger.proc.run({ "debugfs", "-R", "blocks /data", path }).stdout:match("%d+")
    t.eq(banger.proc.run({ "debugfs", "-w", "-R", "freeb " .. block, path }).code, 0)
    t.truthy(banger.proc.run({ "e2fsck", "-fn", path }).code ~= 0, "the disk is inconsistent")
    t.write(path .. ".refreshing", "")
    t.write(home .. "/disk.lua", string.format([[
print(require("banger.provision").refresh_disk({ name = "box" }, { path = %q, format = "raw" },
  { public_key = "ssh-ed25519 AAAAk banger\n", file_sync = {} }))
]], path))
    local r = t.banger({ "run", home .. "/disk.lua" }, { home = home })
    t.eq({ r.code, r.stdout }, { 0, "true\n" }, r.stderr)
    local fsck = banger.proc.run({ "e2fsck", "-fn", path })
    t.eq(fsck.code, 0, fsck.stdout)
    t.falsy(banger.fs.exists(path .. ".refreshing"))
    t.contains(t.read(home .. "/.local/state/banger/banger.log"), "an earlier refresh did not finish: checking the work disk")
    local img <close> = banger.ext4.open(path)
    t.eq(#img:read("/data"), 100000)
    t.eq(img:read("/.ssh/authorized_keys"), "ssh-ed25519 AAAAk banger\n")
  end)
end)
