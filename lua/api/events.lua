-- GET /v1/events: JSON lines, one per sandbox state change, until the
-- client disconnects. The state DB is polled (?interval_ms=, default 1000).
local sandbox = require("banger.sandbox")
local sys = require("banger.native.sys")
return function(req, res)
  local interval = math.max(100, tonumber(req.query.interval_ms) or 1000)
  res.head(200, { ["Content-Type"] = "application/x-ndjson" })
  local seen = {}
  while true do
    local now = {}
    for _, r in ipairs(sandbox.list({})) do
      now[r.id] = r
      local before = seen[r.id]
      if not before or before.state ~= r.state then
        res.line({ event = before and "state" or "sandbox", id = r.id, name = r.name, state = r.state, at = sys.time() })
      end
    end
    for id, r in pairs(seen) do
      if not now[id] then
        res.line({ event = "deleted", id = id, name = r.name, at = sys.time() })
      end
    end
    seen = now
    sys.sleep_ms(interval)
  end
end
