-- Workspaces both ways on a real guest: vm run copies the repository in,
-- the command changes it, export brings the changes back as a patch that
-- git applies (and as a tarball), prepare copies new files into the running VM.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local json_doc = assert(loadfile(t.source_dir() .. "/tests/lua/json_doc.lua", "t", _ENV))()

local function git(dir, ...)
  local r = banger.proc.run({ "git", "-C", dir, ... })
  t.eq(r.code, 0, r.stderr)
  return r.stdout
end

describe("vm workspace", function()
  it("exports the guest's changes as a patch and a tarball, and prepares new files", function()
    local home = e2e.home()
    local dir = home .. "/proj"
    banger.fs.mkdir(dir, 493, true)
    git(dir, "init", "-q")
    git(dir, "config", "user.email", "t@example.com")
    git(dir, "config", "user.name", "t")
    t.write(dir .. "/data.txt", "one\n")
    t.write(dir .. "/gone.txt", "bye\n")
    git(dir, "add", ".")
    git(dir, "commit", "-q", "-m", "init")

    local run = t.banger({ "vm", "run", "--name", "ws", "--image", "tiny", "--", "sh", "-c",
      "echo two >> data.txt && echo new > new.txt && rm gone.txt" }, { home = home, cwd = dir, timeout_ms = 180000 })
    t.eq(run.code, 0, run.stderr)

    local patch = t.banger({ "vm", "workspace", "export", "ws" }, { home = home, cwd = dir })
    t.eq(patch.code, 0, patch.stderr)
    t.contains(patch.stdout, "diff --git a/data.txt b/data.txt")
    t.contains(patch.stdout, "+two")
    t.contains(patch.stdout, "diff --git a/new.txt b/new.txt")
    t.contains(patch.stdout, "diff --git a/gone.txt b/gone.txt")
    t.contains(patch.stderr, "2 changed or new file(s), 1 deleted")
    t.write(home .. "/ws.patch", patch.stdout)
    git(dir, "apply", home .. "/ws.patch")
    t.eq(t.read(dir .. "/data.txt"), "one\ntwo\n")
    t.eq(t.read(dir .. "/new.txt"), "new\n")
    t.falsy(banger.fs.exists(dir .. "/gone.txt"))

    local tar = t.banger({ "vm", "workspace", "export", "ws", "--format", "tar", "-o", home .. "/ws.tar" },
      { home = home, cwd = dir })
    t.eq(tar.code, 0, tar.stderr)
    local listing = banger.proc.run({ "tar", "-tf", home .. "/ws.tar" }).stdout
    -- the host now has the guest's changes applied: nothing differs any more
    t.eq(listing, "")

    t.write(dir .. "/later.txt", "added later\n")
    git(dir, "add", "later.txt")
    local prep = t.banger({ "vm", "workspace", "prepare", "ws", "--json" }, { home = home, cwd = dir })
    t.eq(prep.code, 0, prep.stderr)
    local prepared = json_doc.conforms("vm workspace prepare", prep.stdout)
    t.eq({ prepared.vm, prepared.guest }, { "ws", "/root/proj" })
    local cat = t.banger({ "vm", "exec", "ws", "--", "cat", "/root/proj/later.txt" }, { home = home })
    t.eq(cat.stdout, "added later\n", cat.stderr)
    t.eq(t.banger({ "vm", "delete", "-f", "ws" }, { home = home }).code, 0)
  end)
end)
