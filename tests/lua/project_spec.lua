-- banger.lua: a project's VM declarations, checked like config.lua, with
-- errors pointing at the file and line.
local project = require("banger.project")

local function with(text)
  local root = t.tmpdir()
  t.write(root .. "/banger.lua", text)
  return root
end

describe("banger.lua", function()
  it("reads vm settings and a provision function", function()
    local p = project.load(with('vm = { cpus = 4, memory = "2GiB", nat = true }\nfunction provision(vm) end\n'))
    t.eq(p.vm.cpus, 4)
    t.eq(p.vm.memory, "2GiB")
    t.eq(p.vm.nat, true)
    t.eq(type(p.provision), "function")
    t.eq(#p.hash, 64)
  end)

  it("accepts a returned table too", function()
    local p = project.load(with('return { vm = { image = "debian-12" } }\n'))
    t.eq(p.vm.image, "debian-12")
    t.eq(p.provision, nil)
  end)

  it("is absent when the repository has none", function()
    t.eq(project.load(t.tmpdir()), nil)
  end)

  it("reports a syntax error with file and line", function()
    local root = with("vm = {\n  cpus = 2,\n  memory = \n")
    local e = t.raises(function() project.load(root) end, "ESYNTAX")
    t.contains(e.message, root .. "/banger.lua:4:")
  end)

  it("reports a runtime error with file and line", function()
    local root = with("vm = {}\nlocal x = nil\nx.y = 1\n")
    local e = t.raises(function() project.load(root) end, "EINVAL")
    t.contains(e.message, root .. "/banger.lua:3:")
  end)

  it("validates values like config.lua does", function()
    t.contains(t.raises(function() project.load(with("vm = { cpus = 0 }")) end).message, "vm.vcpus: must be between 1 and 32")
    t.contains(t.raises(function() project.load(with("vm = { ram = 1 }")) end).message, "vm.ram: unknown key")
    t.contains(t.raises(function()
      project.load(with('vm = { file_sync = { { host = "~/x", guest = "/etc/x" } } }'))
    end).message, "file_sync[1].guest")
    t.contains(t.raises(function() project.load(with("provision = 5")) end).message, "provision: expected a function")
  end)

  it("a syntax error stops vm run with file and line and creates nothing", function()
    local root = with("vm = { cpus = \n")
    banger.proc.run({ "git", "-C", root, "init", "-q" })
    local home = t.tmpdir()
    local r = t.banger({ "vm", "run", "--", "true" }, { cwd = root, home = home })
    t.eq(r.code, 78)
    t.contains(r.stderr, "banger.lua:2:")
    t.eq(t.banger({ "vm", "list", "--json" }, { home = home }).stdout, "[]\n")
  end)
end)
