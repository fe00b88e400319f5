-- POST /v1/sandboxes/{id}/exec: runs argv, streaming JSON lines:
-- {"exec_id"}, then {"stdout"|"stderr": text} or {"stdout_b64"|"stderr_b64"}
-- (a chunk that is not valid UTF-8), then {"exit_code", "signal", "timed_out", "killed"}.
local api = require("banger.api")
local errors = require("banger.errors")
local sandbox = require("banger.sandbox")
local sys = require("banger.native.sys")

return function(req, res)
  local body = req.json()
  if type(body.argv) ~= "table" or #body.argv == 0 then
    errors.raise("EINVAL", "argv must be a non-empty array of strings")
  end
  sandbox.get(req.params.id)  -- 404 before the stream starts
  res.head(200, { ["Content-Type"] = "application/x-ndjson" })
  -- A kill can arrive as soon as the client read the exec_id: from that
  -- line on, an interruption ends the stream with "killed".
  local ok, r = pcall(function()
    res.line({ exec_id = req.id })
    return sandbox.exec(req.params.id, {
      argv = body.argv, stdin = body.stdin, env = body.env, cwd = body.cwd, timeout_ms = body.timeout_ms,
      on_stdout = function(chunk)
        res.line(api.output_field("stdout", chunk))
      end,
      on_stderr = function(chunk)
        res.line(api.output_field("stderr", chunk))
      end,
    })
  end)
  if not ok then
    if not (type(r) == "table" and r.code == "ECANCELED") then
      error(r, 0)
    end
    -- killed (POST .../execs/{id}/kill): the guest command was signalled
    sys.clear_interrupt()
    res.line({ exit_code = require("banger.native.json").null, killed = true, timed_out = false })
    return
  end
  res.line({ exit_code = r.code, signal = r.signal, timed_out = r.timed_out, killed = r.interrupted })
end
