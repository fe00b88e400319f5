--- banger.state: the directories and the SQLite state store of this user.
local errors = require("banger.errors")
local native_paths = require("banger.native.paths")
local store = require("banger.native.store")

local M = {}

local layout
--- The XDG layout, created on first use (runtime dir 0700, checked).
function M.layout()
  if not layout then
    layout = errors.check(native_paths.ensure())
  end
  return layout
end

function M.db_path()
  return M.layout().state .. "/banger.db"
end

local db
--- The state database (WAL, busy timeout, migrated), opened once.
function M.db()
  if not db then
    db = errors.wrap_handle(errors.check(store.open(M.db_path())))
  end
  return db
end

--- Runs fn(db) in a write transaction taken up front (BEGIN IMMEDIATE), so
-- concurrent banger processes serialise their read-modify-write cycles and
-- no update is lost. Commits on success, rolls back and re-raises on error.
function M.transaction(fn)
  local d = M.db()
  d:exec_script("BEGIN IMMEDIATE")
  local results = table.pack(pcall(fn, d))
  if results[1] then
    d:exec_script("COMMIT")
    return table.unpack(results, 2, results.n)
  end
  pcall(d.exec_script, d, "ROLLBACK")
  error(results[2], 0)
end

return M
