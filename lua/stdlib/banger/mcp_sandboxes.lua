--- banger.mcp_sandboxes: the sandboxes of one `banger mcp` session, the
-- context its tools run with. A session sees and touches only sandboxes it
-- made (owner `session:<pid>:<start time>`) and ones an MCP session kept
-- (owner `mcp:kept`); never the user's other VMs or the API's. Its own are
-- deleted after `idle_ms` without a tool call on them, and all of them
-- when the session ends (close).
local errors = require("banger.errors")

local M = {}

--- The owner of a sandbox made with `keep = true`: no session's, so
-- neither idle timeouts nor a session's end delete it, but every MCP
-- session of the user may use it (and delete it).
M.kept_owner = "mcp:kept"

--- A session's context. opts: `sandbox` (banger.sandbox or a double of its
-- interface), `owner` (banger.mcp.owner()), `idle_ms` (0: no idle
-- timeout), `max_output` (bytes), `clock` (milliseconds, monotonic).
function M.new(opts)
  local sandbox = opts.sandbox
  local clock = opts.clock or require("banger.native.sys").monotonic_ms
  local c = { owner = opts.owner, max_output = opts.max_output, sandbox = sandbox }
  local last_used = {} -- name -> clock() of the last tool call on it; the session's own only

  local function mine(record)
    return record.owner == c.owner or record.owner == M.kept_owner
  end

  --- The record of a sandbox this session may use, or ENOENT (the same
  -- answer as for a name that does not exist: the user's other VMs are
  -- not this session's business).
  function c:get(name)
    local ok, record = pcall(sandbox.get, name)
    if not ok then
      error(record, 0)
    end
    if not mine(record) then
      errors.raise("ENOENT", "no sandbox '" .. name .. "' in this MCP session (see the list tool)")
    end
    if last_used[record.name] then
      last_used[record.name] = clock()
    end
    return record
  end

  function c:list()
    local out = {}
    for _, owner in ipairs({ c.owner, M.kept_owner }) do
      for _, r in ipairs(sandbox.list({ owner = owner })) do
        out[#out + 1] = r
      end
    end
    return out
  end

  local function adopt(record)
    if record.owner == c.owner then
      last_used[record.name] = clock()
    end
    return record
  end

  function c:create(args)
    local o = {}
    for k, v in pairs(args) do
      o[k] = v
    end
    o.keep = nil
    o.owner = args.keep and M.kept_owner or c.owner
    o.on_stage = function(stage)
      require("banger.log").info("mcp", "create: " .. tostring(stage))
      if c.progress then
        c.progress("create " .. (o.name or "sandbox") .. ": " .. tostring(stage))
      end
    end
    return adopt(sandbox.create(o))
  end

  function c:fork(name, args)
    c:get(name)
    return adopt(sandbox.fork(name, { name = args.name, owner = args.keep and M.kept_owner or c.owner }))
  end

  function c:delete(name)
    local record = c:get(name)
    sandbox.delete(record.name)
    last_used[record.name] = nil
    return record
  end

  --- Milliseconds until the next of the session's sandboxes goes idle, or
  -- nil when none can (no idle timeout, or no sandbox).
  function c:next_idle_ms()
    if not opts.idle_ms or opts.idle_ms <= 0 then
      return nil
    end
    local soonest
    for _, t in pairs(last_used) do
      local left = math.max(0, t + opts.idle_ms - clock())
      soonest = soonest and math.min(soonest, left) or left
    end
    return soonest
  end

  -- `persist`: at the session's end a SIGTERM or SIGINT does not stop the
  -- deletion (the official SDK client closes stdin, then sends SIGTERM
  -- after 2 s); it is cleared and the deletion tried again.
  local function remove(name, why, persist)
    local ok, e
    for _ = 1, persist and 3 or 1 do
      ok, e = pcall(sandbox.delete, name)
      if ok or not (persist and errors.is(e) and e.code == "ECANCELED") then
        break
      end
      require("banger.native.sys").clear_interrupt()
    end
    if ok or (errors.is(e) and e.code == "ENOENT") then
      last_used[name] = nil
      require("banger.log").info("mcp", "deleted sandbox " .. name .. " (" .. why .. ")")
      io.stderr:write("banger mcp: deleted sandbox ", name, " (", why, ")\n")
      return true
    end
    require("banger.log").warn("mcp", "cannot delete sandbox " .. name .. ": " .. errors.message(e))
    io.stderr:write("banger mcp: cannot delete sandbox ", name, ": ", errors.message(e), "\n")
    return false
  end

  --- Deletes the session's sandboxes idle for `idle_ms`; returns their names.
  function c:reap_idle()
    local gone = {}
    if not opts.idle_ms or opts.idle_ms <= 0 then
      return gone
    end
    local now = clock()
    local names = {}
    for name, t in pairs(last_used) do
      if now - t >= opts.idle_ms then
        names[#names + 1] = name
      end
    end
    table.sort(names)
    for _, name in ipairs(names) do
      if remove(name, "idle for " .. (opts.idle_ms // 1000) .. " s") then
        gone[#gone + 1] = name
      end
    end
    return gone
  end

  --- The session ends: deletes every sandbox it made and did not keep,
  -- also ones it lost track of (the owner says whose they are).
  function c:close()
    local names = {}
    local ok, list = pcall(sandbox.list, { owner = c.owner })
    for _, r in ipairs(ok and list or {}) do
      names[r.name] = true
    end
    for name in pairs(last_used) do
      names[name] = true
    end
    local sorted = {}
    for name in pairs(names) do
      sorted[#sorted + 1] = name
    end
    table.sort(sorted)
    for _, name in ipairs(sorted) do
      remove(name, "the MCP session ended", true)
    end
  end

  return c
end

return M
