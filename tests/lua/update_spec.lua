-- The pieces of `banger update` that need no channel: the Ed25519 check
-- (real keys from the openssl CLI), version order, the config keys, and
-- the refusal to update anything but a release install.
local crypto = require("banger.native.crypto")
local update = require("banger.update")

local function openssl(args)
  local argv = { "openssl" }
  table.move(args, 1, #args, 2, argv)
  local r = banger.proc.run(argv)
  t.eq(r.code, 0, "openssl " .. table.concat(args, " ") .. ": " .. r.stderr)
end

-- An Ed25519 key pair in `dir`: private PEM path, public PEM text.
local function keypair(dir, name, ...)
  local key = dir .. "/" .. name .. ".pem"
  local args = select("#", ...) > 0 and { ... } or { "-algorithm", "ed25519" }
  openssl({ "genpkey", "-out", key, table.unpack(args) })
  openssl({ "pkey", "-in", key, "-pubout", "-out", key .. ".pub" })
  return key, t.read(key .. ".pub")
end

local function sign(dir, key, message)
  t.write(dir .. "/msg", message)
  openssl({ "pkeyutl", "-sign", "-rawin", "-inkey", key, "-in", dir .. "/msg", "-out", dir .. "/msg.sig" })
  return t.read(dir .. "/msg.sig")
end

describe("crypto.verify_ed25519", function()
  local dir = t.tmpdir()
  local key, pub = keypair(dir, "release")
  local _, other_pub = keypair(dir, "other")
  local message = '{"schema":1,"version":"9.9.9"}\n'
  local sig = sign(dir, key, message)
  local private_pem = t.read(key)

  it("accepts the key's signature of the exact bytes", function()
    t.eq(#sig, 64)
    t.eq(crypto.verify_ed25519(pub, message, sig), true)
  end)

  it("refuses a changed message or a changed signature", function()
    local ok, msg, code = crypto.verify_ed25519(pub, message .. " ", sig)
    t.eq({ ok, code }, { nil, "EBADSIG" })
    t.contains(msg, "does not match")
    local flipped = string.char(sig:byte(1) ~ 1) .. sig:sub(2)
    t.eq(select(3, crypto.verify_ed25519(pub, message, flipped)), "EBADSIG")
    t.eq(select(3, crypto.verify_ed25519(pub, message, sig:sub(1, 63))), "EBADSIG")
    t.eq(select(3, crypto.verify_ed25519(pub, message, "")), "EBADSIG")
  end)

  it("refuses another Ed25519 key's signature", function()
    t.eq(select(3, crypto.verify_ed25519(other_pub, message, sig)), "EBADSIG")
  end)

  it("refuses a key that is not Ed25519, or not a public key PEM", function()
    local d = t.tmpdir()
    for _, alg in ipairs({ { "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256" }, { "-algorithm", "ed448" } }) do
      local _, other = keypair(d, alg[2], table.unpack(alg))
      local ok, msg, code = crypto.verify_ed25519(other, message, sig)
      t.eq({ ok, code }, { nil, "EKEY" }, alg[2])
      t.contains(msg, "not an Ed25519 key")
    end
    t.eq(select(3, crypto.verify_ed25519("not a pem", message, sig)), "EKEY")
    -- a private key is not what the trust anchor is
    t.eq(select(3, crypto.verify_ed25519(private_pem, message, sig)), "EKEY")
  end)

  it("has an Ed25519 release key built in", function()
    t.contains(crypto.release_pubkey, "-----BEGIN PUBLIC KEY-----")
    -- a well-formed Ed25519 key: a wrong signature is EBADSIG, not EKEY
    t.eq(select(3, crypto.verify_ed25519(crypto.release_pubkey, message, sig)), "EBADSIG")
  end)
end)

describe("banger.update versions", function()
  it("orders versions as semantic versioning does", function()
    local ordered = { "0.1.0-alpha", "0.1.0-alpha.1", "0.1.0-alpha.beta", "0.1.0-beta.2", "0.1.0-beta.11",
      "0.1.0-rc.1", "0.1.0", "0.1.1", "0.2.0", "0.10.0", "1.0.0" }
    for i = 1, #ordered do
      for j = 1, #ordered do
        local want = i < j and -1 or (i > j and 1 or 0)
        t.eq(update.compare(ordered[i], ordered[j]), want, ordered[i] .. " vs " .. ordered[j])
      end
    end
  end)

  it("accepts only MAJOR.MINOR.PATCH[-PRE] as a version (it names a directory)", function()
    for _, v in ipairs({ "1.2.3", "0.1.0-rc.1" }) do
      t.eq(update.valid_version(v), true, v)
    end
    for _, v in ipairs({ "1.2", "1.2.3/../../x", "../1.2.3", "1.2.3-", "v1.2.3", "1.2.3 ", 3 }) do
      t.eq(update.valid_version(v), false, tostring(v))
    end
  end)
end)

describe("banger update outside a release install", function()
  it("--check without a channel says how to set one, with a status that is not 'up to date'", function()
    local r = t.banger({ "update", "--check" })
    t.eq(r.code, 3)
    t.contains(r.stderr, "no update channel is configured")
  end)

  it("update.channel and update.public_key are validated", function()
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/config.lua", 'return { update = { channel = "ftp://example/x" } }\n')
    local r = t.banger({ "update", "--check" }, { home = home })
    t.eq(r.code, 78)
    t.contains(r.stderr, "update.channel: must be an http://, https:// or file:/// URL")
    t.write(home .. "/.config/banger/config.lua", 'return { update = { public_key = "key.pem" } }\n')
    r = t.banger({ "update", "--check" }, { home = home })
    t.eq(r.code, 78)
    t.contains(r.stderr, "update.public_key: must be absolute")
  end)

  it("--check reads a file:// channel and checks its signature with update.public_key", function()
    local home = t.tmpdir()
    local chan = t.tmpdir()
    local key = keypair(chan, "k")
    local m = banger.json.encode({ schema = 1, version = "999.0.0", commit = "x", built_at = "x", helper_protocol = 1,
      artifacts = { { name = "b", os = "linux", arch = "amd64", url = "b", size = 1, sha256 = string.rep("0", 64) } } })
    t.write(chan .. "/latest.json", m)
    sign(chan, key, m)
    banger.proc.run({ "cp", chan .. "/msg.sig", chan .. "/latest.json.sig" })
    t.write(home .. "/.config/banger/config.lua", string.format(
      'return { update = { channel = %q, public_key = %q } }\n', "file://" .. chan, key .. ".pub"))
    local r = t.banger({ "update", "--check", "--json" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.eq(banger.json.decode(r.stdout).available, "999.0.0")
    -- the built-in key did not sign it
    t.write(home .. "/.config/banger/config.lua", string.format('return { update = { channel = %q } }\n',
      "file://" .. chan))
    r = t.banger({ "update", "--check" }, { home = home })
    t.eq(r.code, 3)
    t.contains(r.stderr, "is not signed by the release key (the release key built into banger)")
  end)

  it("update, --to and --rollback refuse a build tree", function()
    for _, args in ipairs({ { "update", "--yes" }, { "update", "--to", "1.0.0", "--yes" }, { "update", "--rollback", "--yes" } }) do
      local r = t.banger(args)
      t.eq(r.code, 1, table.concat(args, " "))
      t.contains(r.stderr, "only updates a release install")
      t.contains(r.stderr, "from a build tree")
    end
  end)

  it("--check, --to and --rollback are exclusive", function()
    local r = t.banger({ "update", "--check", "--rollback" })
    t.eq(r.code, 2)
  end)
end)
