-- PUT /v1/sandboxes/{id}/files?path=P[&mode=0644]: the body becomes the file.
local errors = require("banger.errors")
local sandbox = require("banger.sandbox")
return function(req, res)
  local mode = req.query.mode and tonumber(req.query.mode, 8)
  if req.query.mode and not mode then
    errors.raise("EINVAL", "mode must be octal, e.g. 0644")
  end
  local r = sandbox.write_file(req.params.id, req.query.path or "", function()
    return req.read(65536)
  end, { mode = mode })
  res.json(200, { bytes = r.bytes, path = sandbox.check_path(req.query.path) })
end
