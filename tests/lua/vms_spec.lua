-- banger.vms.insert: the one writer of new VM rows (banger.vm's create and
-- create_from call it), against a real state database. The whole create is
-- end to end in e2e_vm_spec.lua.
local function script(home, body)
  local path = t.tmpdir() .. "/s.lua"
  t.write(path, body)
  local r = t.banger({ "run", path }, { home = home })
  t.eq(r.code, 0, r.stderr)
  return banger.json.decode(r.stdout)
end

local FIELDS = [[{ image = "img", kernel = "k", driver = "qemu", vcpus = 2, memory_mib = 256, disk_mib = 1024,
  work_disk_mib = 64, nat = 1 }]]

describe("vms.insert", function()
  it("inserts a 'creating' row with a fresh id, the MAC derived from it, its directory and the address hook's ip", function()
    local home = t.tmpdir()
    local r = script(home, [[
local seen
local row = banger.vms.insert("new-vm", ]] .. FIELDS .. [[, { allocate_ip = function(db)
  seen = db:query("SELECT COUNT(*) AS n FROM vms")[1].n
  return "172.30.0.9"
end })
print(banger.json.encode({ row = row, seen = seen, stored = banger.vms.get("new-vm"), dir = banger.vms.dir(row) }))
]])
    t.eq(r.seen, 0, "the hook runs before the insert, inside its transaction")
    t.eq(r.row.name, "new-vm")
    t.eq(r.row.state, "creating")
    t.eq(r.row.ip, "172.30.0.9")
    t.eq(r.row.vcpus, 2)
    t.eq(r.row.nat, 1)
    t.truthy(r.row.id:match("^%x+$") and #r.row.id == 12, r.row.id)
    local id = r.row.id
    t.eq(r.row.mac, string.format("02:%s:%s:%s:%s:%s", id:sub(1, 2), id:sub(3, 4), id:sub(5, 6), id:sub(7, 8), id:sub(9, 10)))
    t.eq(r.row.vm_dir, r.dir)
    t.eq(r.stored.id, id)
  end)

  it("without an address hook the row has no ip", function()
    local r = script(t.tmpdir(), [[
local row = banger.vms.insert("no-ip", ]] .. FIELDS .. [[)
print(banger.json.encode({ ip = row.ip == nil }))
]])
    t.eq(r.ip, true)
  end)

  it("refuses a taken name (EEXIST) and keeps the first row", function()
    local r = script(t.tmpdir(), [[
local first = banger.vms.insert("twice", ]] .. FIELDS .. [[)
local ok, e = pcall(banger.vms.insert, "twice", ]] .. FIELDS .. [[)
print(banger.json.encode({ ok = ok, code = e.code, message = e.message, id = banger.vms.get("twice").id == first.id,
  n = #banger.vms.list() }))
]])
    t.eq(r.ok, false)
    t.eq(r.code, "EEXIST")
    t.eq(r.message, "a VM named 'twice' already exists")
    t.eq(r.id, true)
    t.eq(r.n, 1)
  end)

  it("`also` runs in the same transaction: its failure leaves no row", function()
    local r = script(t.tmpdir(), [[
local inside
local ok, e = pcall(banger.vms.insert, "doomed", ]] .. FIELDS .. [[, { also = function(db, row)
  inside = db:query("SELECT name FROM vms WHERE id = ?", row.id)[1].name
  banger.errors.raise("EIO", "also failed")
end })
print(banger.json.encode({ ok = ok, code = e.code, inside = inside, row = banger.vms.get("doomed") ~= nil }))
]])
    t.eq(r.ok, false)
    t.eq(r.code, "EIO")
    t.eq(r.inside, "doomed", "also sees the new row")
    t.eq(r.row, false, "rolled back")
  end)
end)
