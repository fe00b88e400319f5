-- Sizes: one parser (engine/core/size.cpp) behind banger.units, config rules
-- and the natives that take sizes; argument errors of natives name the
-- function and the caller's line; a rule never passes on a reasonless nil.
local units = banger.units

describe("sizes", function()
  it("parse with binary units; integers are bytes", function()
    local MiB = 1024 * 1024
    for text, bytes in pairs({ ["64MiB"] = 64 * MiB, ["64M"] = 64 * MiB, ["64mb"] = 64 * MiB, ["1.5GiB"] = 1536 * MiB,
      ["4096B"] = 4096, [" 2 G "] = 2048 * MiB, ["1K"] = 1024, ["16TiB"] = 16 * 1024 * 1024 * MiB }) do
      t.eq(units.parse_size(text), bytes, text)
    end
    t.eq(units.parse_size(4096), 4096)
    t.eq(units.parse_size(4096.0), 4096)
    t.eq(units.max_size, 16 * 1024 * 1024 * MiB)
  end)

  it("every refusal comes with a reason", function()
    local cases = { ["1024"] = "has no unit", ["0MiB"] = "positive", ["-5MiB"] = "not a size", ["17TiB"] = "too large",
      ["99999999999GiB"] = "too large", ["1e3MiB"] = "unknown unit", ["5XB"] = "unknown unit", [""] = "not a size",
      ["MiB"] = "not a size", [string.rep("9", 5000) .. "TiB"] = "too large" }
    for text, reason in pairs(cases) do
      local v, why = units.parse_size(text)
      t.eq(v, nil, text)
      t.contains(why, reason)
    end
    for _, v in ipairs({ 0, -1, 1.5, true, {}, math.maxinteger }) do
      local bytes, why = units.parse_size(v)
      t.eq(bytes, nil, tostring(v))
      t.truthy(type(why) == "string" and #why > 0, "a reason for " .. tostring(v))
    end
  end)

  it("banger.ext4.create takes the same sizes: a real filesystem of that size, e2fsck clean", function()
    local dir = t.tmpdir()
    local fs = banger.ext4.create(dir .. "/a.ext4", "64MiB", { grow_to = "1GiB" })
    t.eq(fs:size(), 64 * 1024 * 1024)
    t.eq(fs:resize("96MiB"), 96 * 1024 * 1024)
    fs:close()
    local r = banger.proc.run({ "e2fsck", "-fn", dir .. "/a.ext4" })
    t.eq(r.code, 0, r.stdout .. r.stderr)
    local raw = require("banger.native.ext4")
    local h = raw.create(dir .. "/b.ext4", 32 * 1024 * 1024)
    t.eq(h:size(), 32 * 1024 * 1024)
    h:close()
  end)

  it("a bad size or argument names the function and the caller's line", function()
    local dir = t.tmpdir()
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, err = pcall(banger.ext4.create, dir .. "/c.ext4", "64")
    t.falsy(ok)
    t.contains(err, "units_spec.lua:" .. line .. ": bad argument #2 to 'ext4.create' ('64' has no unit")
    -- the raw native, and a handle method through errors.wrap_handle
    ok, err = pcall(require("banger.native.ext4").create, dir .. "/c.ext4", {})
    t.contains(err, "units_spec.lua:" .. (line + 4) .. ": bad argument #2 to 'ext4.create' (a size expected")
    local fs <close> = banger.ext4.create(dir .. "/d.ext4", "16MiB")
    line = debug.getinfo(1, "l").currentline + 1
    ok, err = pcall(function() return fs:resize("20TiB") end)
    t.contains(err, "units_spec.lua:" .. line .. ": bad argument #2 to 'banger.ext4.fs:resize' ('20TiB' is too large")
    ok, err = pcall(banger.ext4.create, dir .. "/e.ext4", "1MiB", { grow_to = "lots" })
    t.contains(err, "bad option 'grow_to' ('lots' is not a size")
  end)

  it("options and lists are read raw: a raising metamethod never runs inside a native", function()
    local dir = t.tmpdir()
    local hostile = { __index = function() error("metamethod ran") end, __len = function() error("len ran") end }
    local fs = banger.ext4.create(dir .. "/m.ext4", "8MiB", setmetatable({ journal = false }, hostile))
    t.eq(fs:size(), 8 * 1024 * 1024)
    fs:close()
    local r = banger.proc.run(setmetatable({ "true" }, hostile))
    t.eq(r.code, 0)
  end)

  it("a config rule fails when its parser returns nil without a reason", function()
    -- Load a fresh config module whose parsers say nothing: every rule must
    -- still refuse, never pass.
    local saved_config, saved_units = package.loaded["banger.config"], package.loaded["banger.units"]
    local validate = require("banger.native.validate")
    local saved = {}
    for k, f in pairs(validate) do
      saved[k] = f
      validate[k] = function() return nil end
    end
    package.loaded["banger.config"] = nil
    package.loaded["banger.units"] = { parse_size = function() return nil end, parse_mode = units.parse_mode }
    local ok, fresh = pcall(require, "banger.config")
    local ok2, err2 = pcall(function() return ok and fresh.validate({ network = { bridge_ip = "10.0.0.1" } }, "x") end)
    package.loaded["banger.config"], package.loaded["banger.units"] = saved_config, saved_units
    for k, f in pairs(saved) do
      validate[k] = f
    end
    t.truthy(ok, fresh)
    t.raises(function() fresh.validate({ vm = { memory = "1GiB" } }, "x") end, "vm.memory: is not a valid size")
    t.falsy(ok2)
    t.contains(tostring(err2 and err2.message), "network.bridge_ip: is not valid")
  end)
end)
