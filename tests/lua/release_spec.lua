-- scripts/release and dist/install.sh with real openssl, tar and zstd: the
-- release is packed from the already built tree (--no-build) with a key made
-- here, installed into temporary prefixes, and install.sh is shown to
-- refuse tampered or foreign releases without touching the prefix.
local src = t.source_dir()
local build = assert(os.getenv("BANGER_BUILD_DIR"), "BANGER_BUILD_DIR")

local function sh(script, ...)
  local argv = { "sh", "-c", script, "sh", ... }
  argv.timeout_ms = 600000
  return banger.proc.run(argv)
end

local function ok(script, ...)
  local r = sh(script, ...)
  t.eq(r.code, 0, script .. ": " .. r.stderr)
  return r.stdout
end

local function bash(script, ...)
  local r = banger.proc.run({ "bash", "-c", script, "bash", ... })
  t.eq(r.code, 0, script .. ": " .. r.stderr)
  return r.stdout
end

local function genkey(path)
  ok('openssl genpkey -algorithm ed25519 -out "$1" && chmod 600 "$1"', path)
  ok('openssl pkey -in "$1" -pubout -out "$1.pub"', path)
  return path
end

-- Every entry under a prefix with its type, link target, size, mode and
-- mtime: equal listings mean nothing was added, removed, replaced or touched.
local function listing(prefix)
  return ok('[ -e "$1" ] || { echo absent; exit 0; }; cd "$1" && find . -printf "%p %y %l %s %m %T@\\n" | sort', prefix)
end

-- scripts/release on the built tree (no configure or build) with a fast
-- compression level, plus `args`.
local function run_release(args)
  local argv = { src .. "/scripts/release", "--build-dir", build, "--no-build", "--zstd-level", "3",
    timeout_ms = 900000 }
  for _, a in ipairs(args) do
    argv[#argv + 1] = a
  end
  return banger.proc.run(argv)
end

local version = banger.json.decode(ok('"$1" version --json', t.bin())).version

-- One release of the built tree into a channel, shared by the tests below
-- (packing takes most of this file's time; the time is printed). Its
-- directory outlives each test's own, so it is removed when the runner's
-- Lua state closes.
local rel
local shared_dir = setmetatable({}, { __gc = function(self)
  if self.path then banger.fs.remove_tree(self.path) end
end })
local function release()
  if rel then return rel end
  shared_dir.path = banger.fs.mkdtemp("banger-test-release-")
  local dir = shared_dir.path
  rel = { dir = dir, key = genkey(dir .. "/key.pem"), channel = dir .. "/channel", out = dir .. "/out" }
  local started = banger.sys.monotonic_ms()
  local r = run_release({ "--key", rel.key, "--out", rel.out, "--channel", rel.channel })
  rel.ms = banger.sys.monotonic_ms() - started
  t.eq(r.code, 0, r.stderr)
  print(string.format("    scripts/release --no-build took %d ms", rel.ms))
  rel.name = "banger-" .. version .. "-linux-amd64.tar.zst"
  rel.vdir = rel.channel .. "/" .. version
  return rel
end

-- A copy of the channel for a test to tamper with.
local function channel_copy()
  local r = release()
  local c = t.tmpdir() .. "/channel"
  ok('cp -a "$1" "$2"', r.channel, c)
  return c
end

local function install(channel, prefix, ...)
  local argv = { "sh", channel .. "/install.sh", "--channel", channel, "--prefix", prefix, ... }
  argv.timeout_ms = 300000
  return banger.proc.run(argv)
end

-- A fresh prefix holding the shared release, installed by install.sh once
-- and copied for each test that needs one.
local function installed_prefix()
  local r = release()
  if not r.installed then
    r.installed = r.dir .. "/installed"
    local res = install(r.channel, r.installed)
    t.eq(res.code, 0, res.stderr)
  end
  local prefix = t.tmpdir() .. "/prefix"
  ok('cp -a "$1" "$2"', r.installed, prefix)
  return prefix
end

describe("scripts/release", function()
  it("signs a manifest that openssl verifies and that names the bundle's size and sha256", function()
    local r = release()
    local manifest = t.read(r.vdir .. "/manifest.json")
    local m = banger.json.decode(manifest)
    local built = banger.json.decode(ok('"$1" version --json', t.bin()))
    t.eq(m.schema, 1)
    t.eq(m.version, built.version)
    t.eq(m.commit, built.commit)
    t.eq(m.built_at, built.built_at)
    t.eq(m.helper_protocol, built.helper_protocol)
    t.eq(#m.artifacts, 1)
    local a = m.artifacts[1]
    t.eq(a.name, r.name)
    t.eq(a.os, "linux")
    t.eq(a.arch, "amd64")
    t.eq(a.url, r.name) -- relative to the manifest: the bundle lies beside it
    t.eq(a.size, banger.fs.stat(r.vdir .. "/" .. r.name).size)
    t.eq(a.sha256, ok('sha256sum "$1" | cut -d" " -f1', r.vdir .. "/" .. r.name):gsub("\n", ""))
    t.eq(banger.fs.stat(r.vdir .. "/manifest.json.sig").size, 64)
    ok('openssl pkeyutl -verify -rawin -pubin -inkey "$1" -in "$2/manifest.json" -sigfile "$2/manifest.json.sig"',
      r.key .. ".pub", r.vdir)
    -- latest.json is the newest release's manifest, byte for byte, and its
    -- bundle lies beside it too (the relative url resolves from either)
    t.eq(t.read(r.channel .. "/latest.json"), manifest)
    t.eq(t.read(r.channel .. "/latest.json.sig"), t.read(r.vdir .. "/manifest.json.sig"))
    t.eq(t.read(r.channel .. "/" .. r.name), t.read(r.vdir .. "/" .. r.name))
    -- --out holds the same three files
    for _, f in ipairs({ r.name, "manifest.json", "manifest.json.sig" }) do
      t.eq(t.read(r.out .. "/" .. f), t.read(r.vdir .. "/" .. f), f)
    end
    -- the channel's install.sh trusts the key this channel is signed with
    local pub = t.read(r.key .. ".pub"):match("\n(.-)\n")
    t.contains(t.read(r.channel .. "/install.sh"), pub)
    t.not_contains(t.read(src .. "/dist/install.sh"), pub)
  end)

  it("packs only relative entries of the version tree, owned by 0:0, with the expected files", function()
    local r = release()
    local bundle = r.vdir .. "/" .. r.name
    local entries = ok('zstd -dcq "$1" | tar -tvf - --numeric-owner', bundle)
    local files = {}
    for line in entries:gmatch("[^\n]+") do
      local mode, owner, path = line:match("^(%S+)%s+(%S+)%s+%S+%s+%S+%s+%S+%s+(.+)$")
      t.truthy(mode, "unparsed entry: " .. line)
      t.truthy(mode:sub(1, 1) == "-" or mode:sub(1, 1) == "d", "not a file or directory: " .. line)
      t.eq(owner, "0/0", line)
      t.falsy(path:match("^/"), "absolute: " .. path)
      t.falsy(("/" .. path .. "/"):match("/%.%./"), "'..' in " .. path)
      t.falsy(path:match("^%./"), "entries are named without ./: " .. path)
      if mode:sub(1, 1) == "-" then files[#files + 1] = path end
    end
    table.sort(files)
    local expected = { "bin/banger", "libexec/banger/banger-agent", "sbin/banger-helper" }
    for f in ok('cd "$1/lua" && find stdlib recipes api -type f', src):gmatch("[^\n]+") do
      expected[#expected + 1] = "share/banger/lua/" .. f
    end
    table.sort(expected)
    t.eq(files, expected)
  end)

  it("packs a tree that runs from anywhere and uses its own Lua tree", function()
    local r = release()
    local elsewhere = t.tmpdir() .. "/some/other/place"
    ok('mkdir -p "$2" && zstd -dcq "$1" | tar -xf - -C "$2"', r.vdir .. "/" .. r.name, elsewhere)
    local home = t.tmpdir()
    t.write(home .. "/probe.lua", "print(banger.sys.lua_dir())\n")
    -- t.env replaces the environment: no BANGER_LUA_DIR reaches it
    local v = banger.proc.run({ elsewhere .. "/bin/banger", "version", "--json", env = t.env(home), cwd = "/" })
    t.eq(v.code, 0, v.stderr)
    t.eq(banger.json.decode(v.stdout).version, version)
    local p = banger.proc.run({ elsewhere .. "/bin/banger", "run", home .. "/probe.lua", env = t.env(home), cwd = "/" })
    t.eq(p.code, 0, p.stderr)
    t.eq(p.stdout, elsewhere .. "/share/banger/lua\n")
  end)

  it("gives the same bytes when run twice on the same build", function()
    local r = release()
    local out2 = t.tmpdir()
    -- the same key, readable by others this time: warned about, still used
    local key = out2 .. "/key.pem"
    ok('cp "$1" "$2" && chmod 644 "$2"', r.key, key)
    local again = run_release({ "--key", key, "--out", out2 })
    t.eq(again.code, 0, again.stderr)
    t.contains(again.stderr, "is readable by others (mode 644)")
    for _, f in ipairs({ r.name, "manifest.json", "manifest.json.sig" }) do
      t.eq(t.read(out2 .. "/" .. f), t.read(r.out .. "/" .. f), f)
    end
  end)

  it("refuses a key that is not an Ed25519 private key, and a version the channel has", function()
    local r = release()
    local dir = t.tmpdir()
    ok('openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out "$1/rsa.pem"', dir)
    local cases = {
      { key = dir .. "/rsa.pem", err = "is not an Ed25519 key" },
      { key = r.key .. ".pub", err = "is not a PEM private key" },
      { key = dir .. "/missing.pem", err = "cannot read key" },
    }
    for _, c in ipairs(cases) do
      local res = run_release({ "--key", c.key, "--out", dir .. "/out" })
      t.eq(res.code, 1, c.key)
      t.contains(res.stderr, c.err)
    end
    local res = run_release({ "--key", r.key, "--version", "9.9.9", "--out", dir .. "/out" })
    t.eq(res.code, 1)
    t.contains(res.stderr, "calls itself " .. version .. ", not 9.9.9")
    t.falsy(banger.fs.exists(dir .. "/out"), "nothing written")
    local before = listing(r.channel)
    res = run_release({ "--key", r.key, "--channel", r.channel })
    t.eq(res.code, 1)
    t.contains(res.stderr, "the channel already has " .. version)
    t.eq(listing(r.channel), before)
  end)

  it("warns when the source tree has uncommitted changes, and only then", function()
    local r = release()
    local tree = t.tmpdir() .. "/tree"
    ok('mkdir "$2" && cp -r "$1/scripts" "$1/dist" "$2/" && cd "$2" && git init -q && git add -A '
      .. '&& git -c user.name=t -c user.email=t@example.org commit -qm init', src, tree)
    local function release_from_tree()
      local res = banger.proc.run({ tree .. "/scripts/release", "--key", r.key, "--build-dir", build, "--no-build",
        "--zstd-level", "3", "--out", t.tmpdir(), timeout_ms = 900000 })
      t.eq(res.code, 0, res.stderr)
      return res.stderr
    end
    t.not_contains(release_from_tree(), "uncommitted changes")
    ok('echo "# changed" >>"$1/dist/install.sh"', tree)
    t.contains(release_from_tree(), "the source tree has uncommitted changes")
  end)

  it("keeps the root bundles of the new latest.json and the one it replaced, and no older ones", function()
    local r = release()
    local c = channel_copy()
    local old = t.read(c .. "/latest.json"):gsub('"version": "[^"]*"', '"version": "0.0.2"')
    t.write(c .. "/latest.json", old)
    for _, v in ipairs({ "0.0.1", "0.0.2" }) do
      t.write(c .. "/banger-" .. v .. "-linux-amd64.tar.zst", v)
    end
    ok('rm "$1/$2"', c, r.name)
    local res = run_release({ "--key", r.key, "--out", t.tmpdir(), "--channel", c, "--replace" })
    t.eq(res.code, 0, res.stderr)
    t.contains(res.stderr, "latest.json is now " .. version)
    local root = {}
    for _, f in ipairs(banger.fs.list(c)) do
      if f:match("%.tar%.zst$") then root[#root + 1] = f end
    end
    table.sort(root)
    local want = { "banger-0.0.2-linux-amd64.tar.zst", r.name }
    table.sort(want)
    t.eq(root, want)
    t.eq(t.read(c .. "/" .. r.name), t.read(r.vdir .. "/" .. r.name))
  end)

  it("replaces a version with --replace, warning only when latest.json is signed by another key", function()
    local r = release()
    local c = channel_copy()
    local res = run_release({ "--key", r.key, "--out", t.tmpdir(), "--channel", c, "--replace" })
    t.eq(res.code, 0, res.stderr)
    t.not_contains(res.stderr, "not signed by this key")
    local other = genkey(t.tmpdir() .. "/other.pem")
    res = run_release({ "--key", other, "--out", t.tmpdir(), "--channel", c, "--replace" })
    t.eq(res.code, 0, res.stderr)
    t.contains(res.stderr, "the channel's latest.json is not signed by this key")
    ok('openssl pkeyutl -verify -rawin -pubin -inkey "$1" -in "$2/latest.json" -sigfile "$2/latest.json.sig"',
      other .. ".pub", c)
  end)

  it("keeps latest.json at a newer version than the one released", function()
    local r = release()
    local c = channel_copy()
    local newer = t.read(c .. "/latest.json"):gsub('"version": "[^"]*"', '"version": "99.0.0"')
    t.write(c .. "/latest.json", newer)
    local res = run_release({ "--key", r.key, "--out", t.tmpdir(), "--channel", c, "--replace" })
    t.eq(res.code, 0, res.stderr)
    t.contains(res.stderr, "latest.json stays at 99.0.0")
    t.contains(res.stderr, "the channel's latest.json is not signed by this key")
    t.eq(t.read(c .. "/latest.json"), newer)
    t.eq(t.read(c .. "/" .. version .. "/manifest.json"), t.read(r.vdir .. "/manifest.json"))
  end)
end)

describe("dist/install.sh", function()
  it("trusts the project's release key, the one cmake compiles in by default", function()
    local embedded = t.read(src .. "/dist/install.sh"):match("RELEASE_PUBKEY='(.-)'")
    t.eq(embedded .. "\n", t.read(src .. "/dist/keys/banger-release.pub.pem"))
    t.contains(t.read(src .. "/cmake/BuildInfo.cmake"), "dist/keys/banger-release.pub.pem")
  end)
end)

describe("semantic version order", function()
  it("orders releases and pre-releases as semver.org does", function()
    local order = { "0.9.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
      "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0" }
    for i = 1, #order do
      for j = 1, #order do
        local want = i < j and "-1" or i > j and "1" or "0"
        local got = bash('. "$1/scripts/lib/semver.sh" && semver_cmp "$2" "$3"', src, order[i], order[j])
        t.eq(got, want .. "\n", order[i] .. " vs " .. order[j])
      end
    end
    for _, bad in ipairs({ "1.0", "01.0.0", "1.0.0-", "1.0.0-a..b", "v1.0.0", "1.0.0+build" }) do
      t.eq(bash('. "$1/scripts/lib/semver.sh" && semver_valid "$2" && echo valid || echo invalid', src, bad), "invalid\n", bad)
    end
  end)
end)

describe("install.sh", function()
  it("installs a release into a prefix, and again without changing anything", function()
    local r = release()
    local prefix = t.tmpdir() .. "/prefix"
    local res = install(r.channel, prefix)
    t.eq(res.code, 0, res.stderr)
    t.eq(banger.fs.readlink(prefix .. "/lib/banger/current"), "versions/" .. version)
    t.eq(banger.fs.readlink(prefix .. "/bin/banger"), "../lib/banger/current/bin/banger")
    t.falsy(banger.fs.exists(prefix .. "/lib/banger/versions/" .. version .. ".partial"))
    local home = t.tmpdir()
    local v = banger.proc.run({ prefix .. "/bin/banger", "version", "--json", env = t.env(home), cwd = home })
    t.eq(v.code, 0, v.stderr)
    t.eq(banger.json.decode(v.stdout).version, version)
    for _, f in ipairs({ "sbin/banger-helper", "libexec/banger/banger-agent" }) do
      t.eq(banger.fs.stat(prefix .. "/lib/banger/current/" .. f).mode, tonumber("755", 8), f)
    end
    local before = listing(prefix)
    res = install(r.channel, prefix, "--version", version)
    t.eq(res.code, 0, res.stderr)
    t.eq(listing(prefix), before)
  end)

  it("as shipped, refuses a channel signed by another key unless --pubkey names it", function()
    local r = release()
    local prefix = t.tmpdir() .. "/prefix"
    local argv = { "sh", src .. "/dist/install.sh", "--channel", r.channel, "--prefix", prefix, timeout_ms = 300000 }
    local res = banger.proc.run(argv)
    t.eq(res.code, 1, res.stderr)
    t.contains(res.stderr, "does not verify")
    t.falsy(banger.fs.exists(prefix), "nothing written")
    argv[#argv + 1] = "--pubkey"
    argv[#argv + 1] = r.key .. ".pub"
    res = banger.proc.run(argv)
    t.eq(res.code, 0, res.stderr)
    t.eq(banger.fs.readlink(prefix .. "/lib/banger/current"), "versions/" .. version)
  end)

  -- Each attack gets a channel of its own; install.sh must refuse it with
  -- the reason, both into an empty prefix and over an installed release,
  -- and leave either exactly as it was.
  local function refuses(tamper, reason, ...)
    local r = release()
    local c = channel_copy()
    tamper(c, r)
    for _, prefix in ipairs({ installed_prefix(), t.tmpdir() .. "/empty" }) do
      local before = listing(prefix)
      local res = install(c, prefix, ...)
      t.eq(res.code, 1, res.stderr)
      t.contains(res.stderr, reason)
      t.eq(listing(prefix), before)
    end
  end

  it("refuses a bundle changed in place", function()
    refuses(function(c, r)
      ok('printf X | dd of="$1" bs=1 seek=1000 conv=notrunc status=none', c .. "/" .. r.name)
    end, "has sha256")
  end)

  it("refuses a bundle of another size", function()
    refuses(function(c, r)
      ok('printf X >>"$1"', c .. "/" .. r.name)
    end, "the signed manifest says")
  end)

  it("refuses a changed bundle beside a version's own manifest", function()
    refuses(function(c, r)
      local bundle = c .. "/" .. version .. "/" .. r.name
      ok('cp "$1" "$1.new" && printf X | dd of="$1.new" bs=1 seek=1000 conv=notrunc status=none && mv "$1.new" "$1"',
        bundle)
    end, "has sha256", "--version", version)
  end)

  it("refuses a manifest changed to match a changed bundle", function()
    refuses(function(c, r)
      local bundle = c .. "/" .. r.name
      ok('printf X >>"$1"', bundle)
      local sum = ok('sha256sum "$1" | cut -d" " -f1', bundle):gsub("\n", "")
      local size = banger.fs.stat(bundle).size
      local m = t.read(c .. "/latest.json"):gsub('"size": %d+', '"size": ' .. size)
        :gsub('"sha256": "%x+"', '"sha256": "' .. sum .. '"')
      t.write(c .. "/latest.json", m)
    end, "does not verify")
  end)

  it("refuses a manifest signed by another key", function()
    refuses(function(c, r)
      local other = genkey(t.tmpdir() .. "/other.pem")
      ok('openssl pkeyutl -sign -rawin -inkey "$1" -in "$2/latest.json" -out "$2/latest.json.sig"', other, c)
      t.eq(banger.fs.stat(c .. "/latest.json.sig").size, 64)
    end, "does not verify")
  end)

  it("refuses another version's signed manifest offered as the one asked for", function()
    refuses(function(c, r)
      ok('mkdir "$1/99.0.0" && cp "$1/$2"/* "$1/99.0.0/"', c, version)
    end, "is for " .. version .. ", not 99.0.0", "--version", "99.0.0")
  end)

  -- A bundle signed by the right key but holding a path that escapes the
  -- version tree, or a symlink, is still refused (a mistaken or malicious
  -- release must not write outside P/lib/banger/versions/<V>).
  local function signed_bundle(c, r, make_tar)
    local dir = t.tmpdir()
    local bundle = c .. "/" .. r.name
    -- install.sh refuses these before it runs anything: a stand-in banger does
    ok('cd "$1" && mkdir -p tree/bin && printf "#!/bin/sh\\n" >tree/bin/banger && chmod 755 tree/bin/banger', dir)
    ok(make_tar, dir)
    ok('zstd -q -f "$1/evil.tar" -o "$2"', dir, bundle)
    local sum = ok('sha256sum "$1" | cut -d" " -f1', bundle):gsub("\n", "")
    local m = t.read(c .. "/latest.json"):gsub('"size": %d+', '"size": ' .. banger.fs.stat(bundle).size)
      :gsub('"sha256": "%x+"', '"sha256": "' .. sum .. '"')
    t.write(c .. "/latest.json", m)
    ok('openssl pkeyutl -sign -rawin -inkey "$1" -in "$2/latest.json" -out "$2/latest.json.sig"', r.key, c)
  end

  it("refuses a signed bundle with a path outside the version tree", function()
    refuses(function(c, r)
      signed_bundle(c, r, 'cd "$1/tree" && echo x >../escape && tar -cPf ../evil.tar bin ../escape')
    end, "unsafe path")
  end)

  it("refuses a signed bundle holding a symlink", function()
    refuses(function(c, r)
      signed_bundle(c, r, 'cd "$1/tree" && ln -s /etc share && tar -cf ../evil.tar bin share')
    end, "not a file or directory")
  end)

  it("removes a signed bundle's tree whose banger does not run, keeping the installed one current", function()
    local r = release()
    local c = channel_copy()
    signed_bundle(c, r, 'cd "$1/tree" && printf "#!/bin/sh\\nexit 1\\n" >bin/banger && tar -cf ../evil.tar bin')
    local prefix = installed_prefix()
    ok('mv "$1/lib/banger/versions/$2" "$1/lib/banger/versions/old" && ln -sfn versions/old "$1/lib/banger/current"',
      prefix, version)
    local res = install(c, prefix)
    t.eq(res.code, 1, res.stderr)
    t.contains(res.stderr, "does not run on this machine")
    t.eq(banger.fs.list(prefix .. "/lib/banger/versions"), { "old" })
    t.eq(banger.fs.readlink(prefix .. "/lib/banger/current"), "versions/old")
  end)
end)
