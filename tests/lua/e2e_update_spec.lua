-- banger update end to end: two real builds of this tree (A: the build
-- under test, B: the same sources stamped one patch version higher),
-- released by scripts/release, served by busybox httpd on 127.0.0.1; A
-- installed in the release layout under a temp prefix.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local json_doc = assert(loadfile(t.source_dir() .. "/tests/lua/json_doc.lua", "t", _ENV))()

local OWNER = 65534

local function run(argv, what)
  local r = banger.proc.run(argv)
  t.eq(r.code, 0, (what or argv[1]) .. ": " .. r.stderr)
  return r
end

local function sha256(path)
  return banger.proc.run({ "sha256sum", path }).stdout:match("^(%x+)")
end

-- scripts/release (docs/install.md, "Making a release") with a fast zstd
-- level; returns the seconds it took.
local function release(args)
  local argv = { t.source_dir() .. "/scripts/release", "--zstd-level", "3", timeout_ms = 1800000 }
  table.move(args, 1, #args, #argv + 1, argv)
  local start = banger.sys.monotonic_ms()
  run(argv, "scripts/release " .. table.concat(args, " "))
  return (banger.sys.monotonic_ms() - start) / 1000
end

-- banger-<v>-linux-amd64.tar.zst of a staged tree, entries relative to it
-- (the crash test's padded bundle).
local function bundle(stage, out)
  local names = banger.fs.list(stage)
  local argv = { "tar", "--zstd", "--owner=0", "--group=0", "-C", stage, "-cf", out }
  table.move(names, 1, #names, #argv + 1, argv)
  run(argv, "tar")
  return out
end

local function keypair(dir, name)
  local key = dir .. "/" .. name .. ".pem"
  run({ "openssl", "genpkey", "-algorithm", "ed25519", "-out", key })
  run({ "openssl", "pkey", "-in", key, "-pubout", "-out", dir .. "/" .. name .. ".pub.pem" })
  return key, dir .. "/" .. name .. ".pub.pem"
end

local function sign(key, file)
  run({ "openssl", "pkeyutl", "-sign", "-rawin", "-inkey", key, "-in", file, "-out", file .. ".sig" })
end

local fixture

-- Built once per file with scripts/release: A packed from the build under
-- test (--no-build), B built from the same sources one patch version up,
-- in a build directory beside the build under test (same depth: ccache
-- gives it the objects the build under test compiled; kept for the next
-- run, so only the build stamp and the links are redone). Two keys.
local function fixtures()
  if fixture then
    return fixture
  end
  local dir = banger.fs.mkdtemp("banger-update-fixture-")
  banger.proc.run({ "chmod", "0755", dir }) -- the public key is read by another uid too
  local build = assert(os.getenv("BANGER_BUILD_DIR"), "BANGER_BUILD_DIR")
  local a = banger.json.decode(run({ t.bin(), "version", "--json" }).stdout)
  local major, minor, patch = a.version:match("^(%d+)%.(%d+)%.(%d+)")
  local b = string.format("%s.%s.%d", major, minor, tonumber(patch) + 1)
  local f = { dir = dir, A = a.version, B = b, protocol = a.helper_protocol, bundle = {}, out = {} }
  f.key, f.pub = keypair(dir, "release")
  f.other_key = keypair(dir, "other")
  f.out[f.A], f.out[f.B] = dir .. "/release-" .. f.A, dir .. "/release-" .. f.B
  local a_seconds = release({ "--key", f.key, "--build-dir", build, "--no-build", "--out", f.out[f.A] })
  local build_b = build .. "-update-" .. b
  banger.fs.mkdir(build_b, 493, true)
  local lock <close> = banger.fs.lock(build_b .. "/.update-spec.lock")
  local b_seconds = release({ "--key", f.key, "--version", b, "--build-dir", build_b, "--out", f.out[f.B] })
  io.stderr:write(string.format("  scripts/release: %s (--no-build) %.1f s, %s (build) %.1f s\n", f.A, a_seconds, b,
    b_seconds))
  for _, v in ipairs({ f.A, f.B }) do
    f.bundle[v] = f.out[v] .. "/banger-" .. v .. "-linux-amd64.tar.zst"
    t.truthy(banger.fs.exists(f.bundle[v]), "scripts/release wrote " .. f.bundle[v])
  end
  fixture = f
  return f
end

-- `version`'s manifest as scripts/release wrote it, with its artifact's
-- size and sha256 those of f.bundle[version] and `fields` replaced.
local function manifest(f, version, fields)
  local m = banger.json.decode(t.read(f.out[version] .. "/manifest.json"))
  local path = f.bundle[version]
  m.artifacts[1].size = banger.fs.stat(path).size
  m.artifacts[1].sha256 = sha256(path)
  for k, v in pairs(fields or {}) do
    m[k] = v
  end
  return banger.json.encode(m)
end

-- A channel directory: each of `versions` with its signed manifest and
-- bundle; latest.json is `latest`'s. opts: key (signing key), manifest
-- fields per version, tamper(dir) run after signing.
local function channel(f, versions, latest, opts)
  opts = opts or {}
  local dir = t.tmpdir()
  for _, v in ipairs(versions) do
    banger.fs.mkdir(dir .. "/" .. v, 493, true)
    run({ "cp", f.bundle[v], dir .. "/" .. v .. "/banger-" .. v .. "-linux-amd64.tar.zst" })
    local fields = opts.fields and opts.fields[v]
    if not fields and not opts.key and f.bundle[v] == f.out[v] .. "/banger-" .. v .. "-linux-amd64.tar.zst" then
      -- the release exactly as scripts/release signed it
      run({ "cp", f.out[v] .. "/manifest.json", f.out[v] .. "/manifest.json.sig", dir .. "/" .. v .. "/" })
    else
      t.write(dir .. "/" .. v .. "/manifest.json", manifest(f, v, fields))
      sign(opts.key or f.key, dir .. "/" .. v .. "/manifest.json")
    end
  end
  run({ "cp", dir .. "/" .. latest .. "/manifest.json", dir .. "/latest.json" })
  run({ "cp", dir .. "/" .. latest .. "/manifest.json.sig", dir .. "/latest.json.sig" })
  if opts.tamper then
    opts.tamper(dir)
  end
  banger.proc.run({ "chmod", "-R", "a+rX", dir })
  return dir
end

local function serve(dir)
  return e2e.serve(dir, "latest.json")
end

-- A release install of `version` under a fresh prefix, the way install.sh
-- lays it out; and a home whose config trusts the test key and `url`.
local function install(f, version)
  local prefix = t.tmpdir()
  local tree = prefix .. "/lib/banger/versions/" .. version
  banger.fs.mkdir(tree, 493, true)
  run({ "tar", "--zstd", "-C", tree, "-xf", f.bundle[version] })
  banger.fs.symlink("versions/" .. version, prefix .. "/lib/banger/current")
  banger.fs.mkdir(prefix .. "/bin", 493)
  banger.fs.symlink("../lib/banger/current/bin/banger", prefix .. "/bin/banger")
  return prefix
end

local function home_for(f, url, extra)
  local home = t.tmpdir()
  t.write(home .. "/.config/banger/config.lua", string.format(
    'return { network = { mode = "off" }, update = { channel = %q, public_key = %q }%s }\n', url, f.pub, extra or ""))
  return home
end

local function banger_at(prefix, home, args, opts)
  local argv = { prefix .. "/bin/banger" }
  table.move(args, 1, #args, 2, argv)
  argv.env = t.env(home)
  argv.cwd = home
  argv.timeout_ms = 300000
  if opts and opts.as_owner then
    table.move(argv, 1, #argv, 5)
    argv[1], argv[2], argv[3], argv[4] = "setpriv", "--reuid=" .. OWNER, "--regid=" .. OWNER, "--clear-groups"
  end
  return banger.proc.run(argv)
end

local function version_at(prefix, home)
  local r = banger_at(prefix, home, { "version", "--json" })
  t.eq(r.code, 0, r.stderr)
  return banger.json.decode(r.stdout).version
end

local function links(prefix)
  local readlink = require("banger.native.fs").readlink -- nil for a missing link
  return { readlink(prefix .. "/lib/banger/current"), (readlink(prefix .. "/lib/banger/previous")) }
end

-- versions/ holds exactly `expected` (sorted): nothing partial, no journal.
local function versions_are(prefix, expected)
  local names = banger.fs.list(prefix .. "/lib/banger/versions")
  table.sort(names)
  table.sort(expected)
  t.eq(names, expected, "versions/ content")
  for _, n in ipairs(banger.fs.list(prefix .. "/lib/banger")) do
    t.falsy(n:find(".new-", 1, true), "a leftover symlink " .. n)
  end
end

describe("banger update", function()
  it("--check, update, --rollback, --to between two real builds", function()
    local f = fixtures()
    local httpd, url = serve(channel(f, { f.A, f.B }, f.B))
    local prefix = install(f, f.A)
    local home = home_for(f, url)

    local check = banger_at(prefix, home, { "update", "--check", "--json" })
    t.eq(check.code, 0, check.stderr)
    local c = json_doc.conforms("update --check", check.stdout)
    t.eq({ c.current, c.available, c.update_available }, { f.A, f.B, true })

    local up = banger_at(prefix, home, { "update", "--yes", "--json" })
    t.eq(up.code, 0, up.stderr)
    local u = json_doc.conforms("update", up.stdout)
    t.eq({ u.from, u.to, u.previous, u.changed }, { f.A, f.B, f.A, true })
    t.eq(version_at(prefix, home), f.B)
    t.eq(links(prefix), { "versions/" .. f.B, "versions/" .. f.A })
    versions_are(prefix, { f.A, f.B })

    local again = banger_at(prefix, home, { "update", "--check" })
    t.eq(again.code, 1, again.stderr)
    t.contains(again.stdout, "up to date")

    local back = banger_at(prefix, home, { "update", "--rollback", "--yes", "--json" })
    t.eq(back.code, 0, back.stderr)
    local rb = json_doc.conforms("update --rollback", back.stdout)
    t.eq({ rb.from, rb.to, rb.previous }, { f.B, f.A, f.B })
    t.eq(version_at(prefix, home), f.A)
    t.eq(links(prefix), { "versions/" .. f.A, "versions/" .. f.B })

    -- --to the version already unpacked: switched without a download
    local to = banger_at(prefix, home, { "update", "--to", f.B, "--yes" })
    t.eq(to.code, 0, to.stderr)
    t.eq(version_at(prefix, home), f.B)
    versions_are(prefix, { f.A, f.B })
    httpd:kill(9)
    httpd:wait()
  end)

  it("install.sh installs A and records its channel; update reads it when config names none", function()
    local f = fixtures()
    local httpd, url = serve(channel(f, { f.A, f.B }, f.B))
    local prefix = t.tmpdir()
    local function install_sh(version)
      run({ "sh", t.source_dir() .. "/dist/install.sh", "--channel", url, "--version", version, "--prefix", prefix,
        "--pubkey", f.pub }, "install.sh " .. version)
    end
    install_sh(f.A)
    t.eq(t.read(prefix .. "/lib/banger/channel"), url .. "\n")
    -- only the key: A's compiled-in key is the project's, the channel is the test's
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/config.lua",
      string.format('return { network = { mode = "off" }, update = { public_key = %q } }\n', f.pub))
    local check = banger_at(prefix, home, { "update", "--check", "--json" })
    t.eq(check.code, 0, check.stderr)
    local c = json_doc.conforms("update --check", check.stdout)
    t.eq({ c.current, c.available, c.channel }, { f.A, f.B, url })
    local up = banger_at(prefix, home, { "update", "--yes" })
    t.eq(up.code, 0, up.stderr)
    t.eq(version_at(prefix, home), f.B)
    t.eq(links(prefix), { "versions/" .. f.B, "versions/" .. f.A })
    -- install.sh back to A between two real versions keeps B as previous
    install_sh(f.A)
    t.eq(version_at(prefix, home), f.A)
    t.eq(links(prefix), { "versions/" .. f.A, "versions/" .. f.B })
    -- a recorded channel that is not a URL is refused, not fetched
    t.write(prefix .. "/lib/banger/channel", "/etc/passwd\n")
    local bad = banger_at(prefix, home, { "update", "--check" })
    t.eq(bad.code, 3, bad.stderr)
    t.contains(bad.stderr, "not an http(s) or file URL")
    httpd:kill(9)
    httpd:wait()
  end)

  it("without a terminal and without --yes, asks nothing and changes nothing", function()
    local f = fixtures()
    local httpd, url = serve(channel(f, { f.A, f.B }, f.B))
    local prefix = install(f, f.A)
    local home = home_for(f, url)
    local r = banger_at(prefix, home, { "update" })
    httpd:kill(9)
    httpd:wait()
    t.eq(r.code, 2, r.stderr)
    t.contains(r.stderr, "use --yes")
    t.eq(version_at(prefix, home), f.A)
    versions_are(prefix, { f.A })
  end)

  -- Each attack against an install of A; nothing may change.
  local function refused(opts)
    local f = fixtures()
    local site = opts.site(f)
    local httpd, url = serve(site)
    local prefix = install(f, opts.installed or f.A)
    local home = home_for(f, url)
    local r = banger_at(prefix, home, opts.args or { "update", "--yes" })
    httpd:kill(9)
    httpd:wait()
    t.eq(r.code, 1, r.stderr)
    t.contains(r.stderr, opts.message)
    t.eq(version_at(prefix, home), opts.installed or f.A)
    t.eq(links(prefix), { "versions/" .. (opts.installed or f.A), nil })
    versions_are(prefix, { opts.installed or f.A })
    return prefix, home, f
  end

  it("refuses a tampered bundle", function()
    refused({
      site = function(f)
        return channel(f, { f.B }, f.B, { tamper = function(dir)
          local p = dir .. "/" .. f.B .. "/banger-" .. f.B .. "-linux-amd64.tar.zst"
          local bytes = t.read(p)
          t.write(p, bytes:sub(1, 999) .. string.char(bytes:byte(1000) ~ 0xff) .. bytes:sub(1001))
        end })
      end,
      message = "sha256 is ",
    })
  end)

  it("refuses a tampered manifest", function()
    refused({
      site = function(f)
        return channel(f, { f.B }, f.B, { tamper = function(dir)
          -- points the signed manifest at another bundle of the same size
          local text = t.read(dir .. "/latest.json")
          local changed, n = text:gsub('("sha256"%s*:%s*")%x+"', '%1' .. string.rep("ab", 32) .. '"')
          t.eq(n, 1, "the artifact's sha256 was replaced")
          t.write(dir .. "/latest.json", changed)
        end })
      end,
      message = "is not signed by the release key",
    })
  end)

  it("refuses a manifest signed by another key", function()
    refused({
      site = function(f)
        return channel(f, { f.B }, f.B, { key = f.other_key })
      end,
      message = "is not signed by the release key",
    })
  end)

  it("refuses a truncated download and one longer than the manifest says", function()
    local truncate = function(size)
      return function(f)
        return channel(f, { f.B }, f.B, { tamper = function(dir)
          local p = dir .. "/" .. f.B .. "/banger-" .. f.B .. "-linux-amd64.tar.zst"
          run({ "truncate", "-s", size, p })
        end })
      end
    end
    local f = fixtures()
    local size = banger.fs.stat(f.bundle[f.B]).size
    refused({ site = truncate(tostring(size - 4096)), message = ": " .. (size - 4096) .. " bytes, expected " .. size })
    refused({ site = truncate("+4096"), message = "larger than the allowed " .. size .. " bytes" })
  end)

  it("refuses a downgrade offered as the latest release, and takes it with --to", function()
    local f = fixtures()
    local prefix, home = refused({
      installed = f.B,
      site = function(ff)
        return channel(ff, { ff.A, ff.B }, ff.A)
      end,
      message = "refusing to downgrade",
    })
    local httpd, url = serve(channel(f, { f.A, f.B }, f.A))
    home = home_for(f, url)
    local r = banger_at(prefix, home, { "update", "--to", f.A, "--yes" })
    httpd:kill(9)
    httpd:wait()
    t.eq(r.code, 0, r.stderr)
    t.eq(version_at(prefix, home), f.A)
    t.eq(links(prefix), { "versions/" .. f.A, "versions/" .. f.B })
  end)

  it("kill -9 while unpacking leaves current intact; the next update cleans up and succeeds", function()
    local f = fixtures()
    -- A bundle with 128 MiB of incompressible padding keeps the unpack
    -- going long enough to be caught by polling the versions directory.
    local stage = t.tmpdir() .. "/stage"
    banger.fs.mkdir(stage, 493)
    run({ "tar", "--zstd", "-C", stage, "-xf", f.bundle[f.B] })
    run({ "dd", "if=/dev/urandom", "of=" .. stage .. "/share/banger/padding", "bs=1M", "count=128", "status=none" })
    local padded = f.dir .. "/padded-" .. f.B .. ".tar.zst"
    bundle(stage, padded)
    local big = { bundle = { [f.A] = f.bundle[f.A], [f.B] = padded }, out = f.out, key = f.key }
    local httpd, url = serve(channel(big, { f.B }, f.B))
    local prefix = install(f, f.A)
    local home = home_for(f, url)
    local versions = prefix .. "/lib/banger/versions"
    local log = home .. "/update.stderr"
    local argv = { prefix .. "/bin/banger", "update", "--yes", env = t.env(home), cwd = home,
      stdout = "null", stderr = { file = log } }
    local child = t.spawn(argv)
    -- Polled every millisecond: the kill must land while the tree is being
    -- written, not after; a child that ends first fails the test.
    local list = require("banger.native.fs").list
    local partial
    local deadline = banger.sys.monotonic_ms() + 120000
    while not partial do
      for _, n in ipairs(list(versions) or {}) do
        if n:match("^" .. f.B:gsub("%.", "%%.") .. "%.partial%-") and #(list(versions .. "/" .. n) or {}) > 0 then
          partial = n
        end
      end
      if not partial then
        local ended, st = pcall(child.wait, child, 0)
        t.falsy(ended and st, "the update ended before the unpack was seen: " .. tostring(t.read(log)))
        t.truthy(banger.sys.monotonic_ms() < deadline, "timed out waiting for versions/" .. f.B .. ".partial-*")
        banger.sys.sleep_ms(1)
      end
    end
    child:kill(9)
    child:wait()
    t.truthy(banger.fs.exists(versions .. "/" .. partial), "the interrupted unpack is still there")
    t.eq(version_at(prefix, home), f.A)
    t.eq(links(prefix), { "versions/" .. f.A, nil })

    local r = banger_at(prefix, home, { "update", "--yes" })
    httpd:kill(9)
    httpd:wait()
    t.eq(r.code, 0, r.stderr)
    t.eq(version_at(prefix, home), f.B)
    versions_are(prefix, { f.A, f.B })
  end)

  it("refuses to run from a build tree, saying how banger was installed", function()
    local r = t.banger({ "update", "--yes" })
    t.eq(r.code, 1)
    t.contains(r.stderr, "from a build tree")
  end)

  describe("with a root helper whose protocol the new version does not speak", function()
    local helper
    after_each(function()
      if helper then
        helper:kill(15)
        helper:wait(10000)
        helper = nil
      end
    end)

    -- A's helper on a socket of its own, and a channel whose B says its
    -- helper speaks another protocol.
    local function setup()
      local f = fixtures()
      local parent = t.tmpdir()
      banger.proc.run({ "chmod", "0755", parent })
      local sock = parent .. "/run/helper.sock"
      local prefix = install(f, f.A)
      helper = t.spawn({ prefix .. "/lib/banger/current/sbin/banger-helper", "--socket", sock, "--owner",
        OWNER .. ":" .. OWNER, stderr = "null" })
      t.wait_for(function() return banger.fs.exists(sock) end, 30000, "the helper's socket")
      local httpd, url = serve(channel(f, { f.A, f.B }, f.B, { fields = { [f.B] = { helper_protocol = f.protocol + 1 } } }))
      local home = home_for(f, url, string.format(", helper = { socket = %q }", sock))
      banger.proc.run({ "chmod", "0755", prefix, home })
      return f, prefix, home, httpd
    end

    it("a user is told the exact commands and nothing changes", function()
      local f, prefix, home, httpd = setup()
      t.env(home)
      banger.proc.run({ "chown", "-R", OWNER .. ":" .. OWNER, prefix, home })
      local r = banger_at(prefix, home, { "update", "--yes" }, { as_owner = true })
      httpd:kill(9)
      httpd:wait()
      t.eq(r.code, 1, r.stderr)
      t.contains(r.stderr, "run: sudo banger update && sudo banger system install")
      t.contains(r.stderr, "speaks protocol " .. (f.protocol + 1))
      t.eq(version_at(prefix, home), f.A)
      versions_are(prefix, { f.A })
    end)

    it("root switches and reinstalls the helper from the new version", function()
      local f, prefix, home, httpd = setup()
      local root = t.tmpdir()
      local inst = banger_at(prefix, home, { "system", "install", "--owner", tostring(OWNER), "--root", root,
        "--no-start" })
      t.eq(inst.code, 0, inst.stderr)
      t.contains(t.read(root .. "/etc/systemd/system/banger-helper.service"), "/versions/" .. f.A .. "/sbin/banger-helper")
      local r = banger_at(prefix, home, { "update", "--yes", "--system-root", root, "--json" })
      httpd:kill(9)
      httpd:wait()
      t.eq(r.code, 0, r.stderr)
      t.eq(banger.json.decode(r.stdout).helper, "reinstalled")
      t.eq(version_at(prefix, home), f.B)
      t.contains(t.read(root .. "/etc/systemd/system/banger-helper.service"), "/versions/" .. f.B .. "/sbin/banger-helper")
      t.eq(banger.json.decode(t.read(root .. "/etc/banger/install.json")).version, f.B)
    end)
  end)
end)

-- The fixture directory outlives each test; removed with the file.
local finish = t._finish_file
function t._finish_file()
  if fixture then
    banger.fs.remove_tree(fixture.dir)
  end
  return finish()
end
