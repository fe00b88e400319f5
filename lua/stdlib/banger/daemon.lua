--- banger.daemon: what banger's per-user background servers share (the
-- <vm>.vm responder, banger.dns, and the egress resolver, banger.egress).
-- banger has no daemon: each server is a background process started when
-- first needed, one per user (it holds an exclusive lock in the runtime dir
-- while it listens), that exits by itself once idle.
local fs = require("banger.native.fs")
local state = require("banger.state")

local M = {}

--- Whether a server holding the lock at `lock_path` runs now.
function M.running(lock_path)
  local l = fs.lock(lock_path, { timeout_ms = 0, shared = true })
  if l then
    l:close()
    return false
  end
  return true
end

--- Calls `step()` (which waits up to about a second for work) until the
-- state DB is gone or `busy()` has been false for `idle_s` seconds.
function M.serve_until_idle(step, busy, idle_s)
  local sys = require("banger.native.sys")
  local db_path = state.db_path()
  local last_busy = sys.monotonic_ms()
  while true do
    step()
    if not fs.exists(db_path) then
      return
    end
    if busy() then
      last_busy = sys.monotonic_ms()
    elseif sys.monotonic_ms() - last_busy > idle_s * 1000 then
      return
    end
  end
end

return M
