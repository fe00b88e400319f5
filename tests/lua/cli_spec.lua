-- banger.cli: flag and argument parsing shared by every recipe.
local cli = require("banger.cli")

local recipe = {
  json = true,
  flags = {
    { "name", short = "n", type = "string" },
    { "cpus", type = "integer", default = 2 },
    { "nat", type = "boolean" },
    { "tag", type = "list" },
    { "driver", type = "string", choices = { "qemu", "firecracker" } },
  },
  args = {
    { "vm", required = true },
    { "command", rest = true },
  },
}

describe("cli.parse", function()
  it("fills defaults and positionals", function()
    local o = cli.parse(recipe, { "box" }, "vm x")
    t.eq(o.vm, "box")
    t.eq(o.cpus, 2)
    t.eq(o.nat, false)
    t.eq(o.json, false)
    t.eq(o.tag, {})
    t.eq(o.command, {})
  end)

  it("accepts --flag value, --flag=value, short flags and --no-", function()
    local o = cli.parse(recipe, { "--name", "a", "--cpus=4", "-n", "b", "--nat", "--no-nat", "box" }, "vm x")
    t.eq(o.name, "b")
    t.eq(o.cpus, 4)
    t.eq(o.nat, false)
  end)

  it("collects repeatable lists and the rest after --", function()
    local o = cli.parse(recipe, { "--tag", "x", "--tag=y", "box", "--", "make", "--json", "test" }, "vm x")
    t.eq(o.tag, { "x", "y" })
    t.eq(o.command, { "make", "--json", "test" })
    t.eq(o.json, false, "flags after -- belong to the command")
  end)

  it("a tristate boolean tells --no-<name> from not given", function()
    local r = { flags = { { "nat", type = "boolean", tristate = true } } }
    t.eq(cli.parse(r, {}, "c").nat, nil)
    t.eq(cli.parse(r, { "--nat" }, "c").nat, true)
    t.eq(cli.parse(r, { "--no-nat" }, "c").nat, false)
    t.contains(cli.help(r, "c"), "--[no-]nat")
  end)

  it("rejects unknown flags with a usage error naming the command", function()
    local e = t.raises(function()
      cli.parse(recipe, { "--bogus", "box" }, "vm x")
    end, "EUSAGE")
    t.contains(e.message, "unknown flag --bogus")
    t.eq(e.exit, 2)
    t.contains(e.hint, "banger vm x --help")
  end)

  it("rejects a bad integer, a missing value and a bad choice", function()
    t.raises(function() cli.parse(recipe, { "--cpus", "many", "box" }, "c") end, "expects an integer")
    t.raises(function() cli.parse(recipe, { "box", "--name" }, "c") end, "needs a value")
    t.raises(function() cli.parse(recipe, { "--driver", "xen", "box" }, "c") end, "must be one of qemu, firecracker")
    t.raises(function() cli.parse(recipe, { "--nat=yes", "box" }, "c") end, "does not take a value")
  end)

  it("requires required arguments and refuses extra ones", function()
    t.raises(function() cli.parse(recipe, {}, "c") end, "missing argument <vm>")
    t.raises(function()
      cli.parse({ args = { { "vm" } } }, { "a", "b" }, "c")
    end, "unexpected argument 'b'")
  end)

  it("stops at --help without validating arguments", function()
    local o = cli.parse(recipe, { "--help" }, "c")
    t.eq(o.help, true)
  end)

  it("renders help with every flag", function()
    local h = cli.help(recipe, "vm x")
    t.contains(h, "Usage: banger vm x [flags] <vm> [-- command...]")
    t.contains(h, "--cpus N")
    t.contains(h, "(default 2)")
    t.contains(h, "--json")
    t.contains(h, "(repeatable)")
  end)
end)
