-- What a VM owns on the host is recorded in its row before it is made, and
-- every command finishes a release that did not: the migration that adds
-- the record, a stopped VM's leftover runtime directory, a record that
-- cannot be honoured (no privileges) keeping the row, and a record that
-- names a path that is not the VM's. End to end with real QEMU, taps and
-- NAT in e2e_crash_spec.lua and e2e_census_spec.lua.

local function db_path(home)
  return home .. "/.local/state/banger/banger.db"
end

-- A fresh home with a state store (any command makes it).
local function home_with_store()
  local home = t.tmpdir()
  local r = t.banger({ "vm", "list" }, { home = home })
  t.eq(r.code, 0, r.stderr)
  return home
end

local function insert_vm(home, fields)
  local db <close> = banger.store.open(db_path(home))
  local now = "2026-01-01T00:00:00Z"
  db:exec([[INSERT INTO vms (id, name, image, kernel, driver, vcpus, memory_mib, disk_mib, work_disk_mib, nat, ip, mac,
                             state, vm_dir, created_at, updated_at, host_objects)
            VALUES (?, ?, 'img', 'k', 'qemu', 1, 256, 1024, 1024, ?, ?, '02:00:00:00:00:01', ?, ?, ?, ?, ?)]],
    fields.id, fields.name, fields.nat or 0, fields.ip or banger.json.null, fields.state,
    home .. "/.local/state/banger/vms/" .. fields.id, now, now, fields.host_objects or "{}")
end

local function row(home, name)
  local db <close> = banger.store.open(db_path(home))
  return db:query("SELECT * FROM vms WHERE name = ?", name)[1]
end

describe("host objects", function()
  it("migration 4 records the tap and NAT of VMs an older banger left running, and nothing for the rest", function()
    local home = home_with_store()
    insert_vm(home, { id = "aaaaaaaaaaaa", name = "up", state = "running", ip = "172.30.0.2", nat = 1 })
    insert_vm(home, { id = "bbbbbbbbbbbb", name = "plain", state = "starting", ip = "172.30.0.3" })
    insert_vm(home, { id = "cccccccccccc", name = "down", state = "stopped", ip = "172.30.0.4", nat = 1 })
    insert_vm(home, { id = "dddddddddddd", name = "nonet", state = "running" })
    do -- back to schema 3: the same store without the column
      local db <close> = banger.store.open(db_path(home))
      db:exec_script("ALTER TABLE vms DROP COLUMN host_objects; ALTER TABLE vms DROP COLUMN allow_hosts; "
        .. "DROP TABLE snapshot_users; DROP TABLE snapshots; "
        .. "DROP TABLE forwards; DROP INDEX vms_by_owner; ALTER TABLE vms DROP COLUMN owner; "
        .. "PRAGMA user_version = 3")
    end
    local db <close> = banger.store.open(db_path(home))
    t.eq(db:schema_version(), banger.store.schema_version)
    local got = {}
    for _, r in ipairs(db:query("SELECT name, host_objects FROM vms")) do
      got[r.name] = banger.json.decode(r.host_objects)
    end
    t.eq(got, {
      up = { tap = "bgtapaaaaaaaaaa", nat = "bgtapaaaaaaaaaa" },
      plain = { tap = "bgtapbbbbbbbbbb" },
      down = {},
      nonet = {},
    })
  end)

  it("any command finishes releasing a stopped VM's recorded runtime directory", function()
    local home = home_with_store()
    local dir = home .. "/run/banger/vms/eeeeeeeeeeee"
    t.write(dir .. "/agent.sock", "")
    insert_vm(home, { id = "eeeeeeeeeeee", name = "left", state = "stopped",
      host_objects = banger.json.encode({ runtime_dir = dir }) })
    local r = t.banger({ "image", "list" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.falsy(banger.fs.exists(dir), "the runtime directory is gone")
    t.eq(row(home, "left").host_objects, "{}")
    t.eq(row(home, "left").state, "stopped")
  end)

  it("never removes a recorded path that is not the VM's own directory", function()
    local home = home_with_store()
    local elsewhere = t.tmpdir() .. "/precious"
    t.write(elsewhere .. "/file", "keep me\n")
    insert_vm(home, { id = "ffffffffffff", name = "odd", state = "creating",
      host_objects = banger.json.encode({ runtime_dir = elsewhere }) })
    local r = t.banger({ "vm", "list", "--json" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.eq(t.read(elsewhere .. "/file"), "keep me\n")
    t.eq(row(home, "odd"), nil, "the half-made VM itself is removed")
  end)

  it("a VM whose tap cannot be removed is kept, with the reason, until it can be", function()
    local home = home_with_store()
    t.write(home .. "/.config/banger/config.lua", 'return { helper = { socket = "/nonexistent/helper.sock" } }\n')
    insert_vm(home, { id = "abcabcabcabc", name = "stuck", state = "stopped", ip = "172.30.0.9", nat = 1,
      host_objects = banger.json.encode({ tap = "bgtapabcabcabca", nat = "bgtapabcabcabca" }) })
    t.env(home)
    banger.proc.run({ "chown", "-R", "65534:65534", home })
    local function as_user(args)
      local argv = { "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", t.bin() }
      for _, a in ipairs(args) do
        argv[#argv + 1] = a
      end
      argv.env, argv.cwd = t.env(home), home
      return banger.proc.run(argv)
    end
    local d = as_user({ "vm", "delete", "stuck" })
    t.eq(d.code, 1)
    t.contains(d.stderr, "could not be removed completely")
    t.contains(d.stderr, "needs root")
    local kept = row(home, "stuck")
    t.truthy(kept, "the row stays: it is the record of the tap and rules")
    t.eq(banger.json.decode(kept.host_objects), { tap = "bgtapabcabcabca", nat = "bgtapabcabcabca" })
    local log = t.read(home .. "/.local/state/banger/banger.log")
    t.contains(log, "could not remove the VM's tap")
  end)
end)
