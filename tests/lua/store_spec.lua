-- The state store under concurrent banger processes.
describe("state store", function()
  it("open_readonly creates, migrates and writes nothing, and sees the latest commits", function()
    local dir = t.tmpdir()
    local path = dir .. "/banger.db"
    local ok, err = require("banger.native.store").open_readonly(path)
    t.falsy(ok)
    t.contains(err, path)
    t.eq(banger.fs.list(dir), {}, "no file created for a missing store")
    do
      local w <close> = banger.store.open(path)
      w:exec("CREATE TABLE names (name TEXT)")
      w:exec("INSERT INTO names VALUES ('a')")
      -- a writer holds the store open: its -wal is read
      local r <close> = banger.store.open_readonly(path)
      t.eq(r:query("SELECT name FROM names"), { { name = "a" } })
      t.raises(function() r:exec("INSERT INTO names VALUES ('b')") end, "EACCES")
    end
    -- no writer left (no -wal): opened as immutable, no side file appears
    local before = banger.fs.list(dir)
    table.sort(before)
    t.eq(before, { "banger.db" })
    local r <close> = banger.store.open_readonly(path)
    t.eq(r:query("SELECT name FROM names"), { { name = "a" } })
    t.raises(function() r:exec("DELETE FROM names") end, "EACCES")
    t.eq(banger.fs.list(dir), { "banger.db" })
  end)

  it("opens in WAL mode at the latest schema with a 0600 file", function()
    local home = t.tmpdir()
    local r = t.banger({ "vm", "list", "--json" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    local path = home .. "/.local/state/banger/banger.db"
    t.eq(banger.fs.stat(path).mode, tonumber("600", 8))
    local db <close> = banger.store.open(path)
    t.eq(db:query("PRAGMA journal_mode")[1].journal_mode, "wal")
    t.eq(db:schema_version(), banger.store.schema_version)
    t.eq(#db:query("SELECT name FROM sqlite_master WHERE name IN ('vms', 'images', 'kernels')"), 3)
  end)

  it("20 concurrent processes lose no write", function()
    local home = t.tmpdir()
    local writers, per = 20, 50
    local env = t.env(home)
    t.write(home .. "/.config/banger/config.lua", 'return { network = { mode = "off", bridge_ip = "10.9.0.1", cidr = 16 } }\n')
    local children = {}
    for i = 1, writers do
      children[i] = t.spawn({ t.bin(), "run", t.source_dir() .. "/tests/lua/fixtures/store_writer.lua",
        tostring(i), tostring(per), env = env, stderr = "pipe" })
    end
    for i, c in ipairs(children) do
      local st = c:wait(120000)
      t.eq(st.code, 0, "writer " .. i .. ": " .. c:read_all("stderr"))
    end
    local db <close> = banger.store.open(home .. "/.local/state/banger/banger.db")
    local rows = db:query("SELECT COUNT(*) AS n, COUNT(DISTINCT ip) AS ips, COUNT(DISTINCT name) AS names FROM vms")[1]
    t.eq(rows.n, writers * per, "every row written")
    t.eq(rows.ips, writers * per, "every IP allocated exactly once")
    t.eq(rows.names, writers * per)
    for i = 1, writers do
      for j = 1, per do
        t.eq(#db:query("SELECT 1 FROM vms WHERE name = ?", "w" .. i .. "-" .. j), 1, "row w" .. i .. "-" .. j)
      end
    end
    t.eq(db:query("PRAGMA integrity_check")[1].integrity_check, "ok")
    t.eq(#db:query("SELECT 1 FROM vms WHERE ip = '10.9.0.2'"), 1, "the lowest free address is used")
    t.eq(#db:query("SELECT 1 FROM vms WHERE ip IN ('10.9.0.0', '10.9.0.1')"), 0, "never the network's or the bridge's")
  end)

  it("refuses a database from a newer banger", function()
    local home = t.tmpdir()
    local path = home .. "/.local/state/banger/banger.db"
    banger.fs.mkdir(home .. "/.local/state/banger", 448, true)
    do
      local db <close> = banger.store.open(path)
      db:exec_script("PRAGMA user_version = 999")
    end
    local r = t.banger({ "vm", "list" }, { home = home })
    t.eq(r.code, 1)
    t.contains(r.stderr, "newer than this banger understands")
  end)
end)
