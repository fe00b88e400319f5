-- The image store through the CLI: import from tarballs, register, list,
-- show, rm; failures publish nothing.
local function tarball(dir, files, out)
  for path, content in pairs(files) do
    t.write(dir .. "/" .. path, content)
  end
  local r = banger.proc.run({ "tar", "-C", dir, "--owner=0", "--group=0", "--numeric-owner", "-czf", out, "." })
  t.eq(r.code, 0, r.stderr)
  return out
end

describe("image import", function()
  it("builds, lists, shows and removes an image", function()
    local home = t.tmpdir()
    local l1 = tarball(t.tmpdir(), { ["etc/os-release"] = "ID=test\n", ["bin/tool"] = "x" }, home .. "/l1.tgz")
    local l2 = tarball(t.tmpdir(), { ["etc/.wh.os-release"] = "", ["etc/motd"] = "hello\n" }, home .. "/l2.tgz")
    local r = t.banger({ "image", "import", "--name", "img1", l1, l2, "--json" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    local row = banger.json.decode(r.stdout)
    t.eq(row.name, "img1")
    local fsys <close> = banger.ext4.open(row.rootfs_path)
    t.eq(fsys:read("/etc/motd"), "hello\n")
    t.falsy(fsys:exists("/etc/os-release"), "the whiteout removed it")
    t.eq(fsys:stat("/bin/tool").uid, 0)
    local list = banger.json.decode(t.banger({ "image", "list", "--json" }, { home = home }).stdout)
    t.eq(#list, 1)
    t.eq(banger.json.decode(t.banger({ "image", "show", "img1", "--json" }, { home = home }).stdout).name, "img1")
    t.eq(t.banger({ "image", "import", "--name", "img1", l1 }, { home = home }).code, 1, "names are unique")
    t.eq(t.banger({ "image", "rm", "img1" }, { home = home }).code, 0)
    t.eq(t.banger({ "image", "list", "--json" }, { home = home }).stdout, "[]\n")
    t.eq(banger.fs.list(home .. "/.local/state/banger/images"), {})
  end)

  it("a hostile layer fails the import and leaves no image or file", function()
    local home = t.tmpdir()
    local src = t.tmpdir()
    banger.fs.symlink("../../../../etc", src .. "/evil")
    local bad = home .. "/bad.tar"
    t.eq(banger.proc.run({ "tar", "-C", src, "-cf", bad, "." }).code, 0)
    local r = t.banger({ "image", "import", "--name", "evil", bad }, { home = home })
    t.eq(r.code, 1)
    t.contains(r.stderr, "layer " .. bad .. ": entry ./evil: symlink to ../../../../etc escapes the image root")
    t.eq(t.banger({ "image", "list", "--json" }, { home = home }).stdout, "[]\n")
    t.eq(banger.fs.list(home .. "/.local/state/banger/images"), {})
  end)

  it("rejects bad names and missing flags", function()
    local home = t.tmpdir()
    local r = t.banger({ "image", "import", "--name", "../x", "/dev/null" }, { home = home })
    t.eq(r.code, 1)
    t.contains(r.stderr, "invalid image name")
    t.eq(t.banger({ "image", "import", "/dev/null" }, { home = home }).code, 2)
  end)
end)
